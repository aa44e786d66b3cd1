import { describe, expect, it } from 'vitest'
import { type BucketState, decide, evaluateChain, normalizePolicy, stateTtlMs } from './internals.js'

const tenPerSecond = normalizePolicy({ capacity: 10, refill: { tokens: 10, per: '1s' } })

describe('decide (GCRA over integer time)', () => {
  it('charges a fitting cost and reports exact figures', () => {
    const { result, state } = decide(undefined, tenPerSecond, 1000, 4)
    expect(result).toEqual({ allowed: true, remaining: 6, resetAfterMs: 400, retryAfterMs: 0, delayMs: 0 })
    expect(state).toEqual({ epoch: 0, tat: 1400, frac: 0, capacity: 10, tokens: 1, per: 100 })
    expect(stateTtlMs(state!, 1000)).toBe(400)
  })

  it('refuses what does not fit, charging nothing and telling when it will', () => {
    const full = decide(undefined, tenPerSecond, 0, 10).state
    const refused = decide(full, tenPerSecond, 50, 3)
    expect(refused.result).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 250 })
    expect(refused.state).toBeUndefined()
  })

  it('keeps fractions of a millisecond exactly (0.3/s)', () => {
    const policy = normalizePolicy({ capacity: 1, refill: 0.3 })
    let state: BucketState | undefined = decide(undefined, policy, 0, 1).state
    expect(state).toMatchObject({ tat: 3333, frac: 1 })
    // each admission moves the theoretical arrival time by exactly 3333⅓ ms from the later of it and now
    for (const now of [3334, 6668, 10_002]) {
      const step = decide(state, policy, now, 1)
      expect(step.result.allowed).toBe(true)
      state = step.state
    }
    expect(state).toMatchObject({ tat: 13_335, frac: 1 })
    expect(decide(state, policy, 13_335, 1).result.allowed).toBe(false)
    expect(decide(state, policy, 13_336, 1).result.allowed).toBe(true)
  })

  it('converts a state to a new policy: tokens kept and clamped, a full bucket full again', () => {
    const used = decide(undefined, tenPerSecond, 0, 6).state! // 4 left
    const bigger = normalizePolicy({ capacity: 100, refill: 100 })
    expect(decide(used, bigger, 0, 0).result.remaining).toBe(4)
    const smaller = normalizePolicy({ capacity: 2, refill: 2 })
    expect(decide(used, smaller, 0, 0).result.remaining).toBe(2)
    // once refilled under its own rate, it is full, and a full bucket takes the new capacity whole
    expect(decide(used, bigger, 600, 0).result.remaining).toBe(100)
  })

  it('marks a rate-0 bucket as never resetting and never retryable', () => {
    const fixed = normalizePolicy({ capacity: 2, refill: 0 })
    const once = decide(undefined, fixed, 5, 2)
    expect(once.result).toMatchObject({ allowed: true, remaining: 0, resetAfterMs: Number.POSITIVE_INFINITY })
    expect(stateTtlMs(once.state!, 5)).toBe(Number.POSITIVE_INFINITY)
    expect(decide(once.state, fixed, 1e12, 1).result.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
  })

  it('delays in leaky delay mode by the backlog ahead of the request', () => {
    const shaper = normalizePolicy({ algorithm: 'leaky-bucket', mode: 'delay', capacity: 5, refill: 4 })
    let state: BucketState | undefined
    const delays = []
    for (let i = 0; i < 5; i++) {
      const step = decide(state, shaper, 0, 1)
      delays.push(step.result.delayMs)
      state = step.state
    }
    expect(delays).toEqual([0, 250, 500, 750, 1000])
    expect(decide(state, shaper, 0, 1).result.allowed).toBe(false)
  })
})

describe('evaluateChain', () => {
  it('charges every level or none', () => {
    const small = normalizePolicy({ capacity: 1, refill: 1 })
    const first = evaluateChain(
      [
        { state: undefined, policy: tenPerSecond, cost: 1 },
        { state: undefined, policy: small, cost: 1 },
      ],
      0,
    )
    expect(first.allowed).toBe(true)
    const second = evaluateChain(
      [
        { state: first.states[0], policy: tenPerSecond, cost: 1 },
        { state: first.states[1], policy: small, cost: 1 },
      ],
      0,
    )
    expect(second.allowed).toBe(false)
    expect(second.results.map((r) => r.allowed)).toEqual([true, false])
    expect(second.states).toEqual([undefined, undefined])
  })
})
