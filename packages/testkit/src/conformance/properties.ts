import { createLimiter, normalizePolicy, type Policy, type PolicyInput } from '@tollgate/core'
import { policyToInput } from '@tollgate/core/store'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { manualClock } from '../clock.js'
import { ModelBucket } from '../model.js'
import type { SuiteContext } from './context.js'

export function describeProperties(ctx: SuiteContext): void {
  const { makeStore, runs } = ctx
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
    async function run(configured: { a: Record<string, Policy>; b: Record<string, Policy> }, steps: Step[]) {
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
    }, 180_000)

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
    }, 180_000)
  })
}
