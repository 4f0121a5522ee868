// Consumer groups with @platformatic/kafka (BOOTSTRAP_SERVERS, BROKER_KIND): two members share a
// 6-partition topic, every record exactly once; a clean close hands over at once; admin
// listGroups / describeGroups / deleteGroups / deleteConsumerGroupOffsets with NON_EMPTY_GROUP,
// GROUP_ID_NOT_FOUND and GROUP_SUBSCRIBED_TO_TOPIC. Every await is bounded.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Producer, Consumer, Admin } from '@platformatic/kafka'
import { BROKERS, uniqueTopic, withTimeout, eventually, log } from './common.js'

const PARTS = 6
const SESSION_MS = 6000
const base = { bootstrapBrokers: BROKERS, connectTimeout: 5000, timeout: 20000, retries: 5, retryDelay: 250 }
const groupId = prefix => `${prefix}-${randomBytes(5).toString('hex')}`

// Every protocol error name (apiId) inside a (possibly nested) platformatic error.
function apiIds (e) {
  const out = []
  const walk = x => {
    if (!x) return
    if (x.apiId) out.push(x.apiId)
    for (const c of x.errors ?? []) walk(c)
    if (x.cause) walk(x.cause)
  }
  walk(e)
  return out
}

async function produce (producer, topic, start, n) {
  const messages = []
  for (let i = start; i < start + n; i++) {
    messages.push({ topic, partition: i % PARTS, key: Buffer.from(`k-${i}`), value: Buffer.from(`v-${i}`) })
  }
  await withTimeout(producer.send({ messages, acks: -1 }), 30000, 'produce')
  // The keys only: platformatic's (non-idempotent) producer can write a batch twice when a send
  // is retried right after topic creation (seen on Kafka 3.9.1), so offsets are not predictable.
  const want = new Set()
  for (let i = start; i < start + n; i++) want.add(`k-${i}`)
  assert.equal(want.size, n)
  return want
}

async function member (name, group, topic) {
  const consumer = new Consumer({
    ...base, clientId: `compat-plt-${name}`, groupId: group,
    sessionTimeout: SESSION_MS, heartbeatInterval: 500, rebalanceTimeout: 15000, maxWaitTime: 100
  })
  const m = { name, consumer, records: [], fetches: 0 }
  const stream = await withTimeout(consumer.consume({ topics: [topic], autocommit: true, mode: 'committed', fallbackMode: 'earliest' }),
    30000, `${name} consume`)
  stream.on('data', r => m.records.push([r.partition, r.offset, r.key.toString()]))
  stream.on('fetch', () => { m.fetches++ })
  stream.on('error', e => { m.error = e })
  m.stream = stream
  m.owned = () => new Set((consumer.assignments ?? []).filter(a => a.topic === topic).flatMap(a => a.partitions))
  m.describe = () => `${name}{owned=[${[...m.owned()].sort()}], records=${m.records.length}${m.error ? ', error=' + m.error.message : ''}}`
  m.close = async () => { if (!m.closed) { m.closed = true; await withTimeout(consumer.close(true), 20000, `${name} close`) } }
  return m
}

// The stream keeps one fetch in flight and pushes whatever it returns, even for partitions revoked
// while it was in flight (platformatic 2.12.1). A fetch sent before a rebalance can therefore
// deliver records of a partition the member no longer owns; seen on Kafka 3.9.1 when the produce
// landed within that fetch's maxWaitTime. Two completed fetches after the new assignment mean the
// last one was sent under it.
async function waitFetchingAsAssigned (members, ms = 20000) {
  const start = members.map(m => m.fetches)
  await eventually(() => members.every((m, i) => m.fetches >= start[i] + 2), ms,
    `two fetches by each member: ${members.map(m => `${m.name}{fetches=${m.fetches}}`).join(' ')}`)
}

async function waitBalanced (members, each, ms = 45000) {
  await eventually(() => {
    const all = new Set()
    let total = 0
    for (const m of members) {
      const o = m.owned()
      if (o.size !== each) return false
      total += o.size
      o.forEach(p => all.add(p))
    }
    return total === PARTS && all.size === PARTS
  }, ms, `each member owning ${each} of ${PARTS}: ${members.map(m => m.describe()).join(' ')}`)
}

// Until every produced key was consumed; then: no (partition, offset) consumed twice, each key on
// partition i % PARTS, and on each partition the offsets consumed are contiguous from 0.
async function waitExactlyOnce (members, want, ms = 45000) {
  const all = () => members.flatMap(m => m.records.map(([p, o, k]) => [p, o, k, m.name]))
  await eventually(() => { const ks = new Set(all().map(r => r[2])); return [...want].every(k => ks.has(k)) }, ms,
    `all ${want.size} keys consumed`).catch(e => { throw new Error(`${e.message}: ${members.map(m => m.describe()).join(' ')}`) })
  const byPos = new Map()
  for (const [p, o, k, name] of all()) {
    const pos = `${p}/${o}`
    assert.ok(!byPos.has(pos), `${pos} consumed twice: by ${byPos.get(pos)?.[1]} (${byPos.get(pos)?.[0]}) and ${name} (${k}); ${members.map(m => m.describe()).join(' ')}`)
    byPos.set(pos, [k, name])
    assert.equal(Number(k.slice(2)) % PARTS, p, `${k} consumed from partition ${p}`)
  }
  for (let p = 0; p < PARTS; p++) {
    const offs = [...byPos.keys()].filter(x => x.startsWith(`${p}/`)).map(x => Number(x.split('/')[1])).sort((x, y) => x - y)
    offs.forEach((o, j) => assert.equal(o, j, `partition ${p}: offset ${j} never consumed`))
  }
}

async function closeAll (members) {
  for (const m of members) {
    try { await m.close() } catch (e) { log(`close ${m.name}: ${e.message}`) }
  }
}

describe('@platformatic/kafka consumer groups', { timeout: 170000 }, () => {
  const admin = new Admin({ ...base, clientId: 'compat-plt-groups-admin' })
  const producer = new Producer({ ...base, clientId: 'compat-plt-groups-producer' })

  async function createTopic (topic) {
    await withTimeout(admin.createTopics({ topics: [topic], partitions: PARTS, replicas: 1 }), 30000, `create ${topic}`)
    await eventually(async () => {
      const md = await admin.metadata({ topics: [topic] })
      return md.topics.get(topic)?.partitionsCount === PARTS
    }, 20000, `${topic} metadata`)
  }

  after(async () => {
    await producer.close().catch(() => {})
    await admin.close().catch(() => {})
  })

  test('two members share 6 partitions exactly once; a clean close hands over at once', { timeout: 90000 }, async () => {
    const topic = uniqueTopic('plt-grp')
    const group = groupId('plt')
    await createTopic(topic)
    const ms = []
    try {
      ms.push(await member('a', group, topic))
      ms.push(await member('b', group, topic))
      await waitBalanced(ms, 3)
      await waitFetchingAsAssigned(ms)
      const want = await produce(producer, topic, 0, 1200)
      await waitExactlyOnce(ms, want)
      const t0 = Date.now()
      await ms[1].close()
      for (const k of await produce(producer, topic, 1200, 600)) want.add(k)
      await waitBalanced([ms[0]], 6, SESSION_MS + 20000)
      const handover = Date.now() - t0
      log(`handover after close: ${handover} ms`)
      assert.ok(handover < SESSION_MS / 2, `clean close took ${handover} ms to hand over (session ${SESSION_MS} ms)`)
      await waitExactlyOnce(ms, want)
    } finally {
      await closeAll(ms)
    }
  })

  test('admin: listGroups, describeGroups, deleteGroups, deleteConsumerGroupOffsets and their errors', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('plt-grp')
    const group = groupId('plt-adm')
    await createTopic(topic)
    const m = await member('m', group, topic)
    try {
      await waitBalanced([m], 6)
      await waitExactlyOnce([m], await produce(producer, topic, 0, 60))
      await eventually(async () => (await admin.listGroups()).get(group)?.state?.toUpperCase() === 'STABLE', 20000,
        `${group} listed as STABLE`).catch(async e => { log(JSON.stringify([...(await admin.listGroups()).entries()])); throw e })
      const listed = (await admin.listGroups()).get(group)
      assert.equal(listed.protocolType, 'consumer')
      const d = (await withTimeout(admin.describeGroups({ groups: [group] }), 20000, 'describeGroups')).get(group)
      assert.equal(d.state.toUpperCase(), 'STABLE')
      assert.equal(d.protocolType, 'consumer')
      assert.equal(d.members.size, 1)

      await assert.rejects(withTimeout(admin.deleteGroups({ groups: [group] }), 20000, 'deleteGroups'), e => {
        assert.ok(apiIds(e).includes('NON_EMPTY_GROUP'), `${e.message}: ${apiIds(e)}`)
        return true
      })
      const unknown = groupId('plt-never-used')
      await assert.rejects(withTimeout(admin.deleteGroups({ groups: [unknown] }), 20000, 'deleteGroups unknown'), e => {
        assert.ok(apiIds(e).includes('GROUP_ID_NOT_FOUND'), `${e.message}: ${apiIds(e)}`)
        return true
      })
      const p0 = [{ name: topic, partitionIndexes: [0] }]
      await assert.rejects(withTimeout(admin.deleteConsumerGroupOffsets({ groupId: group, topics: p0 }), 20000, 'deleteConsumerGroupOffsets'), e => {
        assert.ok(apiIds(e).includes('GROUP_SUBSCRIBED_TO_TOPIC'), `${e.message}: ${apiIds(e)}`)
        return true
      })

      await m.close()
      await eventually(async () => (await admin.describeGroups({ groups: [group] })).get(group).state.toUpperCase() === 'EMPTY', 20000, 'group EMPTY')
      await withTimeout(admin.deleteConsumerGroupOffsets({ groupId: group, topics: p0 }), 20000, 'deleteConsumerGroupOffsets empty group')
      const offs = await withTimeout(admin.listConsumerGroupOffsets({ groups: [group] }), 20000, 'listConsumerGroupOffsets')
      const parts = offs[0].topics.find(t => t.name === topic).partitions
      const end = p => BigInt(Math.max(...m.records.filter(r => r[0] === p).map(r => Number(r[1]))) + 1)
      assert.deepEqual(parts.map(p => [p.partitionIndex, p.committedOffset]).sort((a, b) => a[0] - b[0]),
        [1, 2, 3, 4, 5].map(p => [p, end(p)]))
      await withTimeout(admin.deleteGroups({ groups: [group] }), 20000, 'deleteGroups empty')
      assert.ok(!(await admin.listGroups()).has(group), 'deleted group still listed')
      const gone = (await admin.describeGroups({ groups: [group] })).get(group)
      assert.equal(gone.state.toUpperCase(), 'DEAD')
      assert.equal(gone.members.size, 0)
    } finally {
      await closeAll([m])
    }
  })
})
