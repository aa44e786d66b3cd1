import {
  createLimiter,
  ErrorCode,
  type Limiter,
  type LimiterOptions,
  normalizePolicy,
  type Policy,
  type PolicyInput,
  type Store,
  TollgateError,
} from '@tollgate/core'
import { policyToInput } from '@tollgate/core/store'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { type ManualClock, manualClock } from './clock.js'
import { ModelBucket } from './model.js'

/** Makes a fresh, isolated store whose decisions use `clock` for time. */
export type StoreFactory = (clock: ManualClock) => Store | Promise<Store>

export interface ConformanceOptions {
  /** fast-check runs of each model-based property (default 60). */
  propertyRuns?: number
  /** Per-test timeout in ms (default 60 s). */
  timeoutMs?: number
}

const perSecond = (
  capacity: number,
  tokens: number,
  per: PolicyInput['refill'] extends infer R ? R : never = '1s' as never,
) => ({ capacity, refill: { tokens, per } }) as PolicyInput

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<TollgateError> {
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    expect((error as TollgateError).code).toBe(code)
    return error as TollgateError
  }
  throw new Error(`expected a TollgateError ${code}, but nothing was thrown`)
}

/**
 * The one suite every Store runs: single buckets, edge cases, chains, tiers, CRUD, runtime changes,
 * concurrency, model-based properties against an independent reference, and 30 simulated days.
 */
export function describeStoreConformance(
  name: string,
  makeStore: StoreFactory,
  options: ConformanceOptions = {},
): void {
  const runs = options.propertyRuns ?? 60
  const timeout = options.timeoutMs ?? 60_000

  describe(`Store conformance: ${name}`, { timeout }, () => {
    const opened: Store[] = []
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close?.()
    })

    async function setup(limiterOptions: Omit<LimiterOptions, 'store' | 'clock'> = {}) {
      const clock = manualClock()
      const store = await makeStore(clock)
      opened.push(store)
      const limiter = createLimiter({ ...limiterOptions, store, clock: clock.now, onStoreError: 'closed' })
      return { clock, store, limiter }
    }

    async function admitted(
      limiter: Limiter,
      subject: Parameters<Limiter['check']>[0],
      attempts: number,
      cost = 1,
    ) {
      let count = 0
      for (let i = 0; i < attempts; i++) if ((await limiter.check(subject, { cost })).allowed) count++
      return count
    }

    describe('one bucket', () => {
      it('admits a burst of capacity, then refuses with exact figures, then refills continuously', async () => {
        const { clock, limiter } = await setup({ policy: perSecond(10, 10) })
        const first = await limiter.check('tenant')
        expect(first).toMatchObject({
          allowed: true,
          remaining: 9,
          limit: 10,
          resetAfterMs: 100,
          retryAfterMs: 0,
        })
        expect(await admitted(limiter, 'tenant', 20)).toBe(9)
        const refused = await limiter.check('tenant')
        expect(refused).toMatchObject({
          allowed: false,
          remaining: 0,
          retryAfterMs: 100,
          resetAfterMs: 1000,
          binding: 'key',
        })
        clock.advance(99)
        expect((await limiter.check('tenant')).allowed).toBe(false)
        clock.advance(1)
        expect(await limiter.check('tenant')).toMatchObject({ allowed: true, remaining: 0 })
        clock.advance(10_000)
        expect(await limiter.check('tenant')).toMatchObject({ allowed: true, remaining: 9 })
      })

      it('keeps tenants apart, whatever their keys contain', async () => {
        const { limiter } = await setup({ policy: perSecond(1, 1) })
        const keys = [
          'a',
          'a:b',
          'a\u0000b',
          '{a}',
          '{a}:b',
          'ключ',
          '🔑',
          'x'.repeat(10_000),
          ' ',
          'user:a',
          '}{',
        ]
        for (const key of keys) expect((await limiter.check(key)).allowed, key.slice(0, 20)).toBe(true)
        for (const key of keys) expect((await limiter.check(key)).allowed, key.slice(0, 20)).toBe(false)
      })

      it('peeks without charging when cost is 0', async () => {
        const { limiter } = await setup({ policy: perSecond(3, 1) })
        expect(await limiter.check('t', { cost: 0 })).toMatchObject({ allowed: true, remaining: 3 })
        await limiter.check('t', { cost: 2 })
        expect(await limiter.check('t', { cost: 0 })).toMatchObject({ allowed: true, remaining: 1 })
        expect(await limiter.check('t', { cost: 0 })).toMatchObject({ allowed: true, remaining: 1 })
        await limiter.check('t')
        expect(await limiter.check('t', { cost: 0 })).toMatchObject({
          allowed: false,
          remaining: 0,
          retryAfterMs: 1000,
        })
      })

      it('rejects a bad cost with a TollgateError and writes nothing', async () => {
        const { limiter } = await setup({ policy: perSecond(3, 1) })
        for (const cost of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', null, {}]) {
          const error = await expectCode(limiter.check('t', { cost: cost as number }), ErrorCode.InvalidCost)
          expect(error.field).toBe('cost')
        }
        expect(await limiter.check('t', { cost: 0 })).toMatchObject({ remaining: 3 })
      })

      it('refuses a cost above capacity for ever, charging nothing (no retry time)', async () => {
        const { limiter } = await setup({ policy: perSecond(5, 1) })
        const d = await limiter.check('t', { cost: 6 })
        expect(d).toMatchObject({ allowed: false, remaining: 5, retryAfterMs: Number.POSITIVE_INFINITY })
        expect(await limiter.check('t', { cost: 5 })).toMatchObject({ allowed: true, remaining: 0 })
      })

      it('refuses everything at capacity 0, even a peek', async () => {
        const { limiter } = await setup({ policy: perSecond(0, 10) })
        expect(await limiter.check('t')).toMatchObject({
          allowed: false,
          retryAfterMs: Number.POSITIVE_INFINITY,
        })
        expect((await limiter.check('t', { cost: 0 })).allowed).toBe(false)
      })

      it('never refills at rate 0: a fixed allowance', async () => {
        const { clock, limiter } = await setup({ policy: { capacity: 3, refill: 0 } })
        expect(await admitted(limiter, 't', 5)).toBe(3)
        clock.advance(400 * 86_400_000)
        const d = await limiter.check('t')
        expect(d).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: Number.POSITIVE_INFINITY })
        expect(d.resetAfterMs).toBe(Number.POSITIVE_INFINITY)
      })

      it('admits fractional rates exactly: 0.3/s gives 3 tokens per 10 s', async () => {
        const { clock, limiter } = await setup({ policy: { capacity: 10, refill: 0.3 } })
        expect(await limiter.check('t', { cost: 10 })).toMatchObject({ allowed: true, resetAfterMs: 33_334 })
        let count = 0
        for (let i = 0; i < 100; i++) {
          clock.advance(100)
          if ((await limiter.check('t')).allowed) count++
        }
        expect(count).toBe(3)
      })

      it('refills one token an hour at 1/h, to the millisecond', async () => {
        const { clock, limiter } = await setup({ policy: { capacity: 1, refill: { tokens: 1, per: '1h' } } })
        await limiter.check('t')
        expect((await limiter.check('t')).retryAfterMs).toBe(3_600_000)
        clock.advance(3_599_999)
        expect((await limiter.check('t')).allowed).toBe(false)
        clock.advance(1)
        expect((await limiter.check('t')).allowed).toBe(true)
      })

      it('leaky bucket in delay mode spaces admissions at the rate and refuses when the queue is full', async () => {
        const { clock, limiter } = await setup({
          policy: {
            algorithm: 'leaky-bucket',
            mode: 'delay',
            capacity: 3,
            refill: { tokens: 10, per: '1s' },
          },
        })
        const delays: number[] = []
        for (let i = 0; i < 3; i++) delays.push((await limiter.check('t')).delayMs)
        expect(delays).toEqual([0, 100, 200])
        const full = await limiter.check('t')
        expect(full).toMatchObject({ allowed: false, delayMs: 0, retryAfterMs: 100 })
        clock.advance(100)
        expect(await limiter.check('t')).toMatchObject({ allowed: true, delayMs: 200 })
      })

      it('leaky bucket in reject mode admits what fits the meter', async () => {
        const { clock, limiter } = await setup({
          policy: { algorithm: 'leaky-bucket', capacity: 2, refill: 1 },
        })
        expect(await admitted(limiter, 't', 4)).toBe(2)
        clock.advance(1000)
        expect(await admitted(limiter, 't', 4)).toBe(1)
      })

      it('admits exactly capacity out of 10,000 concurrent checks on one key', async () => {
        const { limiter } = await setup({ policy: { capacity: 137, refill: 0 } })
        const decisions = await Promise.all(Array.from({ length: 10_000 }, () => limiter.check('hot')))
        expect(decisions.filter((d) => d.allowed)).toHaveLength(137)
      })
    })

    describe('chains', () => {
      const chain = {
        levels: ['user', 'org', 'global'] as const,
        policies: {
          user: perSecond(5, 5),
          org: perSecond(8, 8),
          global: perSecond(100, 100),
        },
      }

      it('charges every level or none, and names the level that bound', async () => {
        const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
        expect(await admitted(limiter, { user: 'alice', org: 'acme' }, 5)).toBe(5)
        const refusedByUser = await limiter.check({ user: 'alice', org: 'acme' })
        expect(refusedByUser).toMatchObject({ allowed: false, binding: 'user' })
        // dave shares the org: 3 left there
        expect(await admitted(limiter, { user: 'dave', org: 'acme' }, 5)).toBe(3)
        const refusedByOrg = await limiter.check({ user: 'dave', org: 'acme' })
        expect(refusedByOrg.binding).toBe('org')
        expect(refusedByOrg.levels.map((l) => [l.level, l.allowed, l.remaining])).toEqual([
          ['user', true, 2],
          ['org', false, 0],
          ['global', true, 92],
        ])
        // nothing was charged by the refusals: user dave still has 2, global still 92
        const peek = await limiter.check({ user: 'dave', org: 'other' }, { cost: 0 })
        expect(peek.levels.map((l) => l.remaining)).toEqual([2, 8, 92])
      })

      it('skips a level the subject has no key for, and keys a level named global by itself', async () => {
        const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
        const d = await limiter.check({ user: 'solo' })
        expect(d.levels.map((l) => `${l.level}=${l.key}`)).toEqual(['user=solo', 'global=global'])
      })

      it('refuses unknown levels and non-string keys in a subject', async () => {
        const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
        await expectCode(limiter.check({ usr: 'x' }), ErrorCode.UnknownLevel)
        await expectCode(limiter.check({ user: 7 as unknown as string }), ErrorCode.InvalidKey)
        await expectCode(limiter.check({ user: '' }), ErrorCode.InvalidKey)
        await expectCode(limiter.check(42 as unknown as string), ErrorCode.InvalidSubject)
      })
    })

    describe('tiers and the registry', () => {
      const tiers = {
        free: { user: perSecond(10, 10) },
        premium: { user: perSecond(100, 100) },
        enterprise: { user: perSecond(1000, 1000) },
      }

      it('uses the default tier, assignments at any level, and a forced tier', async () => {
        const { limiter } = await setup({ levels: ['user', 'org'], tiers, defaultTier: 'free' })
        expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({ tier: 'free', limit: 10 })
        await limiter.setTier({ level: 'org', key: 'acme' }, 'premium')
        expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({
          tier: 'premium',
          limit: 100,
        })
        await limiter.setTier({ level: 'user', key: 'u1' }, 'enterprise')
        expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({
          tier: 'enterprise',
          limit: 1000,
        })
        expect(await limiter.check({ user: 'u1', org: 'acme' }, { tier: 'free' })).toMatchObject({
          tier: 'free',
          limit: 10,
        })
        expect(await limiter.getTier({ level: 'org', key: 'acme' })).toBe('premium')
        await limiter.setTier({ level: 'user', key: 'u1' }, null)
        expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({ tier: 'premium' })
      })

      it('refuses unknown tiers and levels with typed errors', async () => {
        const { limiter } = await setup({ levels: ['user', 'org'], tiers })
        await expectCode(limiter.setTier('u1', 'platinum'), ErrorCode.UnknownTier)
        await expectCode(limiter.check('u1', { tier: 'platinum' }), ErrorCode.UnknownTier)
        await expectCode(limiter.updateLimits('platinum', { user: perSecond(1, 1) }), ErrorCode.UnknownTier)
        await expectCode(limiter.updateLimits('free', { team: perSecond(1, 1) }), ErrorCode.UnknownLevel)
        await expectCode(
          limiter.updateLimits('free', { user: { capacity: -1, refill: 1 } }),
          ErrorCode.InvalidPolicy,
        )
        await expectCode(limiter.setTier({ level: 'team', key: 'x' }, 'free'), ErrorCode.UnknownLevel)
        expect(await limiter.check('u1')).toMatchObject({ tier: 'free', limit: 10 })
      })

      it('changes a tier at runtime without a free refill, clamping tokens to the new capacity', async () => {
        const { clock, limiter } = await setup({ levels: ['user'], tiers })
        expect(await admitted(limiter, 'u1', 10)).toBe(10)
        await limiter.updateLimits('free', { user: perSecond(50, 50) })
        // exhausted stays exhausted; refills at the new rate
        expect(await limiter.check('u1')).toMatchObject({ allowed: false, limit: 50 })
        clock.advance(20)
        expect(await limiter.check('u1')).toMatchObject({ allowed: true, remaining: 0, limit: 50 })
        // a half-used bucket shrinking keeps at most the new capacity
        expect(await admitted(limiter, 'u2', 3)).toBe(3)
        await limiter.updateLimits('free', { user: perSecond(4, 4) })
        expect(await limiter.check('u2', { cost: 0 })).toMatchObject({ remaining: 4 })
        expect(await admitted(limiter, 'u2', 10)).toBe(4)
        // an idle, full bucket takes the new plan whole
        await limiter.updateLimits('free', { user: perSecond(20, 20) })
        expect(await limiter.check('fresh', { cost: 0 })).toMatchObject({ remaining: 20 })
      })

      it('keeps history when a tenant moves between tiers', async () => {
        const { limiter } = await setup({ levels: ['user'], tiers })
        expect(await admitted(limiter, 'u1', 8)).toBe(8)
        await limiter.setTier('u1', 'premium')
        // 2 tokens were left; moving up grants no refill beyond them
        expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 2, limit: 100 })
      })
    })

    describe('bucket administration', () => {
      it('creates, reads, updates and deletes per-tenant buckets with typed errors', async () => {
        const { limiter } = await setup({ levels: ['user'], policy: perSecond(10, 10) })
        await limiter.createBucket({ level: 'user', key: 'vip' }, perSecond(3, 1))
        await expectCode(
          limiter.createBucket({ level: 'user', key: 'vip' }, perSecond(3, 1)),
          ErrorCode.BucketExists,
        )
        expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
          custom: true,
          limit: 3,
          remaining: 3,
        })
        expect(await admitted(limiter, 'vip', 5)).toBe(3)
        await limiter.updateBucket({ level: 'user', key: 'vip' }, perSecond(6, 1))
        expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
          limit: 6,
          remaining: 0,
        })
        await limiter.deleteBucket({ level: 'user', key: 'vip' })
        // Back on the level's policy from that moment, with the tokens it held (none): no free refill.
        expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
          custom: false,
          limit: 10,
          remaining: 0,
        })
        await expectCode(limiter.deleteBucket({ level: 'user', key: 'vip' }), ErrorCode.UnknownBucket)
        await expectCode(
          limiter.updateBucket({ level: 'user', key: 'nobody' }, perSecond(1, 1)),
          ErrorCode.UnknownBucket,
        )
        await expectCode(
          limiter.createBucket({ level: 'team', key: 'x' }, perSecond(1, 1)),
          ErrorCode.UnknownLevel,
        )
        const bad = await expectCode(
          limiter.createBucket(
            { level: 'user', key: 'y' },
            { capacity: 2, refill: { tokens: 1, per: 'soon' as '1s' } },
          ),
          ErrorCode.InvalidPolicy,
        )
        expect(bad.field).toBe('policy.refill.per')
        await expectCode(
          limiter
            .getBucket({ level: 'user', key: 'y' })
            .then(() => limiter.updateBucket({ level: 'user', key: 'y' }, perSecond(1, 1))),
          ErrorCode.UnknownBucket,
        )
      })

      it('lets a second limiter on the same store see registry changes', async () => {
        const { store, limiter, clock } = await setup({
          levels: ['user', 'org'],
          tiers: { free: { user: perSecond(10, 10) }, premium: { user: perSecond(100, 100) } },
        })
        const other = createLimiter({
          store,
          clock: clock.now,
          levels: ['user', 'org'],
          tiers: { free: { user: perSecond(10, 10) }, premium: { user: perSecond(100, 100) } },
        })
        expect(await other.check({ user: 'u', org: 'o' })).toMatchObject({ tier: 'free' })
        await limiter.setTier({ level: 'org', key: 'o' }, 'premium')
        await limiter.createBucket({ level: 'user', key: 'w' }, perSecond(2, 2))
        await limiter.updateLimits('premium', { user: perSecond(70, 70) })
        await eventually(async () => {
          expect(await other.check({ user: 'u', org: 'o' }, { cost: 0 })).toMatchObject({
            tier: 'premium',
            limit: 70,
          })
          expect(await other.check({ user: 'w' }, { cost: 0 })).toMatchObject({ limit: 2 })
        })
        await other.close()
      })
    })

    describe('when a change takes effect', () => {
      const tiers = {
        free: { user: perSecond(10, 10) },
        premium: { user: perSecond(100, 100) },
      }

      it('moves an exhausted org to premium at that moment, however late the next request', async () => {
        const { clock, limiter } = await setup({ levels: ['user', 'org'], tiers, defaultTier: 'free' })
        const subject = { user: 'u1', org: 'acme' }
        expect(await admitted(limiter, subject, 10)).toBe(10)
        await limiter.setTier({ level: 'org', key: 'acme' }, 'premium')
        clock.advance(400)
        // 400 ms at premium's 100/s: 40 tokens, not the 4 free's rate would give.
        expect(await admitted(limiter, subject, 100)).toBe(40)
      })

      it('applies several changes between two touches each at its own moment', async () => {
        const { clock, limiter } = await setup({ levels: ['user'], policy: perSecond(30, 10) })
        expect(await admitted(limiter, 'u1', 30)).toBe(30)
        await limiter.createBucket({ level: 'user', key: 'u1' }, perSecond(100, 100)) // 0 of 100
        clock.advance(100) // +10 at 100/s
        await limiter.updateBucket({ level: 'user', key: 'u1' }, perSecond(50, 5)) // 10 of 50
        clock.advance(1000) // +5 at 5/s
        await limiter.deleteBucket({ level: 'user', key: 'u1' }) // back to 30 at 10/s, 15 held
        clock.advance(200) // +2
        expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 17, limit: 30 })
        expect(await admitted(limiter, 'u1', 40)).toBe(17)
      })

      it('applies a tier limit change to a bucket nobody touched since', async () => {
        const { clock, limiter } = await setup({ levels: ['user'], tiers })
        expect(await admitted(limiter, 'u1', 10)).toBe(10)
        await limiter.updateLimits('free', { user: perSecond(50, 50) })
        clock.advance(7 * 86_400_000) // a week later the bucket is full at the new capacity
        expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 50, limit: 50 })
        expect(await admitted(limiter, 'u2', 3)).toBe(3)
        await limiter.updateLimits('free', { user: perSecond(4, 1) })
        clock.advance(1000)
        expect(await limiter.check('u2', { cost: 0 })).toMatchObject({ remaining: 4, limit: 4 })
      })

      it('reads write nothing: getBucket and peeks leave every later decision as it was', async () => {
        const { clock, limiter } = await setup({ levels: ['user'], tiers })
        expect(await admitted(limiter, 'u1', 6)).toBe(6)
        await limiter.setTier('u1', 'premium')
        clock.advance(30)
        for (let i = 0; i < 5; i++) {
          await limiter.getBucket({ level: 'user', key: 'u1' })
          await limiter.check('u1', { cost: 0 })
          clock.advance(1)
        }
        // 4 left at the change, then 35 ms at 100/s: 3 more (38.5 rounds down).
        expect(await admitted(limiter, 'u1', 20)).toBe(7)
      })
    })

    describe('model-based properties', () => {
      const policyArb = fc
        .record({
          capacity: fc.integer({ min: 0, max: 20 }),
          refill: fc.oneof(
            fc.constant(0),
            fc.constant(0.3),
            fc.record({
              tokens: fc.integer({ min: 1, max: 50 }),
              per: fc.constantFrom(1, 7, 100, 1000, 60_000, 3_600_000),
            }),
          ),
        })
        .map((input) => normalizePolicy(input as PolicyInput))
      const tierNames = ['a', 'b'] as const
      const chains = [
        { user: 'u1', org: 'acme' },
        { user: 'u2', org: 'acme' },
        { user: 'u3', org: 'beta' },
      ]
      const buckets = [
        ['user', 'u1'],
        ['user', 'u2'],
        ['user', 'u3'],
        ['org', 'acme'],
        ['org', 'beta'],
      ] as const
      const changeArb = fc.oneof(
        fc.record({
          kind: fc.constant('assign' as const),
          org: fc.constantFrom('acme', 'beta'),
          tier: fc.constantFrom('a', 'b', null),
        }),
        fc.record({
          kind: fc.constant('limits' as const),
          tier: fc.constantFrom(...tierNames),
          level: fc.constantFrom('user', 'org'),
          policy: policyArb,
        }),
        fc.record({
          kind: fc.constant('custom' as const),
          bucket: fc.integer({ min: 0, max: buckets.length - 1 }),
          policy: fc.option(policyArb, { nil: null }),
        }),
      )
      const advanceArb = fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 4_000_000 })),
      })
      const checkArb = fc.record({
        kind: fc.constant('check' as const),
        chain: fc.integer({ min: 0, max: chains.length - 1 }),
        cost: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 25 })),
      })
      const readArb = fc.record({
        kind: fc.constant('read' as const),
        chain: fc.integer({ min: 0, max: chains.length - 1 }),
        bucket: fc.integer({ min: 0, max: buckets.length - 1 }),
      })
      type Step =
        | { kind: 'advance'; ms: number }
        | { kind: 'check'; chain: number; cost: number }
        | { kind: 'read'; chain: number; bucket: number }
        | (typeof changeArb extends fc.Arbitrary<infer C> ? C : never)
      const stepsArb = fc.array(fc.oneof(advanceArb, checkArb, checkArb, changeArb) as fc.Arbitrary<Step>, {
        minLength: 1,
        maxLength: 40,
      })
      const tierArb = fc.record({ user: policyArb, org: policyArb })

      /** Runs steps on a fresh store through a limiter; returns every check's figures. */
      async function run(
        configured: { a: Record<string, Policy>; b: Record<string, Policy> },
        steps: Step[],
      ) {
        const clock = manualClock()
        const store = await makeStore(clock)
        const limiter = createLimiter({
          store,
          clock: clock.now,
          levels: ['user', 'org'],
          tiers: configured,
          defaultTier: 'a',
          onStoreError: 'closed',
        })
        const custom = new Set<number>()
        const seen: unknown[] = []
        try {
          for (const step of steps) {
            if (step.kind === 'advance') clock.advance(step.ms)
            else if (step.kind === 'assign') await limiter.setTier({ level: 'org', key: step.org }, step.tier)
            else if (step.kind === 'limits')
              await limiter.updateLimits(step.tier, { [step.level]: policyToInput(step.policy) })
            else if (step.kind === 'custom') {
              const [level, key] = buckets[step.bucket]!
              if (step.policy === null) {
                if (custom.delete(step.bucket)) await limiter.deleteBucket({ level, key })
              } else if (custom.has(step.bucket))
                await limiter.updateBucket({ level, key }, policyToInput(step.policy))
              else {
                custom.add(step.bucket)
                await limiter.createBucket({ level, key }, policyToInput(step.policy))
              }
            } else if (step.kind === 'read') {
              const [level, key] = buckets[step.bucket]!
              await limiter.getBucket({ level, key })
              await limiter.check(chains[step.chain]!, { cost: 0 })
              await limiter.getTier({ level: 'org', key: chains[step.chain]!.org })
            } else {
              const d = await limiter.check(chains[step.chain]!, { cost: step.cost })
              expect(d.degraded).toBeUndefined()
              seen.push([
                d.allowed,
                d.tier,
                d.levels.map((l) => [l.allowed, l.remaining, l.retryAfterMs, l.resetAfterMs, l.limit]),
              ])
            }
          }
        } finally {
          await limiter.close()
          await store.close?.()
        }
        return seen
      }

      it('decides every step as the reference does, with tier, limit and bucket changes at random moments', async () => {
        await fc.assert(
          fc.asyncProperty(tierArb, tierArb, stepsArb, async (tierA, tierB, steps) => {
            // The reference: every change applies at its moment; within one ms the last change wins.
            const clock = manualClock()
            const defs: Record<string, Record<string, Policy>> = { a: { ...tierA }, b: { ...tierB } }
            const assigned = new Map<string, string>()
            const customs = new Map<number, Policy>()
            const effective = (b: number): Policy => {
              const [level, key] = buckets[b]!
              const org = level === 'org' ? key : chains.find((c) => c.user === key)!.org
              return customs.get(b) ?? defs[assigned.get(org) ?? 'a']![level]!
            }
            /** Per bucket: the policy in force from each moment of change on. */
            const timeline = buckets.map((_, b) => [{ at: 0, policy: effective(b) }])
            const persisted = new Map<number, { bucket: ModelBucket; writtenAt: number }>()
            const expected: unknown[] = []
            for (const step of steps) {
              if (step.kind === 'advance') clock.advance(step.ms)
              else if (step.kind === 'check') {
                const now = clock.now()
                const chain = chains[step.chain]!
                const ids = [
                  buckets.findIndex(([l, k]) => l === 'user' && k === chain.user),
                  buckets.findIndex(([l, k]) => l === 'org' && k === chain.org),
                ]
                const live = ids.map((b) => {
                  const kept = persisted.get(b)
                  const bucket = kept ? kept.bucket.clone() : new ModelBucket(effective(b), now)
                  for (const { at, policy } of timeline[b]!) {
                    if (kept && at >= kept.writtenAt && at <= now) bucket.changeTo(policy, at)
                  }
                  return bucket
                })
                const policies = ids.map(effective)
                const fits = live.map((m, i) => m.wouldFit(policies[i]!, now, step.cost))
                const allowed = fits.every(Boolean)
                const charge = allowed && step.cost > 0
                const results = live.map((m) => m.settle(step.cost, charge))
                if (charge) {
                  for (const [i, b] of ids.entries()) persisted.set(b, { bucket: live[i]!, writtenAt: now })
                }
                expected.push([
                  allowed,
                  assigned.get(chain.org) ?? 'a',
                  results.map((r, i) => [
                    r.allowed,
                    r.remaining,
                    r.retryAfterMs,
                    r.resetAfterMs,
                    policies[i]!.capacity,
                  ]),
                ])
              } else {
                if (step.kind === 'assign') {
                  if (step.tier === null) assigned.delete(step.org)
                  else assigned.set(step.org, step.tier)
                } else if (step.kind === 'limits') defs[step.tier]![step.level] = step.policy
                else if (step.kind === 'custom') {
                  if (step.policy === null) customs.delete(step.bucket)
                  else customs.set(step.bucket, step.policy)
                }
                const now = clock.now()
                timeline.forEach((entries, b) => {
                  const last = entries[entries.length - 1]!
                  if (last.at === now) last.policy = effective(b)
                  else entries.push({ at: now, policy: effective(b) })
                })
              }
            }
            expect(await run({ a: tierA, b: tierB }, steps)).toEqual(expected)
          }),
          { numRuns: runs },
        )
      })

      it('makes the same decisions whether or not reads are interleaved', async () => {
        await fc.assert(
          fc.asyncProperty(
            tierArb,
            tierArb,
            stepsArb,
            fc.array(fc.tuple(fc.nat(), readArb), { maxLength: 20 }),
            async (tierA, tierB, steps, reads) => {
              const withReads: Step[] = [...steps]
              for (const [at, read] of reads) withReads.splice(at % (withReads.length + 1), 0, read)
              const tiers = { a: tierA, b: tierB }
              expect(await run(tiers, withReads)).toEqual(await run(tiers, steps))
            },
          ),
          { numRuns: Math.max(10, Math.floor(runs / 2)) },
        )
      })
    })
    describe('30 simulated days', () => {
      // Capacities are large enough that the bucket never fills between two greedy visits (each step is
      // shorter than the time to fill), so every token the rate makes is taken and none is lost to the cap.
      it.each([
        ['0.3/s', { capacity: 1000, refill: 0.3 }],
        ['1/h', { capacity: 3, refill: { tokens: 1, per: '1h' } }],
        ['7/min', { capacity: 500, refill: { tokens: 7, per: '1m' } }],
        ['1000/s', { capacity: 1_000_000, refill: { tokens: 1000, per: '1s' } }],
      ] as const)(
        'admits capacity + rate × elapsed within one token at %s, per level of a chain',
        async (_label, input) => {
          const policy = normalizePolicy(input as PolicyInput)
          const loose = normalizePolicy({
            capacity: policy.capacity * 10,
            refill: { tokens: policy.tokens * 10, per: policy.per },
          })
          const { clock, limiter } = await setup({
            levels: ['user', 'org'],
            policies: { user: policyToInput(policy), org: policyToInput(loose) },
          })
          const subject = { user: 'greedy', org: 'greedy-org' }
          const start = clock.now()
          const days30 = 30 * 86_400_000
          // Less than the time to refill capacity − 1 tokens: a fraction of a token may be left over from the last visit.
          const fillMs = Math.floor(((policy.capacity - 1) * policy.per) / policy.tokens)
          const random = seeded(42)
          let admittedTokens = 0
          // The bucket starts full: drain it at once, then visit often enough that it never caps.
          for (let first = true; first || clock.now() - start < days30; first = false) {
            if (!first)
              clock.advance(Math.min(days30 - (clock.now() - start), 1 + Math.floor(random() * fillMs)))
            // Take exactly what is there: peek, then consume all of it in one request.
            const peek = await limiter.check(subject, { cost: 0 })
            const take = peek.levels[0]!.remaining
            if (take === 0) continue
            const got = await limiter.check(subject, { cost: take })
            expect(got.allowed).toBe(true)
            admittedTokens += take
          }
          const elapsed = clock.now() - start
          const expected = policy.capacity + (elapsed * policy.tokens) / policy.per
          expect(Math.abs(admittedTokens - expected)).toBeLessThanOrEqual(1)
        },
      )
    })
  })
}

/** Retries an assertion until it passes or `ms` of real time go by (for cross-process propagation only). */
export async function eventually(assertion: () => Promise<void>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await assertion()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

/** A small deterministic generator (mulberry32) so simulated traffic is the same every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
