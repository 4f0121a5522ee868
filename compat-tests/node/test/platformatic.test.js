// @platformatic/kafka against a Kafka-compatible broker (BOOTSTRAP_SERVERS, BROKER_KIND).
// Produces with its Producer (every codec it has) and reads back with Consumer.fetch(), its
// group-less Fetch call (consume() always joins a group, which Sluice does not have yet).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Producer, Consumer, Admin, ConfigResourceTypes } from '@platformatic/kafka'
import {
  BROKERS, MESSAGE_COUNT, PARTITIONS, uniqueTopic, makeMessage, countForPartition, diffMessage,
  withTimeout, eventually, log
} from './common.js'
import { readFileSync } from 'node:fs'

const VERSION = JSON.parse(readFileSync(new URL('../node_modules/@platformatic/kafka/package.json', import.meta.url))).version
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
const CHUNK = 5000
const base = {
  bootstrapBrokers: BROKERS,
  connectTimeout: 5000,
  timeout: 20000,
  retries: 5,
  retryDelay: 250
}

function toProduce (topic, i) {
  const m = makeMessage(i)
  const headers = new Map()
  for (const [k, v] of Object.entries(m.headers)) headers.set(Buffer.from(k), v)
  return { topic, partition: m.partition, key: m.key, value: m.value, headers }
}

async function produceAll (producer, topic, compression) {
  const nextOffset = new Array(PARTITIONS).fill(0n)
  for (let start = 0; start < MESSAGE_COUNT; start += CHUNK) {
    const end = Math.min(start + CHUNK, MESSAGE_COUNT)
    const messages = []
    for (let i = start; i < end; i++) messages.push(toProduce(topic, i))
    const result = await withTimeout(producer.send({ messages, compression, acks: -1 }),
      30000, `send of messages ${start}..${end}`)
    assert.equal(result.offsets.length, PARTITIONS, 'one produce result per partition')
    for (const r of result.offsets) {
      assert.equal(r.topic, topic)
      assert.equal(BigInt(r.offset), nextOffset[r.partition],
        `partition ${r.partition}: base offset ${r.offset}, expected ${nextOffset[r.partition]}`)
      let n = 0n
      for (const m of messages) if (m.partition === r.partition) n++
      nextOffset[r.partition] += n
    }
  }
}

// platformatic's errors nest (AggregateError of retries of AggregateError...); flatten them so a
// failure says which Kafka error code the broker returned.
function explain (e, depth = 0) {
  const pad = ' '.repeat(depth)
  let s = `${pad}${e.message}${e.apiId ? ` [${e.apiId} ${e.apiCode}]` : ''}\n`
  for (const x of e.errors ?? []) s += explain(x, depth + 2)
  return depth === 0 ? s.split('\n').filter((l, i, a) => a.indexOf(l) === i).join('\n') : s
}

async function fetchAndCheck (consumer, topic) {
  // With Fetch <= v12 (no topic ids) platformatic maps the topic id back to a name from the
  // metadata of the topics it tracks; consume() tracks them, a bare fetch() must do it itself.
  consumer.topics.track(topic)
  try {
    await fetchAndCheckTracked(consumer, topic)
  } finally {
    consumer.topics.untrack(topic)
  }
}

async function fetchAndCheckTracked (consumer, topic) {
  const md = await withTimeout(consumer.metadata({ topics: [topic], forceUpdate: true }), 15000, 'metadata')
  const tm = md.topics.get(topic)
  assert.ok(tm, 'topic in metadata')
  assert.equal(tm.partitions.length, PARTITIONS)
  for (let p = 0; p < PARTITIONS; p++) {
    const expectedCount = countForPartition(p)
    let offset = 0
    let i = p
    const deadline = Date.now() + 60000
    while (offset < expectedCount) {
      assert.ok(Date.now() < deadline, `partition ${p}: stuck at offset ${offset}/${expectedCount}`)
      const res = await withTimeout(fetchExplained(consumer, {
        node: tm.partitions[p].leader,
        maxWaitTime: 200,
        topics: [{
          topicId: tm.id,
          partitions: [{ partition: p, fetchOffset: BigInt(offset), currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1024 * 1024 }]
        }]
      }), 20000, `fetch partition ${p} offset ${offset}`)
      const pr = res.responses[0].partitions[0]
      assert.equal(pr.errorCode, 0, `fetch error ${pr.errorCode} on partition ${p}`)
      assert.equal(pr.highWatermark, BigInt(expectedCount), `partition ${p} high watermark`)
      for (const batch of pr.records ?? []) {
        for (const r of batch.records) {
          const o = Number(batch.firstOffset) + r.offsetDelta
          if (o < offset) continue
          assert.equal(o, offset, `partition ${p}: offset gap, got ${o} expected ${offset}`)
          const headers = r.headers.map(([k, v]) => [k?.toString(), v])
          const d = diffMessage(i, r.key, r.value, headers)
          if (d) assert.fail(`partition ${p} offset ${o}: ${d}`)
          offset++
          i += PARTITIONS
        }
      }
    }
  }
}

async function fetchExplained (consumer, options) {
  try {
    return await consumer.fetch(options)
  } catch (e) {
    throw new Error(`fetch failed:\n${explain(e)}`)
  }
}

describe(`@platformatic/kafka ${VERSION}`, { timeout: 170000 }, () => {
  let admin, producer, consumer

  before(async () => {
    admin = new Admin({ clientId: 'sluice-compat-plt-admin', ...base })
    producer = new Producer({ clientId: 'sluice-compat-plt-producer', idempotent: false, acks: -1, ...base })
    // The group id is required by the constructor; fetch() and listOffsets() never use the group.
    consumer = new Consumer({ clientId: 'sluice-compat-plt-consumer', groupId: 'sluice-compat-unused', ...base })
  })

  after(async () => {
    for (const c of [consumer, producer, admin]) await c?.close().catch(() => {})
  })

  for (const compression of CODECS) {
    test(`produce ${MESSAGE_COUNT} messages (${compression}) to a 3-partition topic, fetch them back from offset 0`, { timeout: 120000 }, async () => {
      const topic = uniqueTopic(`plt-${compression}`)
      const created = await withTimeout(admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }), 20000, 'createTopics')
      assert.equal(created[0].name, topic)
      assert.equal(created[0].partitions, PARTITIONS)
      // Wait until every partition has a leader before producing.
      await eventually(async () => {
        const md = await admin.metadata({ topics: [topic], forceUpdate: true })
        const t = md.topics.get(topic)
        return t && t.partitions.length === PARTITIONS && t.partitions.every(p => p.leader >= 0)
      }, 15000, 'leaders for the new topic')
      const t0 = Date.now()
      await produceAll(producer, topic, compression)
      const t1 = Date.now()
      const latest = await withTimeout(consumer.listOffsets({ topics: [topic] }), 15000, 'listOffsets latest')
      assert.deepEqual(latest.get(topic), [0, 1, 2].map(p => BigInt(countForPartition(p))))
      const earliest = await withTimeout(consumer.listOffsets({ topics: [topic], timestamp: -2n }), 15000, 'listOffsets earliest')
      assert.deepEqual(earliest.get(topic), [0n, 0n, 0n])
      await fetchAndCheck(consumer, topic)
      log(`platformatic ${compression}: produced ${MESSAGE_COUNT} in ${t1 - t0} ms, fetched+checked in ${Date.now() - t1} ms`)
      await withTimeout(admin.deleteTopics({ topics: [topic] }), 20000, 'deleteTopics').catch(() => {})
    })
  }

  test('admin: createTopics, metadata, createPartitions, describeConfigs, deleteTopics', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('plt-admin')
    await withTimeout(admin.createTopics({
      topics: [topic], partitions: 2, replicas: 1, configs: [{ name: 'retention.ms', value: '86400000' }]
    }), 20000, 'createTopics')
    // Metadata reaches the broker's cache shortly after CreateTopics returns (as in Kafka).
    await eventually(async () => (await admin.listTopics()).includes(topic), 15000, 'listTopics shows the topic')
    await eventually(async () => {
      const md = await admin.metadata({ topics: [topic], forceUpdate: true })
      return md.topics.get(topic)?.partitions.length === 2
    }, 15000, 'metadata shows 2 partitions')
    await withTimeout(admin.createPartitions({ topics: [{ name: topic, count: 5 }] }), 20000, 'createPartitions')
    await eventually(async () => {
      const md = await admin.metadata({ topics: [topic], forceUpdate: true })
      return md.topics.get(topic)?.partitions.length === 5
    }, 15000, 'metadata shows 5 partitions after createPartitions')
    const [desc] = await withTimeout(admin.describeConfigs({
      resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic }]
    }), 15000, 'describeConfigs')
    assert.equal(desc.resourceName, topic)
    const cfg = new Map(desc.configs.map(c => [c.name, c.value]))
    assert.equal(cfg.get('retention.ms'), '86400000')
    assert.equal(cfg.get('cleanup.policy'), 'delete')
    await withTimeout(admin.deleteTopics({ topics: [topic] }), 20000, 'deleteTopics')
    await eventually(async () => !(await admin.listTopics()).includes(topic), 15000, 'topic gone after deleteTopics')
  })

  test('auto-creation: producing to an unknown topic creates it', { timeout: 60000 }, async () => {
    const topic = uniqueTopic('plt-auto')
    assert.ok(!(await withTimeout(admin.listTopics(), 15000, 'listTopics')).includes(topic))
    const messages = []
    for (let i = 0; i < 10; i++) messages.push({ ...toProduce(topic, i), partition: 0 })
    const result = await withTimeout(producer.send({ messages, acks: -1, autocreateTopics: true }), 45000, 'send to unknown topic')
    assert.equal(result.offsets.length, 1)
    assert.equal(result.offsets[0].offset, 0n)
    const latest = await withTimeout(consumer.listOffsets({ topics: [topic] }), 15000, 'listOffsets')
    assert.equal(latest.get(topic)[0], 10n)
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  })
})
