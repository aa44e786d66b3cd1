import { createLimiter, type Decision, type PolicyInput } from '@tollgate/core'
import { manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import fc from 'fast-check'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, subscribed, uniquePrefix, within } from './helpers.js'

/**
 * Exact local refusals (issue 12): a refusal is answered here until its retry time, never admitting what Redis
 * would refuse; every figure matches what Redis would have said; changes and refunds drop what they concern.
 */
let server: RedisServer
let c: Redis
/** A second server's own connection: one limiter name is taken once per client and prefix. */
let other: Redis

beforeAll(async () => {
  server = await startRedis()
  c = await connect(server.port)
  other = await connect(server.port)
})

afterAll(async () => {
  c?.disconnect()
  other?.disconnect()
  await server?.stop()
})

const perMinute = (n: number): PolicyInput => ({ capacity: n, refill: { tokens: n, per: '1m' } })
const tiers = {
  free: { user: perMinute(3), org: perMinute(5) },
  pro: { user: perMinute(30), org: perMinute(50) },
}

async function scriptCalls(): Promise<number> {
  const info = await c.info('commandstats')
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
  return calls('fcall') + calls('evalsha') + calls('eval')
}

function setup(
  options: {
    localRefusals?: number
    prefix?: string
    clock?: ReturnType<typeof manualClock>
    client?: Redis
  } = {},
) {
  const clock = options.clock ?? manualClock()
  const store = redisStore({
    client: options.client ?? c,
    prefix: options.prefix ?? uniquePrefix(),
    clock: clock.now,
    timeoutMs: 2000,
    localRefusals: options.localRefusals,
  })
  const limiter = createLimiter({
    store,
    clock: clock.now,
    levels: ['user', 'org'],
    tiers,
    defaultTier: 'free',
  })
  return { clock, store, limiter }
}

const figures = (d: Decision) => ({
  allowed: d.allowed,
  binding: d.binding,
  remaining: d.remaining,
  retryAfterMs: d.retryAfterMs,
  resetAfterMs: d.resetAfterMs,
  now: d.now,
  levels: d.levels.map((l) => [l.level, l.allowed, l.remaining, l.retryAfterMs, l.resetAfterMs, l.limit]),
})

describe('local refusals', () => {
  it('answers a refused chain asked again before its retry time without a Redis call, with the figures Redis would give', async () => {
    const { clock, limiter } = setup()
    // The subscription's first "anything may have changed" drops every refusal: let it pass first.
    await Promise.all([subscribed(limiter), limiter.getTier({ level: 'org', key: 'o' })])
    const chain = { user: 'u', org: 'o' }
    for (let i = 0; i < 3; i++) expect((await limiter.check(chain)).allowed).toBe(true)
    const first = await limiter.check(chain)
    expect(first).toMatchObject({ allowed: false, binding: 'user', retryAfterMs: 20_000 })
    const before = await scriptCalls()
    clock.advance(7_000)
    const local = await limiter.check(chain)
    for (let i = 0; i < 50; i++) await limiter.check(chain)
    expect(await scriptCalls()).toBe(before)
    expect(local).toMatchObject({ allowed: false, retryAfterMs: 13_000, now: first.now + 7_000 })
    // At the retry time Redis is asked again, and admits.
    clock.advance(13_000)
    expect((await limiter.check(chain)).allowed).toBe(true)
    expect(await scriptCalls()).toBe(before + 1)
    await limiter.close()
  })

  it('answers a held refusal in the same turn (checkNow gives a Decision, not a Promise), and asks Redis once it expires', async () => {
    const { clock, limiter, store } = setup()
    await Promise.all([subscribed(limiter), limiter.getTier({ level: 'org', key: 'o' })])
    const chain = { user: 'u', org: 'o' }
    for (let i = 0; i < 3; i++) expect((await limiter.check(chain)).allowed).toBe(true)
    const first = limiter.checkNow(chain)
    // The first refusal comes from Redis.
    expect(first).toBeInstanceOf(Promise)
    expect(await first).toMatchObject({ allowed: false, retryAfterMs: 20_000 })
    clock.advance(5_000)
    const held = limiter.checkNow(chain)
    expect(held).not.toBeInstanceOf(Promise)
    expect(held).toMatchObject({ allowed: false, binding: 'user', retryAfterMs: 15_000, remaining: 0 })
    expect(store.localRefusalStats().answered).toBe(1)
    // Expired: dropped here, and the decide that follows in the same turn goes to Redis.
    const before = await scriptCalls()
    clock.advance(15_000)
    const after = limiter.checkNow(chain)
    expect(after).toBeInstanceOf(Promise)
    expect((await after).allowed).toBe(true)
    expect(await scriptCalls()).toBe(before + 1)
    await limiter.close()
  })

  it('never differs from Redis asked every time, in any figure, over random checks, costs, time, refunds and changes', async () => {
    // Checks weigh most, so a refused chain is often asked again at its cost before its retry time.
    const step = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('check' as const),
          user: fc.constantFrom('a', 'b'),
          cost: fc.constantFrom(1, 1, 1, 0, 3),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 30_000 }),
        }),
      },
      fc.record({ kind: fc.constant('refund' as const) }),
      fc.record({ kind: fc.constant('tier' as const), tier: fc.constantFrom('free', 'pro', null) }),
      fc.record({ kind: fc.constant('bucket' as const), capacity: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ kind: fc.constant('limits' as const), capacity: fc.integer({ min: 1, max: 6 }) }),
    )
    let answeredLocally = 0
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 60 }), async (steps) => {
        const seen: unknown[][] = [[], []]
        for (const r of [0, 1]) {
          const { clock, limiter, store } = setup({ localRefusals: r === 0 ? 0 : undefined })
          await Promise.all([subscribed(limiter), limiter.getTier({ level: 'org', key: 'o' })])
          let last: Decision | undefined
          let custom = false
          for (const s of steps) {
            if (s.kind === 'advance') clock.advance(s.ms)
            else if (s.kind === 'check') {
              last = await limiter.check({ user: s.user, org: 'o' }, { cost: s.cost })
              seen[r]!.push(figures(last))
            } else if (s.kind === 'refund') {
              if (last) await limiter.refund(last)
            } else if (s.kind === 'tier') await limiter.setTier({ level: 'org', key: 'o' }, s.tier)
            else if (s.kind === 'limits') await limiter.updateLimits('free', { user: perMinute(s.capacity) })
            else {
              const bucket = { level: 'user', key: 'a' }
              if (custom) await limiter.updateBucket(bucket, perMinute(s.capacity))
              else await limiter.createBucket(bucket, perMinute(s.capacity))
              custom = true
            }
          }
          answeredLocally += store.localRefusalStats().answered
          await limiter.close()
        }
        expect(seen[1]).toEqual(seen[0])
      }),
      { numRuns: 60 },
    )
    console.info(`answered locally: ${answeredLocally} checks`)
    // The property is worth something only if local answers happened.
    expect(answeredLocally).toBeGreaterThan(20)
  }, 180_000)

  it('drops what it knows of a tenant when another server changes it, and never admits what Redis refuses', async () => {
    const prefix = uniquePrefix()
    const clock = manualClock()
    const a = setup({ prefix, clock })
    const b = setup({ prefix, clock, client: other })
    const chain = { user: 'u', org: 'o' }
    // Both servers listen for changes before any is made.
    await Promise.all([
      subscribed(a.limiter),
      subscribed(b.limiter),
      a.limiter.getTier({ level: 'org', key: 'o' }),
      b.limiter.getTier({ level: 'org', key: 'o' }),
    ])
    for (let i = 0; i < 3; i++) await a.limiter.check(chain)
    expect((await a.limiter.check(chain)).allowed).toBe(false)
    // Server B's checks only take tokens: A's local refusal stays right.
    expect((await b.limiter.check(chain)).allowed).toBe(false)
    // B moves the org to pro (30/min: a token every 2 s, where free's refusal said 20 s). A hears it and asks
    // Redis again, which admits 2 s later under pro.
    await b.limiter.setTier({ level: 'org', key: 'o' }, 'pro')
    clock.advance(2000)
    await within(2000, async () => (await a.limiter.check(chain)).allowed)
    await a.limiter.close()
    await b.limiter.close()
  })

  it('drops a refusal when a refund made here gives tokens back', async () => {
    const { limiter } = setup()
    await Promise.all([subscribed(limiter), limiter.getTier({ level: 'org', key: 'o' })])
    const chain = { user: 'u', org: 'o' }
    const admitted: Decision[] = []
    for (let i = 0; i < 3; i++) admitted.push(await limiter.check(chain))
    expect((await limiter.check(chain)).allowed).toBe(false)
    expect((await limiter.check(chain)).allowed).toBe(false)
    await limiter.refund(admitted[0]!)
    expect(await limiter.check(chain)).toMatchObject({ allowed: true, remaining: 0 })
    await limiter.close()
  })

  it('with block, stops answering a blocked subject locally when its block ends, before its retry time', async () => {
    // Found by block.test.ts's model comparison: the block (1 h) ends 1 s before the bucket has 2 tokens,
    // and a refusal in that second counts again in Redis (and blocks again), so it must reach Redis.
    const clock = manualClock()
    const store = redisStore({ client: c, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 2000 })
    const limiter = createLimiter({
      store,
      clock: clock.now,
      policy: { capacity: 2, refill: { tokens: 1, per: '1s' } },
      block: { after: 1, within: 1, for: '1h' },
    })
    await Promise.all([subscribed(limiter), limiter.check('warm', { cost: 0 })])
    expect((await limiter.check('ip')).allowed).toBe(true)
    const blocked = await limiter.check('ip', { cost: 2 })
    expect(blocked).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 3_601_000 })
    clock.advance(3_600_000)
    const again = await limiter.check('ip', { cost: 2 })
    expect(again).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 3_601_000 })
    expect(store.localRefusalStats().answered).toBe(0)
    await limiter.close()
  })

  it('with block, answers only a blocked subject locally, so every refusal that counts reaches Redis', async () => {
    const clock = manualClock()
    const store = redisStore({ client: c, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 2000 })
    const limiter = createLimiter({
      store,
      clock: clock.now,
      policy: perMinute(2),
      block: { after: 3, within: '1m', for: '15m' },
    })
    await Promise.all([subscribed(limiter), limiter.check('warm', { cost: 0 })])
    for (let i = 0; i < 2; i++) expect((await limiter.check('ip')).allowed).toBe(true)
    // Three refusals within a minute block: each is asked of Redis, which counts it.
    for (let i = 0; i < 3; i++) await limiter.check('ip')
    expect(store.localRefusalStats().answered).toBe(0)
    const blocked = await limiter.check('ip')
    expect(blocked).toMatchObject({ allowed: false, blocked: true })
    clock.advance(60_000)
    const later = await limiter.check('ip')
    expect(later).toMatchObject({
      allowed: false,
      blocked: true,
      retryAfterMs: blocked.retryAfterMs - 60_000,
    })
    expect(store.localRefusalStats().answered).toBeGreaterThan(0)
    await limiter.close()
  })

  it('holds at most localRefusals entries', async () => {
    const { limiter, store } = setup({ localRefusals: 3 })
    const size = () => store.localRefusalStats().held
    for (let t = 0; t < 10; t++) {
      for (let i = 0; i < 4; i++) await limiter.check({ user: `u${t}`, org: `o${t}` })
      expect(size()).toBeLessThanOrEqual(3)
    }
    expect(size()).toBe(3)
    await limiter.close()
  })
})
