// One Redis sample. mode 'throughput': decisions/s, latency, Redis CPU per decision and admissions at a
// concurrency; mode 'memory': MEMORY USAGE per limiter key. Runs against one node or a Cluster (`cluster`).
import { Cluster, Redis } from 'ioredis'
import { redisLimiters } from '../impls/redis.mjs'
import {
  chainBound,
  commandMicros,
  concurrentLoop,
  cpuMicrosPerOp,
  DEGRADED,
  HOUR_MS,
  parseCommandStats,
  percentile,
  processCpuMs,
  reply,
  SECOND_MS,
  workerConfig,
} from '../lib.mjs'

const config = workerConfig()
const impl = redisLimiters[config.limiter]
if (!impl) throw new Error(`unknown limiter ${config.limiter}`)

// Commands this process sends, by name (every connection, the store's own included). INFO commandstats
// also counts the commands scripts call; these counts tell the two apart (see commandMicros).
const sent = new Map()
let counting = false
const sendCommand = Redis.prototype.sendCommand
Redis.prototype.sendCommand = function countedSendCommand(command, stream) {
  if (counting) {
    const name = String(command.name).toLowerCase()
    sent.set(name, (sent.get(name) ?? 0) + 1)
  }
  return sendCommand.call(this, command, stream)
}

// The offline queue is off as @tollgate/redis requires; every client is created the same way.
const clientOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
const client = config.cluster
  ? new Cluster(config.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: impl.autoPipelining,
      redisOptions: clientOptions,
    })
  : new Redis({
      ...config.nodes[0],
      ...clientOptions,
      lazyConnect: true,
      enableAutoPipelining: impl.autoPipelining,
    })
await client.connect()
// Direct connections to every node (every master of a Cluster), for stats only; not counted.
const admins = config.nodes.map((node) => new Redis({ ...node, lazyConnect: true }))
await Promise.all(admins.map((a) => a.connect()))

/** INFO commandstats of every node, summed: name → { calls, usec }. */
async function commandStats() {
  const total = new Map()
  for (const admin of admins) parseCommandStats(await admin.info('commandstats'), total)
  return total
}

/** Keys of decision i: `keys` users under 100 orgs; `hot`: 9 of 10 decisions are one tenant's, far over its limit. */
function entries(keys, cluster) {
  const list = Array.from({ length: keys }, (_, i) => {
    const org = `o${i % 100}`
    // In a Cluster a chain is user → team → org, tagged by the org; on one node user → org → global.
    const chain = cluster ? [`${org}/u${i}`, `${org}/t${i % 1000}`, org] : [`u${i}`, org, 'global']
    return { chain, tag: org }
  })
  const hot = {
    chain: cluster ? ['o-hot/u-hot', 'o-hot/t-hot', 'o-hot'] : ['u-hot', 'o-hot', 'global'],
    tag: 'o-hot',
  }
  return { list, hot }
}

async function throughput({ keys, levels: levelCount, hot, concurrency, warmupMs, ms, maxOps, redisPids }) {
  // 20 per key per second over 10k keys: under load part of the traffic is refused.
  const perKey = 20
  const levels = [{ limit: perKey, windowMs: SECOND_MS }]
  if (levelCount === 3) {
    levels.push({ limit: perKey * 1000, windowMs: SECOND_MS })
    levels.push({ limit: 1_000_000_000, windowMs: SECOND_MS })
  }
  const { list, hot: hotEntry } = entries(keys, config.cluster)
  const decide = await impl.make(client, levels, { cluster: config.cluster })
  const step = hot
    ? (i) => decide(i % 10 === 0 ? list[(i / 10) % keys] : hotEntry)
    : (i) => decide(list[i % keys])

  const t0 = performance.now()
  const warm = await concurrentLoop(step, { ms: warmupMs, maxOps, concurrency, record: false })
  // Stats start after the warm-up, when no decision is in flight.
  await Promise.all(admins.map((a) => a.config('RESETSTAT')))
  const cpuBefore = redisPids.map(processCpuMs)
  sent.clear()
  counting = true
  const run = await concurrentLoop(step, { ms, maxOps, concurrency, start: warm.ops })
  counting = false
  const cpuAfter = redisPids.map(processCpuMs)
  const { usec, mix } = commandMicros(await commandStats(), sent)
  const totalMs = performance.now() - t0

  const total = warm.ops + run.ops
  // Distinct keys touched per level: the users asked (and the hot tenant), their teams and orgs.
  const users = Math.min(keys, hot ? Math.ceil(total / 10) : total)
  const extra = hot ? 1 : 0
  const touched = config.cluster
    ? [users + extra, Math.min(1000, users) + extra, Math.min(100, users) + extra]
    : [users + extra, Math.min(100, users) + extra, 1]
  const bound = chainBound(impl.semantics, levels, touched, totalMs)
  const sorted = run.latencies.sort()
  const admitted = warm.admitted + run.admitted
  const degraded = warm.degraded + run.degraded
  const errors = warm.errors + run.errors
  const cpu = cpuBefore.every((v) => v !== undefined)
    ? cpuMicrosPerOp(
        cpuBefore.reduce((a, b) => a + b, 0),
        cpuAfter.reduce((a, b) => a + b, 0),
        run.ops,
      )
    : undefined
  return {
    opsPerSec: (run.ops / run.ms) * 1000,
    ops: run.ops,
    ms: run.ms,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    redisMicrosPerDecision: usec / run.ops,
    redisCpuMicrosPerDecision: cpu,
    commands: mix,
    admitted,
    offered: total,
    bound,
    degraded,
    errors,
    correct: errors === 0 && degraded === 0 && admitted <= bound,
  }
}

/** Every key in the node, by SCAN. */
async function allKeys(admin) {
  const keys = []
  let cursor = '0'
  do {
    const [next, found] = await admin.scan(cursor, 'COUNT', 1000)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  return keys
}

/**
 * 10 per hour (so no key expires before it is counted): one decision for each of `keys` keys, then
 * MEMORY USAGE of every key those decisions wrote. A warm-up decision first (retried while the store
 * answers degraded, at most 5 s) loads scripts and fixed structures; keys present after it are not counted.
 */
async function memory({ keys }) {
  const decide = await impl.make(client, [{ limit: 10, windowMs: HOUR_MS }], { cluster: false })
  const warmUntil = performance.now() + 5000
  while ((await decide({ chain: ['warm-up', 'o', 'global'] })) === DEGRADED && performance.now() < warmUntil)
    await new Promise((resolve) => setTimeout(resolve, 100))
  const [admin] = admins
  const fixed = new Set(await allKeys(admin))
  let admitted = 0
  let degraded = 0
  // A few at a time: this measures bytes, not throughput, and no decision should time out.
  for (let i = 0; i < keys; i += 8) {
    const batch = []
    for (let j = i; j < Math.min(keys, i + 8); j++)
      batch.push(decide({ chain: [`user-${j}`, 'o', 'global'] }))
    for (const outcome of await Promise.all(batch)) {
      if (outcome === DEGRADED) degraded++
      else if (outcome) admitted++
    }
  }
  const written = (await allKeys(admin)).filter((key) => !fixed.has(key))
  let bytes = 0
  for (let i = 0; i < written.length; i += 1000) {
    const pipeline = admin.pipeline()
    for (const key of written.slice(i, i + 1000)) pipeline.memory('USAGE', key, 'SAMPLES', '0')
    for (const [error, usage] of await pipeline.exec()) {
      if (error) throw error
      bytes += usage ?? 0
    }
  }
  // Every key was asked once under a limit of 10: every limiter admits every one, none degraded.
  return {
    bytesPerKey: bytes / keys,
    redisKeys: written.length,
    fixedKeys: fixed.size,
    keys,
    admitted,
    degraded,
    correct: admitted === keys,
  }
}

let exitCode = 0
try {
  reply(config.mode === 'memory' ? await memory(config) : await throughput(config))
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`)
  exitCode = 1
} finally {
  client.disconnect()
  for (const admin of admins) admin.disconnect()
  // A store may hold more connections and timers (pub/sub, refresh): the sample is over, so is the process.
  process.exit(exitCode)
}
