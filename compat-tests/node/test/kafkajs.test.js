// kafkajs 2.2.4 against a Kafka-compatible broker (BOOTSTRAP_SERVERS, BROKER_KIND).
// kafkajs's consumer needs consumer groups, so the data produced here is checked through the
// offsets the producer and ListOffsets report and, byte for byte, through kafkajs's own Fetch
// implementation (its internal cluster/broker objects: no group involved).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import kafkajs from 'kafkajs'
import { registerCodecs, CODECS } from './kafkajs-codecs.js'
import {
  BROKERS, MESSAGE_COUNT, PARTITIONS, uniqueTopic, makeMessage, countForPartition, diffMessage,
  withTimeout, eventually, log
} from './common.js'

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs
registerCodecs()

const kafka = new Kafka({
  clientId: 'sluice-compat-kafkajs',
  brokers: BROKERS,
  connectionTimeout: 5000,
  requestTimeout: 20000,
  retry: { retries: 6, initialRetryTime: 200, maxRetryTime: 3000 },
  logLevel: logLevel.NOTHING
})

const CHUNK = 5000

async function produceAll (producer, topic, compression) {
  const nextOffset = new Array(PARTITIONS).fill(0n)
  for (let start = 0; start < MESSAGE_COUNT; start += CHUNK) {
    const end = Math.min(start + CHUNK, MESSAGE_COUNT)
    const messages = []
    for (let i = start; i < end; i++) {
      const m = makeMessage(i)
      messages.push({ partition: m.partition, key: m.key, value: m.value, headers: m.headers })
    }
    const result = await withTimeout(
      producer.send({ topic, messages, acks: -1, compression, timeout: 20000 }),
      30000, `send of messages ${start}..${end}`)
    // Each partition's batch must land right after the previous one: base offsets are contiguous.
    for (const r of result) {
      assert.equal(r.topicName, topic)
      assert.equal(r.errorCode, 0, `produce error on partition ${r.partition}`)
      assert.equal(BigInt(r.baseOffset), nextOffset[r.partition],
        `partition ${r.partition}: base offset ${r.baseOffset}, expected ${nextOffset[r.partition]}`)
      let n = 0n
      for (const m of messages) if (m.partition === r.partition) n++
      nextOffset[r.partition] += n
    }
    assert.equal(result.length, PARTITIONS, 'one produce result per partition')
  }
}

// Reads every partition from offset 0 with kafkajs's own Fetch and checks each record.
async function fetchAndCheck (topic) {
  const createCluster = Object.getOwnPropertySymbols(kafka)
    .find(s => s.description === 'private:Kafka:createCluster')
  assert.ok(createCluster, 'kafkajs internal cluster factory not found')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false })
  await withTimeout(cluster.connect(), 15000, 'cluster connect')
  try {
    await withTimeout(cluster.addTargetTopic(topic), 15000, 'metadata for fetch')
    const partitions = cluster.findTopicPartitionMetadata(topic)
    assert.equal(partitions.length, PARTITIONS)
    for (const pm of partitions) {
      const p = pm.partitionId
      const broker = await cluster.findBroker({ nodeId: pm.leader })
      const expectedCount = countForPartition(p)
      let offset = 0
      let i = p // message index expected at `offset`
      const deadline = Date.now() + 60000
      while (offset < expectedCount) {
        assert.ok(Date.now() < deadline, `partition ${p}: stuck at offset ${offset}/${expectedCount}`)
        const res = await withTimeout(broker.fetch({
          isolationLevel: 0,
          maxWaitTime: 200,
          minBytes: 1,
          maxBytes: 4 * 1024 * 1024,
          topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 1024 * 1024 }] }]
        }), 20000, `fetch partition ${p} offset ${offset}`)
        const pr = res.responses[0].partitions[0]
        assert.equal(pr.errorCode, 0, `fetch error ${pr.errorCode} on partition ${p}`)
        assert.equal(BigInt(pr.highWatermark), BigInt(expectedCount), `partition ${p} high watermark`)
        for (const msg of pr.messages) {
          const o = Number(msg.offset)
          if (o < offset) continue // a batch may start before the requested offset
          assert.equal(o, offset, `partition ${p}: offset gap, got ${o} expected ${offset}`)
          const headers = Object.entries(msg.headers ?? {})
          const d = diffMessage(i, msg.key, msg.value, headers)
          if (d) assert.fail(`partition ${p} offset ${o}: ${d}`)
          offset++
          i += PARTITIONS
        }
      }
    }
  } finally {
    await cluster.disconnect()
  }
}

describe(`kafkajs ${'2.2.4'}`, { timeout: 170000 }, () => {
  let admin, producer

  before(async () => {
    admin = kafka.admin()
    await withTimeout(admin.connect(), 15000, 'admin connect')
    producer = kafka.producer({ idempotent: false, allowAutoTopicCreation: true, maxInFlightRequests: 1 })
    await withTimeout(producer.connect(), 15000, 'producer connect')
  })

  after(async () => {
    await producer?.disconnect().catch(() => {})
    await admin?.disconnect().catch(() => {})
  })

  test('describeCluster', { timeout: 20000 }, async () => {
    const c = await withTimeout(admin.describeCluster(), 15000, 'describeCluster')
    assert.ok(c.brokers.length >= 1, 'at least one broker')
    assert.ok(typeof c.clusterId === 'string' && c.clusterId.length > 0, 'cluster id')
    for (const b of c.brokers) {
      assert.ok(Number.isInteger(b.nodeId) && b.host && b.port > 0, `broker ${JSON.stringify(b)}`)
    }
    assert.ok(c.brokers.some(b => b.nodeId === c.controller), `controller ${c.controller} among brokers`)
  })

  for (const [name, compression] of CODECS) {
    test(`produce ${MESSAGE_COUNT} messages (${name}) to a 3-partition topic, verify offsets and bytes`, { timeout: 120000 }, async () => {
      const topic = uniqueTopic(`kjs-${name}`)
      const created = await withTimeout(admin.createTopics({
        topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: 10000
      }), 20000, 'createTopics')
      assert.equal(created, true)
      const t0 = Date.now()
      await produceAll(producer, topic, compression)
      const t1 = Date.now()
      const offsets = await withTimeout(admin.fetchTopicOffsets(topic), 15000, 'fetchTopicOffsets')
      assert.equal(offsets.length, PARTITIONS)
      for (const o of offsets) {
        assert.equal(o.low, '0', `partition ${o.partition} earliest`)
        assert.equal(o.high, String(countForPartition(o.partition)), `partition ${o.partition} latest`)
        assert.equal(o.offset, o.high)
      }
      await fetchAndCheck(topic)
      log(`kafkajs ${name}: produced ${MESSAGE_COUNT} in ${t1 - t0} ms, fetched+checked in ${Date.now() - t1} ms`)
      await withTimeout(admin.deleteTopics({ topics: [topic], timeout: 10000 }), 20000, 'deleteTopics').catch(() => {})
    })
  }

  test('admin: createTopics, fetchTopicMetadata, fetchTopicOffsets, createPartitions, describeConfigs, deleteTopics', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('kjs-admin')
    const created = await withTimeout(admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
      waitForLeaders: true,
      timeout: 10000
    }), 20000, 'createTopics')
    assert.equal(created, true)

    // Creating it again reports TOPIC_ALREADY_EXISTS (returns false, does not throw).
    const again = await withTimeout(admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], timeout: 10000
    }), 20000, 'createTopics again')
    assert.equal(again, false)

    await eventually(async () => (await admin.listTopics()).includes(topic), 15000, 'listTopics shows the topic')

    const cluster = await withTimeout(admin.describeCluster(), 15000, 'describeCluster')
    const brokerIds = new Set(cluster.brokers.map(b => b.nodeId))
    const md = await withTimeout(admin.fetchTopicMetadata({ topics: [topic] }), 15000, 'fetchTopicMetadata')
    assert.equal(md.topics.length, 1)
    assert.equal(md.topics[0].name, topic)
    assert.deepEqual(md.topics[0].partitions.map(p => p.partitionId).sort(), [0, 1])
    for (const p of md.topics[0].partitions) {
      assert.equal(p.partitionErrorCode, 0)
      assert.ok(brokerIds.has(p.leader), `leader ${p.leader} is a known broker`)
      assert.deepEqual(p.replicas, [p.leader])
    }

    const empty = await withTimeout(admin.fetchTopicOffsets(topic), 15000, 'fetchTopicOffsets')
    assert.deepEqual(empty.map(o => [o.partition, o.low, o.high]).sort(), [[0, '0', '0'], [1, '0', '0']])

    await withTimeout(admin.createPartitions({ topicPartitions: [{ topic, count: 4 }], timeout: 10000 }), 20000, 'createPartitions')
    await eventually(async () => {
      const m = await admin.fetchTopicMetadata({ topics: [topic] })
      return m.topics[0].partitions.length === 4
    }, 15000, 'topic has 4 partitions after createPartitions')
    // The new partitions' leaders may take a moment to be ready for ListOffsets.
    const offsets4 = await eventually(async () => admin.fetchTopicOffsets(topic), 15000, 'fetchTopicOffsets after createPartitions')
    assert.deepEqual(offsets4.map(o => [o.partition, o.low, o.high]).sort(), [[0, '0', '0'], [1, '0', '0'], [2, '0', '0'], [3, '0', '0']])

    const cfg = await withTimeout(admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false
    }), 15000, 'describeConfigs')
    assert.equal(cfg.resources.length, 1)
    const res = cfg.resources[0]
    assert.equal(res.errorCode, 0)
    assert.equal(res.resourceName, topic)
    const entries = new Map(res.configEntries.map(e => [e.configName, e]))
    assert.equal(entries.get('retention.ms')?.configValue, '86400000')
    assert.equal(entries.get('retention.ms')?.isDefault, false)
    assert.ok(entries.has('cleanup.policy'), 'describeConfigs lists defaults too (cleanup.policy)')
    assert.equal(entries.get('cleanup.policy').configValue, 'delete')

    await withTimeout(admin.deleteTopics({ topics: [topic], timeout: 10000 }), 20000, 'deleteTopics')
    await eventually(async () => !(await admin.listTopics()).includes(topic), 15000, 'topic gone after deleteTopics')
  })

  test('auto-creation: producing to an unknown topic creates it', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('kjs-auto')
    const before = await withTimeout(admin.listTopics(), 15000, 'listTopics')
    assert.ok(!before.includes(topic))
    const messages = []
    for (let i = 0; i < 10; i++) {
      const m = makeMessage(i)
      messages.push({ key: m.key, value: m.value, headers: m.headers, partition: 0 })
    }
    const result = await withTimeout(producer.send({ topic, messages, acks: -1 }), 45000, 'send to unknown topic')
    assert.equal(result.length, 1)
    assert.equal(result[0].errorCode, 0)
    const md = await withTimeout(admin.fetchTopicMetadata({ topics: [topic] }), 15000, 'fetchTopicMetadata')
    assert.equal(md.topics[0].name, topic)
    assert.ok(md.topics[0].partitions.length >= 1)
    const offsets = await withTimeout(admin.fetchTopicOffsets(topic), 15000, 'fetchTopicOffsets')
    const p0 = offsets.find(o => o.partition === 0)
    assert.equal(p0.high, '10')
    assert.equal(p0.low, '0')
    await admin.deleteTopics({ topics: [topic], timeout: 10000 }).catch(() => {})
  })
})
