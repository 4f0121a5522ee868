// Shared helpers for the Node client scenarios: environment, deterministic test data, timeouts.
import { randomBytes } from 'node:crypto'

export const BOOTSTRAP = process.env.BOOTSTRAP_SERVERS ?? '127.0.0.1:9092'
export const BROKERS = BOOTSTRAP.split(',').map(s => s.trim()).filter(Boolean)
export const BROKER_KIND = process.env.BROKER_KIND ?? 'unknown'
// Number of messages per produce/consume scenario (the brief asks for 100,000; lower it to debug).
export const MESSAGE_COUNT = Number(process.env.COMPAT_MESSAGES ?? 100000)
export const PARTITIONS = 3

export function uniqueTopic (prefix) {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

// Deterministic pseudo-random bytes (xorshift32), so values are binary, not just ASCII,
// and identical between producer and checker without keeping 100k buffers around twice.
function prng (seed) {
  let x = (seed * 2654435761) >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x & 0xff
  }
}

// Message i of a scenario: partition i % PARTITIONS, a key, a value and two headers.
// Values vary in length (0..~300 bytes) and mix a compressible text part with binary bytes.
export function makeMessage (i) {
  const rnd = prng(i + 1)
  const binLen = i % 7 === 0 ? 0 : (i % 61)
  const bin = Buffer.alloc(binLen)
  for (let k = 0; k < binLen; k++) bin[k] = rnd()
  const text = i % 13 === 0 ? '' : `value-${i}-`.padEnd(20 + (i % 200), 'abcdefghij')
  return {
    partition: i % PARTITIONS,
    key: Buffer.from(`key-${i}`),
    value: Buffer.concat([Buffer.from(text), bin]),
    headers: {
      'h-index': Buffer.from(String(i)),
      'h-bin': Buffer.from([i & 0xff, (i >> 8) & 0xff, 0x00, 0xff, (i >> 16) & 0xff])
    }
  }
}

// Expected messages of partition p, in order.
export function expectedForPartition (p, count = MESSAGE_COUNT) {
  const out = []
  for (let i = p; i < count; i += PARTITIONS) out.push(i)
  return out
}

export function countForPartition (p, count = MESSAGE_COUNT) {
  return count > p ? Math.floor((count - 1 - p) / PARTITIONS) + 1 : 0
}

// Reject after ms: used to bound every await that talks to the broker.
export async function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export function sleep (ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

// Retries fn until it returns a truthy value or the deadline passes (metadata propagation etc.).
export async function eventually (fn, ms, what) {
  const deadline = Date.now() + ms
  let lastError
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      lastError = e
    }
    await sleep(200)
  }
  throw new Error(`not reached within ${ms} ms: ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`)
}

// Compares one received record to message i; returns null when identical, else a description.
export function diffMessage (i, key, value, headers) {
  const m = makeMessage(i)
  if (!key || !m.key.equals(key)) return `message ${i}: key ${key?.toString('hex')} != ${m.key.toString('hex')}`
  if (!value || !m.value.equals(value)) return `message ${i}: value differs (${value?.length} vs ${m.value.length} bytes)`
  const names = Object.keys(m.headers)
  if (headers.length !== names.length) return `message ${i}: ${headers.length} headers, expected ${names.length}`
  for (let h = 0; h < names.length; h++) {
    const [hk, hv] = headers[h]
    if (hk !== names[h]) return `message ${i}: header ${h} name ${hk} != ${names[h]}`
    if (!hv || !m.headers[names[h]].equals(hv)) return `message ${i}: header ${hk} value differs`
  }
  return null
}

export function log (...args) {
  console.log(`[${BROKER_KIND}]`, ...args)
}
