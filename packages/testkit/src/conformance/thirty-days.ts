import { normalizePolicy, type PolicyInput } from '@tollgate/core'
import { policyToInput } from '@tollgate/core/store'
import { describe, expect, it } from 'vitest'
import { type SuiteContext, seeded } from './context.js'

export function describeThirtyDays(ctx: SuiteContext): void {
  const { setup } = ctx
  describe('30 simulated days', () => {
    // Capacities are large enough that the bucket never fills between two greedy visits (each step is
    // shorter than the time to fill), so every token the rate makes is taken and none is lost to the cap.
    // Visits are about 30 days / (half the time to fill) apart, two checks each: 1000/s gets a capacity
    // that fills in 4000 s, about 1,300 visits (a Cluster on a loaded CI machine took 53 s for the 5,200 a
    // 1,000 s fill made).
    it.each([
      ['0.3/s', { capacity: 1000, refill: 0.3 }],
      ['1/h', { capacity: 3, refill: { tokens: 1, per: '1h' } }],
      ['7/min', { capacity: 500, refill: { tokens: 7, per: '1m' } }],
      ['1000/s', { capacity: 4_000_000, refill: { tokens: 1000, per: '1s' } }],
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
}
