// Idempotent producer under chaos with kafkajs 2.2.4 (idempotent: true, maxInFlightRequests: 1 as
// kafkajs requires, acks -1). Not a node:test file: compat-tests/test_idempotence_clients.py runs
// it while it breaks connections and kill -9's the broker, then checks what was stored.
//
// Environment: BOOTSTRAP_SERVERS, TOPIC (existing), PARTITIONS, TAG (value prefix), STOP_FILE (stop
// producing when it exists), RESULT_FILE ("A <n> <offset>" / "F <n> <error>" per message), RATE
// (messages per second, default 2000), COMPAT_DEADLINE_S (exit 3 after this, default 150).
// Message n goes to partition n % PARTITIONS with the value "<TAG>:<n>".
//
// kafkajs settings: it must never give up on a send. kafkajs 2.2.4 rewinds a partition's sequence
// number when a send fails, even if the broker did write that batch (its answer was lost); the next
// send then reuses those sequence numbers for other messages, and the broker takes it for a
// duplicate (acknowledged at the old batch's offset: its messages are silently lost) or answers
// OUT_OF_ORDER_SEQUENCE_NUMBER. Seen on Kafka 3.9.1 with the client-level default retry (5 tries):
// reconnecting to the restarting broker ran out of tries, the send failed with
// KafkaJSNonRetriableError, and acknowledged messages were missing. So retries are unlimited at
// both levels - the producer's (kafkajs's default for idempotence; fewer "may invalidate EoS
// guarantees") and the client's, which reconnects - with a short backoff so it resumes soon after
// the broker is back. Every send is still bounded here by SEND_TIMEOUT_MS (then exit 4).
import { existsSync, writeFileSync } from 'node:fs'
import kafkajs from 'kafkajs'
import { BROKERS, withTimeout, sleep } from './common.js'

const { Kafka, logLevel } = kafkajs
const TOPIC = process.env.TOPIC
const PARTITIONS = Number(process.env.PARTITIONS ?? 3)
const TAG = process.env.TAG ?? 'kafkajs'
const STOP_FILE = process.env.STOP_FILE ?? 'stop'
const RESULT_FILE = process.env.RESULT_FILE ?? 'result.txt'
const RATE = Number(process.env.RATE ?? 2000)
const DEADLINE_S = Number(process.env.COMPAT_DEADLINE_S ?? 150)
const SEND_TIMEOUT_MS = 90000
const MAX_PER_SEND = 200

if (!TOPIC) throw new Error('TOPIC not set')
setTimeout(() => {
  console.log(`idempotent-producer: deadline of ${DEADLINE_S} s reached, exiting`)
  process.exit(3)
}, DEADLINE_S * 1000).unref()

const kafka = new Kafka({
  clientId: 'sluice-compat-idempotence',
  brokers: BROKERS,
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 },
  // KAFKAJS_LOG_LEVEL=WARN (or INFO, DEBUG) to see kafkajs's own retries while debugging.
  logLevel: logLevel[process.env.KAFKAJS_LOG_LEVEL ?? 'NOTHING']
})
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 }
})

const acked = new Map()
const failed = new Map()
const errorKinds = {}
let n = 0
const t0 = Date.now()

await withTimeout(producer.connect(), 30000, 'producer connect')
while (!existsSync(STOP_FILE)) {
  const due = Math.floor((Date.now() - t0) * RATE / 1000)
  if (n >= due) {
    await sleep(10)
    continue
  }
  const first = n
  const count = Math.min(due - n, MAX_PER_SEND)
  const messages = []
  for (let i = first; i < first + count; i++) {
    messages.push({ partition: i % PARTITIONS, value: Buffer.from(`${TAG}:${i}`) })
  }
  n += count
  try {
    const result = await withTimeout(producer.send({ topic: TOPIC, acks: -1, timeout: 10000, messages }),
      SEND_TIMEOUT_MS, `send of ${first}..${first + count - 1}`)
    // kafkajs answers one base offset per partition; that partition's messages follow in order.
    const base = new Map(result.map(r => {
      if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error ${r.errorCode}`)
      return [r.partition, BigInt(r.baseOffset)]
    }))
    const next = new Map()
    for (let i = first; i < first + count; i++) {
      const p = i % PARTITIONS
      if (!base.has(p)) throw new Error(`no produce result for partition ${p}`)
      const k = next.get(p) ?? 0n
      acked.set(i, base.get(p) + k)
      next.set(p, k + 1n)
    }
  } catch (e) {
    if (String(e.message).startsWith('timeout after')) {
      // The send is still running inside kafkajs: its messages can be neither acked nor failed.
      console.log(`idempotent-producer: ${e.message}; giving up`)
      process.exit(4)
    }
    const kind = e.name ?? 'Error'
    const cause = e.cause ? ` (cause: ${e.cause.name}: ${e.cause.message})` : ''
    console.log(`${new Date().toISOString()} send of ${first}..${first + count - 1} failed: ${kind}: ${e.message}${cause}`)
    errorKinds[kind] = (errorKinds[kind] ?? 0) + count
    for (let i = first; i < first + count; i++) failed.set(i, `${kind}: ${e.message}${cause}`.replace(/\n/g, ' '))
  }
}
console.log(`idempotent-producer: stop file seen after ${n} messages`)
await withTimeout(producer.disconnect(), 30000, 'producer disconnect').catch(e => console.log(String(e)))

const lines = [`N ${n}`]
for (let i = 0; i < n; i++) {
  if (acked.has(i)) lines.push(`A ${i} ${acked.get(i)}`)
  if (failed.has(i)) lines.push(`F ${i} ${failed.get(i)}`)
}
writeFileSync(RESULT_FILE, lines.join('\n') + '\n')
console.log(`idempotent-producer: produced ${n}, acked ${acked.size}, failed ${failed.size} ${JSON.stringify(errorKinds)}`)
process.exit(0)
