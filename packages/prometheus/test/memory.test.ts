import { createLimiter, ErrorCode, type Limiter, TollgateError } from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import { manualClock } from '@tollgate/testkit'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { registerMetrics } from '../src/index.js'
import { type ScrapeServer, sampleValue, serveMetrics, sumOf } from './exposition.js'

/** Each limiter's memory store, reported under the label `memory` (the limiter does not expose its store). */
const storeOf = new WeakMap<Limiter, { stats(): { size: number; maxKeys: number; evictions: number } }>()

const perSecond = (capacity: number) => ({ capacity, refill: { tokens: capacity, per: '1s' as const } })

function makeLimiter(options: { maxKeys?: number } = {}) {
  const clock = manualClock()
  const store = memoryStore({ clock: clock.now, maxKeys: options.maxKeys ?? 1000 })
  const limiter = createLimiter({
    store,
    clock: clock.now,
    levels: ['user', 'org'],
    tiers: {
      free: { user: perSecond(10), org: perSecond(100) },
      premium: { user: perSecond(100), org: perSecond(1000) },
    },
    defaultTier: 'free',
  })
  storeOf.set(limiter, store)
  return { clock, store, limiter }
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup(limiter: Limiter, options: Parameters<typeof registerMetrics>[1] = {}) {
  const registry = new Registry()
  const store = storeOf.get(limiter)
  const unregister = registerMetrics(limiter, {
    registry,
    name: 'api',
    ...(store ? { stores: { memory: store } } : {}),
    ...options,
  })
  const server: ScrapeServer = await serveMetrics(registry)
  cleanups.push(
    () => server.close(),
    unregister,
    () => limiter.close(),
  )
  return { registry, unregister, server }
}

describe('registerMetrics on a memory store, scraped over HTTP', () => {
  it('counts admitted and refused decisions by binding level and tier, and near-limit ones as Envoy does', async () => {
    const { limiter } = makeLimiter()
    const { server } = await setup(limiter)
    for (let i = 0; i < 12; i++) await limiter.check({ user: 'u1', org: 'acme' })
    for (let i = 0; i < 3; i++) await limiter.check({ user: 'u2', org: 'globex' }, { tier: 'premium' })

    const scrape = await server.scrape()
    expect(scrape.contentType).toContain('text/plain')
    expect(scrape.types.get('tollgate_decisions_total')).toBe('counter')
    const decisions = (outcome: string, tier: string, level = 'user') =>
      sampleValue(scrape, 'tollgate_decisions_total', { limiter: 'api', level, outcome, tier })
    expect(decisions('admitted', 'free')).toBe(10)
    expect(decisions('refused', 'free')).toBe(2)
    expect(decisions('degraded', 'free')).toBe(0)
    // premium: u2's user level (100) binds before the org's 1000.
    expect(decisions('admitted', 'premium')).toBe(3)
    expect(sumOf(scrape, 'tollgate_decisions_total')).toBe(15)
    // limit 10, ratio 0.8: used above 8 is near the limit, so the 9th and 10th admitted decisions.
    expect(sampleValue(scrape, 'tollgate_near_limit_decisions_total', { level: 'user', tier: 'free' })).toBe(
      2,
    )
    expect(sampleValue(scrape, 'tollgate_near_limit_decisions_total', { level: 'org', tier: 'free' })).toBe(0)
    expect(sumOf(scrape, 'tollgate_fallback_decisions_total')).toBe(0)
    expect(sumOf(scrape, 'tollgate_store_errors_total')).toBe(0)
    expect(sampleValue(scrape, 'tollgate_degraded', { limiter: 'api' })).toBe(0)
    expect(sampleValue(scrape, 'tollgate_breaker_state', { state: 'closed' })).toBe(1)
    expect(sampleValue(scrape, 'tollgate_breaker_state', { state: 'open' })).toBe(0)
  })

  it('never puts a tenant key into a label: series stay bounded however many tenants there are', async () => {
    const { limiter } = makeLimiter({ maxKeys: 100_000 })
    const { server } = await setup(limiter)
    await limiter.check({ user: 'seed', org: 'seed-org' })
    const before = (await server.scrape()).samples.length
    for (let i = 0; i < 500; i++) await limiter.check({ user: `tenant-${i}`, org: `org-${i % 7}` })
    const scrape = await server.scrape()
    expect(scrape.samples.length).toBe(before)
    expect(scrape.text).not.toMatch(/tenant-|org-\d|seed/)
    const labelValues = new Set(scrape.samples.flatMap((s) => Object.values(s.labels)))
    const allowed = new Set(['api', 'user', 'org', 'free', 'premium', 'admitted', 'refused', 'degraded'])
    for (const state of ['closed', 'half-open', 'open']) allowed.add(state)
    allowed.add('memory')
    for (const value of labelValues) if (!/^[0-9.+Inf]+$/.test(value)) expect(allowed).toContain(value)
  })

  it('reads memory-store size and evictions at each scrape', async () => {
    const { limiter, store } = makeLimiter({ maxKeys: 4 })
    const { server } = await setup(limiter)
    // Each user and its org are two buckets: users u0..u4 with one org make 6 buckets in a 4-key store.
    for (let i = 0; i < 5; i++) await limiter.check({ user: `u${i}`, org: 'acme' })
    const scrape = await server.scrape()
    const labels = { limiter: 'api', store: 'memory' }
    expect(store.stats().evictions).toBeGreaterThan(0)
    expect(sampleValue(scrape, 'tollgate_memory_store_keys', labels)).toBe(store.stats().size)
    expect(sampleValue(scrape, 'tollgate_memory_store_max_keys', labels)).toBe(4)
    expect(sampleValue(scrape, 'tollgate_memory_store_evictions_total', labels)).toBe(store.stats().evictions)
    expect(scrape.types.get('tollgate_memory_store_evictions_total')).toBe('counter')

    await limiter.check({ user: 'u9', org: 'acme' })
    const later = await server.scrape()
    expect(sampleValue(later, 'tollgate_memory_store_evictions_total', labels)).toBe(store.stats().evictions)
    expect(sampleValue(later, 'tollgate_memory_store_evictions_total', labels)).toBeGreaterThan(
      sampleValue(scrape, 'tollgate_memory_store_evictions_total', labels),
    )
  })

  it('agrees with prom-client’s own JSON view of the registry', async () => {
    const { limiter } = makeLimiter()
    const { server, registry } = await setup(limiter)
    for (let i = 0; i < 11; i++) await limiter.check({ user: 'u1', org: 'acme' })
    const scrape = await server.scrape()
    const json = await registry.getMetricsAsJSON()
    const decisions = json.find((m) => m.name === 'tollgate_decisions_total')!
    for (const entry of decisions.values) {
      const labels = Object.fromEntries(Object.entries(entry.labels).map(([k, v]) => [k, String(v)]))
      expect(sampleValue(scrape, 'tollgate_decisions_total', labels)).toBe(entry.value)
    }
    expect(decisions.values.reduce((sum, v) => sum + v.value, 0)).toBe(11)
  })

  it('keeps two limiters on one registry apart by name, and refuses a second registration under one name', async () => {
    const first = makeLimiter().limiter
    const second = makeLimiter().limiter
    const { registry, server } = await setup(first)
    const unregisterSecond = registerMetrics(second, { registry, name: 'admin' })
    cleanups.push(unregisterSecond, () => second.close())
    expect(() => registerMetrics(second, { registry, name: 'api' })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'name' }),
    )
    await first.check({ user: 'a', org: 'o' })
    await second.check({ user: 'a', org: 'o' })
    await second.check({ user: 'a', org: 'o' })
    const scrape = await server.scrape()
    expect(sumOf(scrape, 'tollgate_decisions_total', { limiter: 'api' })).toBe(1)
    expect(sumOf(scrape, 'tollgate_decisions_total', { limiter: 'admin' })).toBe(2)

    // Unregistering one limiter removes its series only; the other keeps counting.
    unregisterSecond()
    await second.check({ user: 'a', org: 'o' })
    await first.check({ user: 'a', org: 'o' })
    const after = await server.scrape()
    expect(sumOf(after, 'tollgate_decisions_total', { limiter: 'admin' })).toBe(0)
    expect(sumOf(after, 'tollgate_decisions_total', { limiter: 'api' })).toBe(2)
    expect(sampleValue(after, 'tollgate_degraded', { limiter: 'api' })).toBe(0)
    expect(() => sampleValue(after, 'tollgate_degraded', { limiter: 'admin' })).toThrow()
  })

  it('unregisters: the metrics leave the registry and the limiter is no longer listened to', async () => {
    const { limiter } = makeLimiter()
    const { server, unregister, registry } = await setup(limiter)
    await limiter.check({ user: 'u1', org: 'acme' })
    expect((await server.scrape()).samples.length).toBeGreaterThan(0)
    unregister()
    unregister() // twice is harmless
    await limiter.check({ user: 'u1', org: 'acme' })
    expect((await server.scrape()).samples).toEqual([])
    // The names are free again: registering anew starts from zero.
    const again = registerMetrics(limiter, { registry, name: 'api' })
    cleanups.push(again)
    await limiter.check({ user: 'u1', org: 'acme' })
    expect(sumOf(await server.scrape(), 'tollgate_decisions_total')).toBe(1)
  })

  it('uses the global registry by default and the limiter’s name as the limiter label', async () => {
    const { register } = await import('prom-client')
    const { limiter } = makeLimiter()
    const unregister = registerMetrics(limiter)
    cleanups.push(unregister, () => limiter.close())
    await limiter.check({ user: 'u1', org: 'acme' })
    const server = await serveMetrics(register)
    cleanups.push(() => server.close())
    const scrape = await server.scrape()
    const expectedName = (limiter as { name?: string }).name ?? 'default'
    expect(sumOf(scrape, 'tollgate_decisions_total', { limiter: expectedName })).toBe(1)
  })

  it('refuses bad options with a TollgateError naming the field', async () => {
    const { limiter } = makeLimiter()
    cleanups.push(() => limiter.close())
    const registry = new Registry()
    const cases: [Record<string, unknown>, string][] = [
      [{ nearLimitRatio: 1 }, 'nearLimitRatio'],
      [{ nearLimitRatio: -0.1 }, 'nearLimitRatio'],
      [{ nearLimitRatio: Number.NaN }, 'nearLimitRatio'],
      [{ prefix: 'bad-prefix' }, 'prefix'],
      [{ storeLatencyBuckets: [0.1, 0.01] }, 'storeLatencyBuckets'],
      [{ storeLatencyBuckets: [] }, 'storeLatencyBuckets'],
      [{ registry: {} }, 'registry'],
      [{ name: '' }, 'name'],
      [{ stores: { memory: {} } }, 'stores.memory'],
    ]
    for (const [options, field] of cases) {
      let caught: unknown
      try {
        registerMetrics(limiter, { registry, ...options })
      } catch (error) {
        caught = error
      }
      expect(caught, field).toBeInstanceOf(TollgateError)
      expect((caught as TollgateError).code).toBe(ErrorCode.InvalidOption)
      expect((caught as TollgateError).field).toBe(field)
    }
    expect(() => registerMetrics({} as Limiter, { registry })).toThrow(TollgateError)
    expect(await registry.getMetricsAsJSON()).toEqual([])
  })

  it('honours nearLimitRatio and a custom prefix', async () => {
    const { limiter } = makeLimiter()
    const { server } = await setup(limiter, { nearLimitRatio: 0.5, prefix: 'edge_' })
    for (let i = 0; i < 10; i++) await limiter.check({ user: 'u1', org: 'acme' })
    const scrape = await server.scrape()
    // limit 10, ratio 0.5: used above 5, so the 6th to the 10th.
    expect(sampleValue(scrape, 'edge_near_limit_decisions_total', { level: 'user', tier: 'free' })).toBe(5)
    expect(scrape.samples.some((s) => s.name.startsWith('tollgate_'))).toBe(false)
  })
})
