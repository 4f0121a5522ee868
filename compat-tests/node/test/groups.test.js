// Consumer groups with kafkajs 2.2.4 (BOOTSTRAP_SERVERS, BROKER_KIND): three members share a
// 6-partition topic, every record exactly once; a clean disconnect hands over at once; a new member
// resumes at the committed offsets; admin listGroups / describeGroups / deleteGroups with the
// NON_EMPTY_GROUP and GROUP_ID_NOT_FOUND errors. Every await is bounded.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import kafkajs from 'kafkajs'
import { BROKERS, uniqueTopic, withTimeout, eventually, log } from './common.js'

const { Kafka, logLevel } = kafkajs
const PARTS = 6
const SESSION_MS = 6000

const kafka = new Kafka({
  clientId: 'sluice-compat-kafkajs-groups',
  brokers: BROKERS,
  connectionTimeout: 5000,
  requestTimeout: 20000,
  retry: { retries: 6, initialRetryTime: 200, maxRetryTime: 3000 },
  logLevel: logLevel.NOTHING
})

const groupId = prefix => `${prefix}-${randomBytes(5).toString('hex')}`

async function createTopic (admin, topic) {
  await withTimeout(admin.createTopics({ topics: [{ topic, numPartitions: PARTS }], waitForLeaders: true }),
    30000, `create ${topic}`)
}

// Messages start..start+n-1 (message i to partition i % PARTS, key k-i); returns Map "p/o" -> key.
async function produce (producer, topic, start, n) {
  const messages = []
  for (let i = start; i < start + n; i++) {
    messages.push({ partition: i % PARTS, key: `k-${i}`, value: `v-${i}` })
  }
  const res = await withTimeout(producer.send({ topic, messages, acks: -1 }), 30000, 'produce')
  const want = new Map()
  for (const r of res) {
    // Within one partition, the batch keeps message order.
    const mine = messages.filter(m => m.partition === r.partition)
    mine.forEach((m, j) => want.set(`${r.partition}/${BigInt(r.baseOffset) + BigInt(j)}`, m.key))
  }
  assert.equal(want.size, n)
  return want
}

// A group member: a kafkajs consumer that records (partition, offset, key) of every record and the
// assignment from its last GROUP_JOIN; it commits after every batch.
async function member (name, group, topic) {
  const consumer = kafka.consumer({
    groupId: group, sessionTimeout: SESSION_MS, heartbeatInterval: 500, rebalanceTimeout: 15000,
    maxWaitTimeInMs: 100, retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 }
  })
  const m = { name, consumer, owned: new Set(), records: [], joins: 0 }
  consumer.on(consumer.events.GROUP_JOIN, e => {
    m.owned = new Set(e.payload.memberAssignment[topic] ?? [])
    m.joins++
  })
  await withTimeout(consumer.connect(), 15000, `${name} connect`)
  await withTimeout(consumer.subscribe({ topics: [topic], fromBeginning: true }), 15000, `${name} subscribe`)
  await withTimeout(consumer.run({
    autoCommitThreshold: 1,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      for (const r of batch.messages) m.records.push([batch.partition, r.offset, r.key.toString()])
    }
  }), 15000, `${name} run`)
  m.describe = () => `${name}{owned=[${[...m.owned].sort()}], records=${m.records.length}, joins=${m.joins}}`
  m.disconnect = async () => { await withTimeout(consumer.disconnect(), 20000, `${name} disconnect`); m.owned = new Set() }
  return m
}

async function waitBalanced (members, each, ms = 45000) {
  await eventually(() => {
    const all = new Set()
    let total = 0
    for (const m of members) {
      if (m.owned.size !== each) return false
      total += m.owned.size
      m.owned.forEach(p => all.add(p))
    }
    return total === PARTS && all.size === PARTS
  }, ms, `each member owning ${each} of ${PARTS}: ${members.map(m => m.describe()).join(' ')}`)
}

async function waitExactlyOnce (members, want, ms = 45000) {
  const seen = () => {
    const s = new Map()
    for (const m of members) for (const [p, o, k] of m.records) {
      const key = `${p}/${o}`
      s.set(key, [...(s.get(key) ?? []), k])
    }
    return s
  }
  await eventually(() => [...want.keys()].every(k => seen().has(k)), ms,
    `all ${want.size} records consumed (${seen().size} so far): ${members.map(m => m.describe()).join(' ')}`)
  for (const [k, keys] of seen()) {
    assert.equal(keys.length, 1, `${k} consumed ${keys.length} times`)
    assert.equal(keys[0], want.get(k), `${k}: key ${keys[0]}, produced ${want.get(k)}`)
  }
  assert.equal(seen().size, want.size)
}

async function disconnectAll (members) {
  for (const m of members) {
    try { await m.disconnect() } catch (e) { log(`disconnect ${m.name}: ${e.message}`) }
  }
}

describe('kafkajs consumer groups', { timeout: 170000 }, () => {
  const admin = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: false })

  before(async () => {
    await withTimeout(admin.connect(), 15000, 'admin connect')
    await withTimeout(producer.connect(), 15000, 'producer connect')
  })

  after(async () => {
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
  })

  test('three members share 6 partitions exactly once; a clean disconnect hands over at once', { timeout: 90000 }, async () => {
    const topic = uniqueTopic('kjs-grp')
    const group = groupId('kjs')
    await createTopic(admin, topic)
    const ms = []
    try {
      for (let i = 0; i < 3; i++) ms.push(await member(`m${i}`, group, topic))
      await waitBalanced(ms, 2)
      const want = await produce(producer, topic, 0, 3000)
      await waitExactlyOnce(ms, want)
      const t0 = Date.now()
      await ms[2].disconnect()
      for (const [k, v] of await produce(producer, topic, 3000, 600)) want.set(k, v)
      await waitBalanced(ms.slice(0, 2), 3, SESSION_MS + 20000)
      const handover = Date.now() - t0
      log(`handover after disconnect: ${handover} ms`)
      assert.ok(handover < SESSION_MS / 2, `clean disconnect took ${handover} ms to hand over (session ${SESSION_MS} ms)`)
      await waitExactlyOnce(ms, want)
    } finally {
      await disconnectAll(ms)
    }
  })

  test('a new member resumes at the committed offsets', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('kjs-grp')
    const group = groupId('kjs')
    await createTopic(admin, topic)
    const want = await produce(producer, topic, 0, 300)
    const first = await member('first', group, topic)
    await waitExactlyOnce([first], want)
    await first.disconnect()
    const offs = await withTimeout(admin.fetchOffsets({ groupId: group, topics: [topic] }), 20000, 'fetchOffsets')
    assert.deepEqual(offs[0].partitions.map(p => [p.partition, p.offset]).sort((a, b) => a[0] - b[0]),
      [...Array(PARTS).keys()].map(p => [p, '50']))
    const more = await produce(producer, topic, 300, 60)
    const second = await member('second', group, topic)
    try {
      await waitExactlyOnce([second], more)
    } finally {
      await disconnectAll([second])
    }
  })

  test('admin: listGroups, describeGroups, deleteGroups with NON_EMPTY_GROUP and GROUP_ID_NOT_FOUND', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('kjs-grp')
    const group = groupId('kjs-adm')
    await createTopic(admin, topic)
    const m = await member('m', group, topic)
    try {
      await waitBalanced([m], 6)
      await waitExactlyOnce([m], await produce(producer, topic, 0, 60))
      await eventually(async () => (await admin.listGroups()).groups.some(g => g.groupId === group && g.protocolType === 'consumer'),
        20000, `${group} in listGroups`)
      const d = (await withTimeout(admin.describeGroups([group]), 20000, 'describeGroups')).groups[0]
      assert.equal(d.groupId, group)
      assert.equal(d.errorCode, 0)
      assert.equal(d.state, 'Stable')
      assert.equal(d.protocolType, 'consumer')
      assert.equal(d.protocol, 'RoundRobinAssigner')
      assert.equal(d.members.length, 1)

      await assert.rejects(withTimeout(admin.deleteGroups([group]), 20000, 'deleteGroups'), e => {
        assert.equal(e.name, 'KafkaJSDeleteGroupsError', e.message)
        assert.equal(e.groups[0].groupId, group)
        assert.equal(e.groups[0].error.type, 'NON_EMPTY_GROUP')
        return true
      })
      const unknown = groupId('kjs-never-used')
      await assert.rejects(withTimeout(admin.deleteGroups([unknown]), 20000, 'deleteGroups unknown'), e => {
        assert.equal(e.groups[0].error.type, 'GROUP_ID_NOT_FOUND')
        return true
      })

      await m.disconnect()
      await eventually(async () => (await admin.describeGroups([group])).groups[0].state === 'Empty', 20000, 'group Empty')
      const res = await withTimeout(admin.deleteGroups([group]), 20000, 'deleteGroups empty')
      assert.deepEqual(res.map(r => [r.groupId, r.errorCode]), [[group, 0]])
      assert.ok(!(await admin.listGroups()).groups.some(g => g.groupId === group), 'deleted group still listed')
      const gone = (await admin.describeGroups([group])).groups[0]
      assert.equal(gone.state, 'Dead')
      assert.equal(gone.members.length, 0)
    } finally {
      await disconnectAll([m])
    }
  })
})
