import { describe, expect, it } from 'vitest'
import { perSecond, type SuiteContext } from './context.js'

/** A token a minute: a block must outlast the wait the bucket already has to show. */
const perMinute = (capacity: number) => ({ capacity, refill: { tokens: 1, per: '1m' } }) as const

/** createLimiter's `block` (issue 14): blocking repeat offenders, kept in the store itself. */
export function describeBlocking(ctx: SuiteContext): void {
  const { setup } = ctx
  describe('blocking repeat offenders', () => {
    it('blocks at the after-th refusal within the span, refuses for exactly the duration, then lifts', async () => {
      const { clock, limiter } = await setup({
        policy: perSecond(2, 1),
        block: { after: 3, within: '10s', for: '1m' },
      })
      expect((await limiter.check('ip', { cost: 2 })).allowed).toBe(true)
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 1000 })
      clock.advance(100)
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 900 })
      clock.advance(100)
      const blocked = await limiter.check('ip')
      expect(blocked).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 60_000, remaining: 0 })
      expect(blocked.levels[0]).toMatchObject({ blocked: true, retryAfterMs: 60_000, resetAfterMs: 61_000 })
      // Refusals during the block do not count: hammering neither extends nor renews it.
      for (let i = 0; i < 5; i++) {
        clock.advance(10_000)
        expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: true })
      }
      clock.advance(9_999)
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, retryAfterMs: 1 })
      clock.advance(1)
      expect(await limiter.check('ip')).toMatchObject({ allowed: true, remaining: 0, blocked: false })
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 1000 })
      // The refusal in the block's last ms did not count: two refusals since, and no block yet.
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false })
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 60_000 })
      expect((await limiter.check('someone else')).allowed).toBe(true)
    })

    it('counts only refusals inside the span, and no peeks or impossible costs', async () => {
      const { clock, limiter } = await setup({
        policy: perMinute(2),
        block: { after: 3, within: '10s', for: '10m' },
      })
      await limiter.check('ip', { cost: 2 })
      expect((await limiter.check('ip', { cost: 0 })).allowed).toBe(false)
      expect((await limiter.check('ip', { cost: 5 })).retryAfterMs).toBe(Number.POSITIVE_INFINITY)
      for (const wait of [0, 5_000, 5_000]) {
        clock.advance(wait)
        // The third: the first refusal is exactly 10 s old, outside the span.
        expect((await limiter.check('ip')).blocked).toBe(false)
      }
      clock.advance(1)
      expect(await limiter.check('ip')).toMatchObject({ blocked: true, retryAfterMs: 600_000 })
    })

    it('blocks only the levels named (default: the first), across a chain', async () => {
      const { clock, limiter } = await setup({
        levels: ['user', 'org'],
        policies: { user: perMinute(2), org: perMinute(3) },
        block: { after: 2, within: '1m', for: '10m' },
      })
      await limiter.check({ user: 'a', org: 'acme' }, { cost: 2 })
      await limiter.check({ user: 'b', org: 'acme' })
      // The org refuses b twice: neither b nor the org is blocked.
      for (let i = 0; i < 2; i++) {
        expect(await limiter.check({ user: 'b', org: 'acme' })).toMatchObject({
          blocked: false,
          binding: 'org',
        })
      }
      await limiter.check({ user: 'a', org: 'other' })
      const blocked = await limiter.check({ user: 'a', org: 'other' })
      expect(blocked).toMatchObject({ blocked: true, binding: 'user', retryAfterMs: 600_000 })
      expect(blocked.levels.map((l) => [l.level, l.allowed, l.blocked === true])).toEqual([
        ['user', false, true],
        ['org', true, false],
      ])
      // The org bucket 'other' was never charged by a's refusals.
      expect((await limiter.check({ user: 'c', org: 'other' }, { cost: 0 })).levels[1]!.remaining).toBe(3)
      clock.advance(599_999)
      expect(await limiter.check({ user: 'a', org: 'other' })).toMatchObject({
        allowed: false,
        retryAfterMs: 1,
      })
      clock.advance(1)
      expect(await limiter.check({ user: 'a', org: 'other' })).toMatchObject({ allowed: true })
    })

    it('a refund never shortens a block', async () => {
      const { limiter } = await setup({ policy: perMinute(2), block: { after: 1, for: '5m' } })
      const admitted = await limiter.check('ip', { cost: 2 })
      expect(await limiter.check('ip')).toMatchObject({ blocked: true, retryAfterMs: 300_000 })
      await limiter.refund(admitted)
      expect(await limiter.check('ip', { cost: 0 })).toMatchObject({ blocked: true, retryAfterMs: 300_000 })
    })
  })
}
