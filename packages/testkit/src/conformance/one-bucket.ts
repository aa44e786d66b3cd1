import { ErrorCode } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { expectCode, perSecond, type SuiteContext } from './context.js'

export function describeOneBucket(ctx: SuiteContext): void {
  const { setup, admitted } = ctx
  describe('one bucket', () => {
    it('admits a burst of capacity, then refuses with exact figures, then refills continuously', async () => {
      const { clock, limiter } = await setup({ policy: perSecond(10, 10) })
      const first = await limiter.check('tenant')
      const figures = { remaining: 9, limit: 10, resetAfterMs: 100, retryAfterMs: 0 }
      expect(first).toMatchObject({ allowed: true, ...figures })
      expect(await admitted(limiter, 'tenant', 20)).toBe(9)
      const refused = await limiter.check('tenant')
      const whenEmpty = { remaining: 0, retryAfterMs: 100, resetAfterMs: 1000, binding: 'key' }
      expect(refused).toMatchObject({ allowed: false, ...whenEmpty })
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
}
