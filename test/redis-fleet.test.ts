import { createLimiter } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@tollgate/testkit'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connect,
  connectCluster,
  type HammerConfig,
  type HammerReport,
  redisTimeMs,
  startFleet,
  sum,
} from './support/fleet'
import { summary } from './support/summary'

/**
 * No over-admission across processes (issue 6, item 1): 8 separate Node processes hammer one hot tenant
 * through the Redis store with a three-level chain (user → org → global), on a single node and on a
 * 3-master Cluster, with ioredis and with node-redis in the app servers. Rate 0: the admitted total is
 * exactly the binding capacity. Positive rate: it lies between capacity + rate × elapsed (Redis's clock)
 * and that minus one token per level.
 */

const PROCESSES = 8
const LEVELS = ['user', 'org', 'global']
const SUBJECT = { user: 'hot-user', org: 'hot-org' }

/** Rate 0, org binding in the middle of the chain: on a Cluster every refusal refunds the user level. */
const FIXED = {
  user: { capacity: 500, refill: 0 },
  org: { capacity: 300, refill: 0 },
  global: { capacity: 1000, refill: 0 },
}
/** Positive rates, user binding: about 50 + 40/s × 3 s = 170 admitted. */
const REFILLING = {
  user: { capacity: 50, refill: 40 },
  org: { capacity: 500, refill: 500 },
  global: { capacity: 2000, refill: 2000 },
}

const libraries = ['ioredis', 'node-redis'] as const

let prefixCount = 0
const freshPrefix = (name: string) => `fleet${++prefixCount}-${name}:`

interface Target {
  redis: HammerConfig['redis']
  library: NonNullable<HammerConfig['library']>
  client: () => Promise<Redis | Cluster>
}

async function hammer(
  target: Target,
  name: string,
  policies: HammerConfig['policies'],
  options: { durationMs: number; hashTag?: 'one'; during?: (client: Redis | Cluster) => Promise<void> },
) {
  const prefix = freshPrefix(name)
  const fleet = await startFleet(PROCESSES, {
    redis: target.redis,
    library: target.library,
    prefix,
    levels: LEVELS,
    policies,
    subject: SUBJECT,
    ...(options.hashTag ? { hashTag: options.hashTag } : {}),
    onStoreError: 'closed',
    timeoutMs: 2000,
    concurrency: 4,
    durationMs: options.durationMs,
    maxRequests: 5000,
  })
  const client = await target.client()
  try {
    const before = await redisTimeMs(client)
    const running = fleet.go()
    const side = options.during?.(client)
    const reports = await running
    await side
    const after = await redisTimeMs(client)
    // Every level's figures now, from a peek (cost 0 charges nothing).
    const store = redisStore({
      client,
      prefix,
      timeoutMs: 2000,
      ...(options.hashTag ? { hashTag: () => 'hot' } : {}),
    })
    const limiter = createLimiter({ store, levels: LEVELS, policies, onStoreError: 'closed' })
    const peek = await limiter.check(SUBJECT, { cost: 0 })
    expect(peek.degraded).toBeUndefined()
    await limiter.close()
    await store.close?.()
    return { reports, before, after, peek }
  } finally {
    fleet.kill()
    client.disconnect()
  }
}

function checkClean(reports: HammerReport[]): void {
  for (const r of reports) {
    expect(r.unhandled).toEqual([])
    expect(r.thrown).toBe(0)
    // A timeout or outage would be decided by the fallback and prove nothing about Redis.
    expect(r.degradedAdmitted + r.degradedRefused).toBe(0)
  }
}

function bounds(
  policies: typeof REFILLING,
  reports: HammerReport[],
  before: number,
  after: number,
): { upper: number; lower: number; elapsedMs: number; spanMs: number } {
  const elapsedMs = after - before
  // Decisions carry Redis's `now` in whole ms: the span of shared decisions, less 1 ms for flooring.
  const spanMs = Math.max(...reports.map((r) => r.lastNow)) - Math.min(...reports.map((r) => r.firstNow)) - 1
  const allowance = (ms: number) =>
    Math.min(...Object.values(policies).map((p) => p.capacity + (p.refill * ms) / 1000))
  // Above: nothing beyond what Redis's clock allowed between TIME before and after.
  // Below: the load ran until its last decision, so everything refilled until then was taken, less a token per level.
  return { upper: allowance(elapsedMs), lower: allowance(spanMs) - LEVELS.length, elapsedMs, spanMs }
}

function figures(reports: HammerReport[]) {
  return {
    processes: reports.length,
    decisions: sum(reports, (r) => r.decisions),
    admitted: sum(reports, (r) => r.admitted),
    refused: sum(reports, (r) => r.refused),
    p50ms: Math.max(...reports.map((r) => r.p50)),
    p99ms: Math.max(...reports.map((r) => r.p99)),
    maxMs: Math.max(...reports.map((r) => r.maxLatencyMs)),
  }
}

function describeTarget(
  label: string,
  setup: () => Promise<{ target: Target; stop: () => Promise<void> }>,
  hashTags: readonly ('default' | 'one')[],
) {
  describe(`${PROCESSES} processes, one hot tenant, ${label}`, () => {
    let target: Target
    let stop: (() => Promise<void>) | undefined
    beforeAll(async () => {
      ;({ target, stop } = await setup())
    })
    afterAll(async () => {
      await stop?.()
    })

    for (const layout of hashTags) {
      const hashTag = layout === 'one' ? ('one' as const) : undefined
      const tagLabel = layout === 'one' ? ' (one hash tag)' : ''
      it(`rate 0${tagLabel}: admitted total is exactly the binding capacity`, async () => {
        const { reports, peek } = await hammer(target, `fixed-${layout}`, FIXED, {
          durationMs: 3000,
          ...(hashTag ? { hashTag } : {}),
        })
        checkClean(reports)
        const admitted = sum(reports, (r) => r.admitted)
        summary(`fleet ${label}${tagLabel} rate 0`, {
          ...figures(reports),
          expected: FIXED.org.capacity,
          remaining: peek.levels.map((l) => `${l.level}:${l.remaining}`).join('/'),
        })
        expect(sum(reports, (r) => r.refused)).toBeGreaterThan(0) // demand exceeded the allowance
        expect(admitted).toBe(FIXED.org.capacity)
        // Every level holds exactly the admitted charges: refused chains (refunded on a Cluster) left nothing.
        expect(peek.levels.map((l) => l.remaining)).toEqual([
          FIXED.user.capacity - admitted,
          0,
          FIXED.global.capacity - admitted,
        ])
      })

      it(`positive rate${tagLabel}: capacity + rate × elapsed ≥ admitted ≥ that − 1 per level`, async () => {
        const { reports, before, after } = await hammer(target, `refill-${layout}`, REFILLING, {
          durationMs: 3000,
          ...(hashTag ? { hashTag } : {}),
        })
        checkClean(reports)
        const admitted = sum(reports, (r) => r.admitted)
        const b = bounds(REFILLING, reports, before, after)
        summary(`fleet ${label}${tagLabel} rate>0`, {
          ...figures(reports),
          elapsedMs: Math.round(b.elapsedMs),
          decisionSpanMs: b.spanMs,
          upper: b.upper,
          lower: b.lower,
        })
        expect(admitted).toBeLessThanOrEqual(Math.floor(b.upper))
        expect(admitted).toBeGreaterThanOrEqual(Math.floor(b.lower))
      })
    }
  })
}

for (const library of libraries) {
  describeTarget(`single Redis node, ${library}`, async () => {
    const server: RedisServer = await startRedis()
    return {
      target: { redis: { url: server.url }, library, client: () => connect(server.url) },
      stop: () => server.stop(),
    }
  }, ['default'])

  describeTarget(`3-master Redis Cluster, ${library}`, async () => {
    const cluster: RedisCluster = await startRedisCluster({ masters: 3 })
    return {
      target: { redis: { cluster: cluster.nodes }, library, client: () => connectCluster(cluster.nodes) },
      stop: () => cluster.stop(),
    }
  }, ['default', 'one'])
}

describe.each(libraries)('script reloads never double-count (%s)', (library) => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('FUNCTION FLUSH and SCRIPT FLUSH every few ms under load: the admitted total is still exactly the capacity', async () => {
    let flushes = 0
    let stopFlushing = false
    const { reports, peek } = await hammer(
      { redis: { url: server.url }, library, client: () => connect(server.url) },
      'noscript',
      FIXED,
      {
        durationMs: 3000,
        during: async (client) => {
          const until = Date.now() + 2500
          while (!stopFlushing && Date.now() < until) {
            // The library FCALL runs (reloaded on "Function not found"), and the EVAL fallback's script.
            await (client as Redis).function('FLUSH')
            await (client as Redis).script('FLUSH')
            flushes++
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        },
      },
    )
    stopFlushing = true
    checkClean(reports)
    const admitted = sum(reports, (r) => r.admitted)
    summary(`FUNCTION FLUSH under load, ${library}`, { ...figures(reports), flushes })
    expect(flushes).toBeGreaterThan(10)
    expect(admitted).toBe(FIXED.org.capacity)
    expect(peek.levels.map((l) => l.remaining)).toEqual([
      FIXED.user.capacity - admitted,
      0,
      FIXED.global.capacity - admitted,
    ])
  })
})
