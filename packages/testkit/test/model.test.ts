import { describe, expect, it } from 'vitest'
import { ModelBucket, manualClock, seeded } from '../src/index.js'

describe('the reference model', () => {
  it('refills by elapsed × rate, exactly, up to capacity', () => {
    const policy = { capacity: 10, tokens: 3, per: 10_000 } // 0.3/s
    const bucket = new ModelBucket(policy, 0)
    expect(bucket.wouldFit(policy, 0, 10)).toBe(true)
    expect(bucket.settle(10, true)).toEqual({
      allowed: true,
      remaining: 0,
      retryAfterMs: 0,
      resetAfterMs: 33_334,
    })
    expect(bucket.wouldFit(policy, 3333, 1)).toBe(false)
    expect(bucket.settle(1, false)).toMatchObject({ allowed: false, retryAfterMs: 1 })
    expect(bucket.wouldFit(policy, 3334, 1)).toBe(true)
    expect(bucket.wouldFit(policy, 10_000_000, 0)).toBe(true)
    expect(bucket.settle(0, false)).toMatchObject({ remaining: 10, resetAfterMs: 0 })
  })

  it('keeps tokens across a policy change, clamped, and a full bucket takes the new capacity', () => {
    const small = { capacity: 5, tokens: 1, per: 1000 }
    const big = { capacity: 50, tokens: 1, per: 100 }
    const used = new ModelBucket(small, 0)
    used.wouldFit(small, 0, 3)
    used.settle(3, true)
    expect(used.wouldFit(big, 0, 0)).toBe(true)
    expect(used.settle(0, false).remaining).toBe(2)
    const idle = new ModelBucket(small, 0)
    idle.wouldFit(big, 0, 0)
    expect(idle.settle(0, false).remaining).toBe(50)
  })

  it('never refills at rate 0 and says a cost above capacity never fits', () => {
    const fixed = { capacity: 2, tokens: 0, per: 1 }
    const bucket = new ModelBucket(fixed, 0)
    bucket.wouldFit(fixed, 0, 2)
    bucket.settle(2, true)
    bucket.wouldFit(fixed, 1e12, 1)
    expect(bucket.settle(1, false)).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY })
  })
})

describe('manualClock and seeded', () => {
  it('moves only when told, forward only', () => {
    const clock = manualClock(100)
    expect(clock.now()).toBe(100)
    expect(clock.advance(50)).toBe(150)
    expect(() => clock.advance(-1)).toThrow()
  })
  it('repeats the same sequence for the same seed', () => {
    const a = seeded(7)
    const b = seeded(7)
    const xs = Array.from({ length: 5 }, a)
    expect(xs).toEqual(Array.from({ length: 5 }, b))
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true)
  })
})
