// One Redis sample. mode 'throughput': decisions/s and latency at a concurrency; mode 'memory': bytes per key.
import { Redis } from 'ioredis'
import { redisLimiters } from '../impls/redis.mjs'
import { admissionBound, concurrentLoop, percentile, reply, workerConfig } from '../lib.mjs'

const config = workerConfig()
const impl = redisLimiters[config.limiter]
if (!impl) throw new Error(`unknown limiter ${config.limiter}`)

// The offline queue is off as @tollgate/redis requires; every client is created the same way.
const client = new Redis({
  host: '127.0.0.1',
  port: config.port,
  lazyConnect: true,
  enableOfflineQueue: false,
  enableAutoPipelining: impl.autoPipelining,
  maxRetriesPerRequest: 1,
})
await client.connect()

async function throughput({ keys, chain, concurrency, warmupMs, ms, maxOps }) {
  // 20 per key per second over 10k keys: under load part of the traffic is refused.
  const perKey = 20
  const orgCount = 100
  const levels = [{ capacity: perKey, perSecond: perKey }]
  if (chain) {
    levels.push({ capacity: perKey * 1000, perSecond: perKey * 1000 })
    levels.push({ capacity: 1_000_000_000, perSecond: 1_000_000_000 })
  }
  const users = Array.from({ length: keys }, (_, i) => `u${i}`)
  const orgs = Array.from({ length: keys }, (_, i) => `o${i % orgCount}`)
  const decide = await impl.make(client, levels)
  const step = (i) => decide(users[i % keys], orgs[i % keys])

  const t0 = performance.now()
  const warm = await concurrentLoop(step, { ms: warmupMs, maxOps, concurrency, record: false })
  const run = await concurrentLoop(step, { ms, maxOps, concurrency, start: warm.ops })
  const totalMs = performance.now() - t0
  const total = warm.ops + run.ops
  const touched = [Math.min(keys, total), Math.min(orgCount, total), 1]
  const bound = Math.min(
    ...levels.map((level, l) => touched[l] * admissionBound(impl.semantics, level, totalMs)),
  )
  const sorted = run.latencies.sort()
  const admitted = warm.admitted + run.admitted
  const errors = warm.errors + run.errors
  return {
    opsPerSec: (run.ops / run.ms) * 1000,
    ops: run.ops,
    ms: run.ms,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    admitted: impl.semantics === 'none' ? null : admitted,
    offered: total,
    bound: Number.isFinite(bound) ? bound : null,
    errors,
    correct: errors === 0 && admitted <= bound,
  }
}

/** 10 per hour (so no key expires before it is counted): one decision for each of `keys` keys, then MEMORY USAGE of every key the limiter wrote. */
async function memory({ keys }) {
  const decide = await impl.make(client, [{ capacity: 10, perSecond: 10 / 3600, windowMs: 3_600_000 }])
  let admitted = 0
  for (let i = 0; i < keys; i += 100) {
    const batch = []
    for (let j = i; j < Math.min(keys, i + 100); j++) batch.push(decide(`user-${j}`, 'o'))
    for (const allowed of await Promise.all(batch)) if (allowed) admitted++
  }
  let bytes = 0
  let redisKeys = 0
  let cursor = '0'
  do {
    const [next, found] = await client.scan(cursor, 'COUNT', 1000)
    cursor = next
    const pipeline = client.pipeline()
    for (const key of found) pipeline.memory('USAGE', key, 'SAMPLES', '0')
    for (const [error, usage] of await pipeline.exec()) {
      if (error) throw error
      bytes += usage ?? 0
      redisKeys++
    }
  } while (cursor !== '0')
  return { bytesPerKey: bytes / keys, redisKeys, keys, admitted, correct: admitted <= keys }
}

try {
  reply(config.mode === 'memory' ? await memory(config) : await throughput(config))
} finally {
  client.disconnect()
  // A store may hold more connections and timers (pub/sub, refresh): the sample is over, so is the process.
  process.exit(0)
}
