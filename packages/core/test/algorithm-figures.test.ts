import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ceilMulDiv } from '../src/algorithm.js'
import {
  assess,
  assessDebt,
  type BucketState,
  decide,
  evaluateChain,
  normalizePolicy,
  stateTtlMs,
} from './internals.js'

// Figures pinned exactly, each where a neighbouring formula (a rounding, an operator, a scale) would differ.
const tenPerSecond = normalizePolicy({ capacity: 10, refill: 10 }) // 1 token per 100 ms: k = 1, T = 100
const slow = normalizePolicy({ capacity: 1, refill: 0.3 }) // 3 tokens per 10 000 ms: k = 3, T = 10 000

describe('token bucket figures', () => {
  it('refuses a cost larger than what is left, and charges nothing for it', () => {
    const used = decide(undefined, tenPerSecond, 0, 8).state // 2 left
    const refused = decide(used, tenPerSecond, 0, 3)
    expect(refused.result).toEqual({
      allowed: false,
      remaining: 2,
      resetAfterMs: 800,
      retryAfterMs: 100,
      delayMs: 0,
    })
    expect(decide(used, tenPerSecond, 0, 2).result).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('rounds reset and retry up to whole ms where a token is a fraction of a ms away (0.3/s)', () => {
    const once = decide(undefined, slow, 0, 1)
    // 10 000 sub-units of debt at 3 per ms: ⌈3333.3⌉ ms until full.
    expect(once.result).toEqual({
      allowed: true,
      remaining: 0,
      resetAfterMs: 3334,
      retryAfterMs: 0,
      delayMs: 0,
    })
    expect(stateTtlMs(once.state!, 0)).toBe(3334)
    expect(stateTtlMs(once.state!, 3333)).toBe(1)
    expect(stateTtlMs(once.state!, 3334)).toBe(0)
    const refused = decide(once.state, slow, 1000, 1)
    expect(refused.result).toEqual({
      allowed: false,
      remaining: 0,
      resetAfterMs: 2334,
      retryAfterMs: 2334,
      delayMs: 0,
    })
  })

  it('never lets a cost above capacity pass, and says so with an infinite retry', () => {
    const result = decide(undefined, tenPerSecond, 0, 11).result
    expect(result).toEqual({
      allowed: false,
      remaining: 10,
      resetAfterMs: 0,
      retryAfterMs: Infinity,
      delayMs: 0,
    })
  })

  it('peeks with cost 0: asks for one token, writes nothing, and tells when one is back', () => {
    const empty = decide(undefined, tenPerSecond, 0, 10).state
    const peekEmpty = decide(empty, tenPerSecond, 30, 0)
    expect(peekEmpty.result).toEqual({
      allowed: false,
      remaining: 0,
      resetAfterMs: 970,
      retryAfterMs: 70,
      delayMs: 0,
    })
    expect(peekEmpty.state).toBeUndefined()
    const peekFull = decide(undefined, tenPerSecond, 0, 0)
    expect(peekFull.result).toEqual({
      allowed: true,
      remaining: 10,
      resetAfterMs: 0,
      retryAfterMs: 0,
      delayMs: 0,
    })
    expect(peekFull.state).toBeUndefined()
    // capacity 0 has no token to show even to a peek
    const closed = normalizePolicy({ capacity: 0, refill: 1 })
    expect(decide(undefined, closed, 0, 0).result).toMatchObject({ allowed: false, retryAfterMs: Infinity })
  })
})

describe('a fixed allowance (rate 0)', () => {
  const allowance = normalizePolicy({ capacity: 3, refill: 0 })

  it('counts tokens spent whatever the time, and never resets', () => {
    let state: BucketState | undefined
    const remaining: number[] = []
    for (const now of [1000, 2000, 3000]) {
      const step = decide(state, allowance, now, 1)
      expect(step.result.allowed).toBe(true)
      remaining.push(step.result.remaining)
      state = step.state
    }
    expect(remaining).toEqual([2, 1, 0])
    expect(state).toMatchObject({ tat: 3, frac: 0 })
    expect(decide(state, allowance, 4000, 1).result).toMatchObject({ allowed: false, retryAfterMs: Infinity })
  })

  it('is full, with nothing to wait for, before its first use', () => {
    expect(decide(undefined, allowance, 5, 0).result).toEqual({
      allowed: true,
      remaining: 3,
      resetAfterMs: 0,
      retryAfterMs: 0,
      delayMs: 0,
    })
  })

  it('keeps what was spent when the bucket moves to a refilling policy', () => {
    const spent = decide(undefined, allowance, 0, 2).state! // 1 left
    const refilling = normalizePolicy({ capacity: 10, refill: 10 })
    expect(decide(spent, refilling, 0, 0).result).toMatchObject({ remaining: 1, resetAfterMs: 900 })
  })
})

describe('conversion to another policy (no free refill, never a gift)', () => {
  // 6 of 10 used under 10/s (1 token per 100 ms): 4 left.
  const used = decide(undefined, tenPerSecond, 0, 6).state!

  it.each([
    ['a larger capacity', { capacity: 20, refill: 10 }], // same tokens and per
    ['a faster rate, same interval', { capacity: 10, refill: { tokens: 3, per: 100 } }], // tokens differ
    ['a slower rate', { capacity: 10, refill: 5 }], // per differs
  ])('keeps the 4 tokens left under %s', (_name, input) => {
    const policy = normalizePolicy(input)
    expect(decide(used, policy, 0, 0).result.remaining).toBe(4)
    expect(assess(used, policy, 0, 0).converted).toBe(true)
  })

  it('reads a state of the same policy as it is', () => {
    expect(assess(used, tenPerSecond, 0, 0)).toMatchObject({ converted: false, debt: 600, fits: true })
    expect(assess(undefined, tenPerSecond, 0, 0)).toMatchObject({ converted: false, debt: 0 })
    expect(assessDebt(tenPerSecond, 600, 0, 5)).toMatchObject({ converted: false, fits: false })
  })

  it('counts the sub-ms remainder of a state it converts (0.3/s into a larger 0.3/s bucket)', () => {
    const two = normalizePolicy({ capacity: 2, refill: 0.3 })
    const once = decide(undefined, two, 0, 1).state! // tat 3333, frac 1: one token owed
    expect(once).toMatchObject({ tat: 3333, frac: 1 })
    const three = normalizePolicy({ capacity: 3, refill: 0.3 })
    // 1 token held of 2, so 2 owed of 3: 20 000 sub-units at 3 per ms.
    expect(decide(once, three, 0, 0).result).toMatchObject({ remaining: 1, resetAfterMs: 6667 })
  })

  it('rounds a·b/c up exactly, as integers do, wherever a and b·c are below 2^53', () => {
    const exact = (a: number, b: number, c: number) =>
      Number((BigInt(a) * BigInt(b) + BigInt(c) - 1n) / BigInt(c))
    expect(ceilMulDiv(169_919, 3_600_000, 10_000)).toBe(61_170_840)
    expect([ceilMulDiv(0, 5, 3), ceilMulDiv(6, 3, 2), ceilMulDiv(7, 3, 2), ceilMulDiv(1, 1, 1)]).toEqual([
      0, 9, 11, 1,
    ])
    const safe = Number.MAX_SAFE_INTEGER
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 26 }),
        fc.integer({ min: 1, max: 2 ** 26 }),
        fc.integer({ min: 0, max: safe }),
        (b, c, a) => {
          fc.pre(exact(a, b, c) <= safe)
          expect(ceilMulDiv(a, b, c)).toBe(exact(a, b, c))
        },
      ),
      { numRuns: 2000 },
    )
    // Beyond b·c < 2^53 it is the floating-point value, rounded up: still never below the exact one here.
    expect(ceilMulDiv(10, 2 ** 40, 2 ** 20)).toBe(10 * 2 ** 20)
  })

  it('converts in integers: 16.9919 tokens missing of an hourly bucket take 61,170,840 ms, not a ms more', () => {
    // 1 of 1 spent at 0.3/s (3 tokens per 10 s); 27 ms later 0.0081 of a token is back. Under 17 per hour,
    // 16.9919 tokens are missing: exactly 61,170,840 ms. Floating point made it 61,170,840.000000007 (one ms long).
    const oneAt03 = normalizePolicy({ capacity: 1, refill: 0.3 })
    const spent = decide(undefined, oneAt03, 0, 1).state!
    const hourly = normalizePolicy({ capacity: 17, refill: { tokens: 1, per: '1h' } })
    expect(decide(spent, hourly, 27, 0).result).toMatchObject({ remaining: 0, resetAfterMs: 61_170_840 })
  })
})

describe('leaky bucket in delay mode', () => {
  it('holds each request for the backlog ahead of it, rounded up to whole ms (0.3/s)', () => {
    const shaper = normalizePolicy({ algorithm: 'leaky-bucket', mode: 'delay', capacity: 3, refill: 0.3 })
    let state: BucketState | undefined
    const delays: number[] = []
    for (let i = 0; i < 3; i++) {
      const step = decide(state, shaper, 0, 1)
      delays.push(step.result.delayMs)
      state = step.state
    }
    expect(delays).toEqual([0, 3334, 6667])
  })

  it('does not hold a peek', () => {
    const shaper = normalizePolicy({ algorithm: 'leaky-bucket', mode: 'delay', capacity: 5, refill: 4 })
    const queued = decide(undefined, shaper, 0, 2).state
    const peek = decide(queued, shaper, 0, 0)
    expect(peek.result).toMatchObject({ allowed: true, delayMs: 0, remaining: 3 })
    expect(peek.state).toBeUndefined()
  })
})

describe('evaluateChain figures', () => {
  it('writes nothing for a chain of peeks, and reports every level', () => {
    const used = decide(undefined, tenPerSecond, 0, 3).state
    const outcome = evaluateChain(
      [
        { state: used, policy: tenPerSecond, cost: 0 },
        { state: undefined, policy: slow, cost: 0 },
      ],
      0,
    )
    expect(outcome.allowed).toBe(true)
    expect(outcome.states).toEqual([undefined, undefined])
    expect(outcome.results.map((r) => r.remaining)).toEqual([7, 1])
  })

  it('charges every level of an admitted chain with its own cost', () => {
    const outcome = evaluateChain(
      [
        { state: undefined, policy: tenPerSecond, cost: 2 },
        { state: undefined, policy: tenPerSecond, cost: 5 },
      ],
      0,
    )
    expect(outcome.results.map((r) => r.remaining)).toEqual([8, 5])
    expect(outcome.states.map((s) => s?.tat)).toEqual([200, 500])
  })
})
