// One app server hammering one hot tenant through the Redis store. argv[2] is JSON:
// { redis: { url } | { cluster: [{ host, port }] }, library?: 'ioredis' | 'node-redis', prefix, levels, policies, subject, hashTag?: 'one',
//   onStoreError, expectedServers (a number or 'auto'), timeoutMs, cooldownMs, concurrency, durationMs, maxRequests, bucketMs }
// Prints {"ready":true} once connected, waits for {"go":true} on stdin, hammers, then prints one report:
// admitted and refused counts, latencies, Redis-clock span of shared decisions, a timeline of shared and
// degraded decisions per bucketMs of wall time, the local-fallback episodes, and with expectedServers 'auto' the
// fleet sizes the store had counted at degraded decisions.
import { createInterface } from 'node:readline'
import { createClient, createCluster } from '@redis/client'
import { createLimiter } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { Cluster, Redis } from 'ioredis'

const unhandled = []
process.on('unhandledRejection', (reason) => {
  unhandled.push(String(reason?.stack ?? reason))
})

const config = JSON.parse(process.argv[2])
// Fail fast while Redis is down, reconnect quickly once it is back (the settings the README asks for).
const retry = (times) => Math.min(times * 20, 100)
function ioredisClient() {
  const clientOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: retry,
    // A connection made while a restarted Redis loads its AOF checks again after 100 ms, not after 1 s.
    maxLoadingRetryTime: 100,
    lazyConnect: true,
  }
  return config.redis.cluster
    ? new Cluster(config.redis.cluster, {
        enableOfflineQueue: false,
        redisOptions: clientOptions,
        clusterRetryStrategy: retry,
        slotsRefreshTimeout: 500,
        lazyConnect: true,
      })
    : new Redis(config.redis.url, clientOptions)
}
function nodeRedisClient() {
  const defaults = { disableOfflineQueue: true, socket: { reconnectStrategy: retry } }
  return config.redis.cluster
    ? createCluster({ rootNodes: config.redis.cluster.map((socket) => ({ socket })), defaults })
    : createClient({ url: config.redis.url, ...defaults })
}
const nodeRedis = config.library === 'node-redis'
const client = nodeRedis ? nodeRedisClient() : ioredisClient()
client.on('error', () => {
  // Outages are expected here; the limiter reports them through its events.
})
await client.connect()

const store = redisStore({
  client,
  prefix: config.prefix,
  timeoutMs: config.timeoutMs ?? 1000,
  ...(config.hashTag === 'one' ? { hashTag: () => 'hot' } : {}),
})
const events = { storeErrors: 0, degraded: 0, recovered: 0 }
const limiter = createLimiter({
  store,
  levels: config.levels,
  policies: config.policies,
  onStoreError: config.onStoreError ?? 'closed',
  expectedServers: config.expectedServers ?? 1,
  breaker: { failures: 3, cooldownMs: config.cooldownMs ?? 1000 },
  onEvent: (event) => {
    if (event.type === 'store-error') events.storeErrors++
    else if (event.type === 'degraded') events.degraded++
    else if (event.type === 'recovered') events.recovered++
  },
})

// The store's count of the fleet, as the limiter's fallback reads it (the same membership: one server).
const fleet = config.expectedServers === 'auto' ? store.joinFleet() : undefined
const fleetSeen = { min: null, max: null }

// Connected and the script cache warmed by a peek, so every process starts on equal terms.
await limiter.check(config.subject, { cost: 0 })
process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
const lines = createInterface({ input: process.stdin })
// The test process holds our stdin: when it goes away, so do we (nothing outlives the tests).
lines.once('close', () => process.exit(2))
await new Promise((resolve) => lines.once('line', resolve))

const bucketMs = config.bucketMs ?? 50
const timeline = new Map() // bucket index → [shared admitted, shared refused, degraded admitted, degraded refused]
// local-fallback runs: { start, end, admitted } in wall-clock ms, and the fallback's own clock (the limiter's,
// ms) at the run's first and last degraded decisions
const episodes = []
let episode
let admitted = 0
let refused = 0
let degradedAdmitted = 0
let degradedRefused = 0
let thrown = 0
let firstNow = Number.POSITIVE_INFINITY
let lastNow = 0
let maxLatencyMs = 0
let slowOverTimeout = 0
const latencies = []
const started = Date.now()
const deadline = started + config.durationMs
let issued = 0

async function worker() {
  while (Date.now() < deadline && issued < config.maxRequests) {
    issued++
    const t0 = performance.now()
    let decision
    try {
      decision = await limiter.check(config.subject)
    } catch (error) {
      thrown++
      process.stderr.write(`check threw: ${String(error?.stack ?? error)}\n`)
      continue
    }
    const latency = performance.now() - t0
    // Paced load leaves the CPU to the other servers and to Redis (a fallback decision takes microseconds).
    if (config.paceMs) await new Promise((resolve) => setTimeout(resolve, config.paceMs))
    latencies.push(latency)
    if (latency > maxLatencyMs) maxLatencyMs = latency
    if (latency > (config.timeoutMs ?? 1000)) slowOverTimeout++
    const at = Date.now()
    const slot = Math.floor((at - started) / bucketMs)
    const row = timeline.get(slot) ?? [0, 0, 0, 0]
    timeline.set(slot, row)
    if (decision.degraded) {
      const size = fleet?.size()
      if (size !== undefined) {
        fleetSeen.min = Math.min(fleetSeen.min ?? size, size)
        fleetSeen.max = Math.max(fleetSeen.max ?? size, size)
      }
      row[decision.allowed ? 2 : 3]++
      if (decision.allowed) degradedAdmitted++
      else degradedRefused++
      if (!episode) {
        episode = { start: at, end: at, admitted: 0, firstNow: decision.now, lastNow: decision.now }
        episodes.push(episode)
      }
      episode.end = at
      episode.firstNow = Math.min(episode.firstNow, decision.now)
      episode.lastNow = Math.max(episode.lastNow, decision.now)
      if (decision.allowed) episode.admitted++
    } else {
      episode = undefined
      row[decision.allowed ? 0 : 1]++
      if (decision.allowed) admitted++
      else refused++
      if (decision.now < firstNow) firstNow = decision.now
      if (decision.now > lastNow) lastNow = decision.now
    }
  }
}
await Promise.all(Array.from({ length: config.concurrency ?? 4 }, worker))
latencies.sort((a, b) => a - b)
const pct = (p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0
fleet?.leave()
await limiter.close()
await store.close?.()
if (nodeRedis) client.destroy()
else client.disconnect()
process.stdout.write(
  `${JSON.stringify({
    pid: process.pid,
    admitted,
    refused,
    degradedAdmitted,
    degradedRefused,
    thrown,
    firstNow,
    lastNow,
    started,
    bucketMs,
    maxLatencyMs,
    p50: pct(0.5),
    p99: pct(0.99),
    slowOverTimeout,
    decisions: latencies.length,
    timeline: [...timeline].sort((a, b) => a[0] - b[0]),
    episodes,
    events,
    fleetSeen,
    unhandled,
  })}\n`,
)
// Open handles (a reconnecting socket) must not keep the report waiting.
process.exit(0)
