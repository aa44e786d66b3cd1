import { randomUUID } from 'node:crypto'
import { createLimiter, type LimiterEvent } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerMetrics } from '../src/index.js'
import { type ScrapeServer, sampleValue, select, serveMetrics, sumOf } from './exposition.js'

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.stop()
})

/** An ioredis client as tollgate wants it: no offline queue, no retries per request, reconnecting. */
async function connect(port: number): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: () => 50,
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

async function until(limitMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const started = Date.now()
  while (!(await probe())) {
    if (Date.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const STORE_ERROR_CODES = ['ERR_TOLLGATE_STORE_UNAVAILABLE', 'ERR_TOLLGATE_STORE_TIMEOUT', 'other']

describe('registerMetrics on a real Redis, scraped over HTTP, through an outage', () => {
  let client: Redis
  let server: ScrapeServer
  let unregister: () => void
  let limiter: ReturnType<typeof createLimiter>
  const clock = manualClock()
  const events: LimiterEvent[] = []

  beforeAll(async () => {
    client = await connect(redis.port)
    limiter = createLimiter({
      store: redisStore({ client, prefix: `t${randomUUID().slice(0, 8)}:`, timeoutMs: 500 }),
      clock: clock.now,
      levels: ['user', 'org'],
      tiers: {
        free: {
          user: { capacity: 5, refill: { tokens: 5, per: '1m' } },
          org: { capacity: 100, refill: { tokens: 100, per: '1m' } },
        },
      },
      onStoreError: 'local',
      breaker: { failures: 2, cooldownMs: 1000 },
    })
    limiter.on((event) => events.push(event))
    const registry = new Registry()
    unregister = registerMetrics(limiter, { registry, name: 'api' })
    server = await serveMetrics(registry)
  })
  afterAll(async () => {
    unregister?.()
    await server?.close()
    await limiter?.close()
    client?.disconnect()
  })

  it('counts shared decisions, refusals included, and store latency when decisions carry storeMs', async () => {
    for (let i = 0; i < 7; i++) await limiter.check({ user: 'u1', org: 'acme' })
    const scrape = await server.scrape()
    const decisions = (outcome: string) =>
      sampleValue(scrape, 'tollgate_decisions_total', {
        limiter: 'api',
        level: 'user',
        outcome,
        tier: 'free',
      })
    expect(decisions('admitted')).toBe(5)
    expect(decisions('refused')).toBe(2)
    expect(decisions('degraded')).toBe(0)
    // capacity 5, ratio 0.8: used above 4 is near, so only the 5th admitted decision.
    expect(sampleValue(scrape, 'tollgate_near_limit_decisions_total', { level: 'user', tier: 'free' })).toBe(
      1,
    )
    expect(sampleValue(scrape, 'tollgate_degraded', { limiter: 'api' })).toBe(0)

    // The histogram holds exactly the decisions whose event carried storeMs.
    const timed = events.filter((e) => e.type === 'decision' && typeof e.storeMs === 'number').length
    expect(timed).toBe(7)
    expect(sumOf(scrape, 'tollgate_store_duration_seconds_count', { limiter: 'api' })).toBe(timed)
    expect(scrape.types.get('tollgate_store_duration_seconds')).toBe('histogram')
    expect(
      sampleValue(scrape, 'tollgate_store_duration_seconds_bucket', { limiter: 'api', le: '+Inf' }),
    ).toBe(timed)
    expect(sampleValue(scrape, 'tollgate_store_duration_seconds_sum', { limiter: 'api' })).toBeGreaterThan(0)
  })

  it('during an outage counts degraded and fallback decisions, store errors, and the breaker; then recovery', async () => {
    const before = await server.scrape()
    // Kill the redis-server this file started, by its process id, and wait for the client to notice.
    process.kill(redis.pid, 'SIGKILL')
    await until(5000, () => client.status !== 'ready')

    for (let i = 0; i < 4; i++) await limiter.check({ user: 'u2', org: 'acme' })
    const during = await server.scrape()
    expect(
      sampleValue(during, 'tollgate_decisions_total', { level: 'user', outcome: 'degraded', tier: 'free' }),
    ).toBe(4)
    expect(sumOf(during, 'tollgate_decisions_total', { outcome: 'admitted' })).toBe(
      sumOf(before, 'tollgate_decisions_total', { outcome: 'admitted' }),
    )
    // local mode: a fresh in-process bucket of 5 admits all four.
    expect(
      sampleValue(during, 'tollgate_fallback_decisions_total', { mode: 'local', outcome: 'admitted' }),
    ).toBe(4)
    expect(sumOf(during, 'tollgate_fallback_decisions_total')).toBe(4)
    // Two failures open the breaker; later decisions fall back without asking the store.
    const storeErrors = select(during, 'tollgate_store_errors_total')
    expect(sumOf(during, 'tollgate_store_errors_total', { mode: 'local' })).toBe(2)
    for (const sample of storeErrors) expect(STORE_ERROR_CODES).toContain(sample.labels.code)
    expect(sampleValue(during, 'tollgate_degraded', { limiter: 'api' })).toBe(1)
    expect(sampleValue(during, 'tollgate_breaker_state', { state: 'open' })).toBe(1)
    expect(sampleValue(during, 'tollgate_breaker_state', { state: 'closed' })).toBe(0)

    // Redis back on the same port; after the cooldown a probe reaches it and shared decisions resume.
    await redis.restart()
    await until(10_000, () => client.status === 'ready')
    clock.advance(1001)
    await until(5000, async () => {
      const decision = await limiter.check({ user: 'u3', org: 'acme' })
      return decision.degraded === undefined
    })
    const after = await server.scrape()
    expect(sampleValue(after, 'tollgate_degraded', { limiter: 'api' })).toBe(0)
    expect(sampleValue(after, 'tollgate_breaker_state', { state: 'closed' })).toBe(1)
    expect(sampleValue(after, 'tollgate_breaker_state', { state: 'open' })).toBe(0)
    expect(sumOf(after, 'tollgate_decisions_total', { outcome: 'admitted' })).toBeGreaterThan(
      sumOf(during, 'tollgate_decisions_total', { outcome: 'admitted' }),
    )
    expect(sumOf(after, 'tollgate_fallback_decisions_total')).toBeGreaterThanOrEqual(4)
    expect(after.text).not.toMatch(/u1|u2|u3|acme/)
  })
})
