import { describe, expect, it } from 'vitest'
import {
  ErrorCode,
  isPolicy,
  MAX_CAPACITY,
  normalizePolicy,
  policyFromId,
  policyToInput,
  ratePerSecond,
} from './internals.js'
import { failure } from './thrown.js'

describe('normalizePolicy: rates as fractions', () => {
  it('keeps an integer rate exact rather than the nearest simple fraction', () => {
    // 3 per 2 000 000 000 003 ms lies within 1e-12 of 1 per 666 666 666 668 ms; it is kept as given.
    expect(normalizePolicy({ capacity: 1, refill: { tokens: 3, per: 2_000_000_000_003 } })).toMatchObject({
      tokens: 3,
      per: 2_000_000_000_003,
    })
    // 0 tokens over a fractional interval is still "never refills".
    expect(normalizePolicy({ capacity: 2, refill: { tokens: 0, per: 1.5 } })).toMatchObject({
      tokens: 0,
      per: 1,
      id: 'tb:2:0:1',
    })
  })

  it('takes the simplest fraction within 1e-12 of a fractional rate', () => {
    expect(normalizePolicy({ capacity: 1, refill: Math.PI })).toMatchObject({
      tokens: 97_965,
      per: 31_183_228,
    })
    expect(normalizePolicy({ capacity: 1, refill: 2.5 })).toMatchObject({ tokens: 1, per: 400 })
    expect(normalizePolicy({ capacity: 1, refill: 1 / 7 })).toMatchObject({ tokens: 1, per: 7000 })
  })

  it('goes down to one token per 1e12 ms, and no further', () => {
    expect(normalizePolicy({ capacity: 1, refill: 1e-9 })).toMatchObject({ tokens: 1, per: 1e12 })
    for (const rate of [1e-10, 2.3e-10]) {
      const error = failure(() => normalizePolicy({ capacity: 1, refill: rate }))
      expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'policy.refill' })
      expect(error.message).toContain('a rate expressible as a fraction')
    }
  })

  it('refuses a rate whose fraction would not be exact, or above 1e9 tokens per ms', () => {
    const huge = failure(() => normalizePolicy({ capacity: 1, refill: { tokens: 1e17, per: 0.5 } }))
    expect(huge).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'policy.refill.tokens' })
    expect(huge.message).toContain('a rate expressible as a fraction')
    // 2^53 − 1 tokens per ms, from a fractional input: an exact fraction, refused for its size alone.
    const edge = failure(() =>
      normalizePolicy({ capacity: 1, refill: { tokens: 4503599627370495.5, per: 0.5 } }),
    )
    expect(edge.message).toContain('at most 1e9 tokens per millisecond')
    expect(normalizePolicy({ capacity: 1, refill: { tokens: 1e9, per: 1 } })).toMatchObject({
      tokens: 1e9,
      per: 1,
    })
    const tooFast = failure(() => normalizePolicy({ capacity: 1, refill: { tokens: 2e9, per: 1 } }))
    expect(tooFast).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'policy.refill.tokens' })
    expect(tooFast.message).toContain('at most 1e9 tokens per millisecond')
  })
})

describe('normalizePolicy: bounds', () => {
  it('accepts a capacity of exactly MAX_CAPACITY', () => {
    expect(normalizePolicy({ capacity: MAX_CAPACITY, refill: 1000 }).capacity).toBe(MAX_CAPACITY)
  })

  it('keeps (capacity + 1) × interval within 2^53', () => {
    // 1 token per 1e12 ms: 9006 fits ((9006 + 1) × 1e12 ≤ 2^53 − 1), 9007 does not.
    expect(normalizePolicy({ capacity: 9006, refill: 1e-9 }).capacity).toBe(9006)
    const error = failure(() => normalizePolicy({ capacity: 9007, refill: 1e-9 }))
    expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'policy.capacity' })
    expect(error.message).toContain('capacity × interval stays exact')
    // 6361 × 1 416 003 655 831 is exactly 2^53 − 1: still exact, so capacity 6360 is allowed.
    const edge = normalizePolicy({ capacity: 6360, refill: { tokens: 1, per: 1_416_003_655_831 } })
    expect(edge).toMatchObject({ capacity: 6360, per: 1_416_003_655_831 })
  })

  it.each([
    [null, 'policy', 'an object like'],
    [{ capacity: 1, refill: 1, algorithm: 'gcra' }, 'policy.algorithm', "'token-bucket' or 'leaky-bucket'"],
    [{ capacity: 1, refill: 1, mode: 'queue' }, 'policy.mode', "'reject' or 'delay'"],
    [{ capacity: 1, refill: 1, mode: 'delay' }, 'policy.mode', "'reject' unless algorithm is 'leaky-bucket'"],
    [{ capacity: -1, refill: 1 }, 'policy.capacity', `a whole number from 0 to ${MAX_CAPACITY}`],
    [{ capacity: 1, refill: null }, 'policy.refill', 'a number per second or { tokens, per }'],
    [
      { capacity: 1, refill: Number.POSITIVE_INFINITY },
      'policy.refill',
      'a finite number of tokens, 0 or more',
    ],
    [{ capacity: 1, refill: { tokens: -2, per: '1s' } }, 'policy.refill.tokens', 'a finite number of tokens'],
  ])('rejects %j naming %s and saying %s', (input, field, expectation) => {
    const error = failure(() => normalizePolicy(input))
    expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field })
    expect(error.message).toContain(expectation)
  })
})

describe('policy identity and round trips', () => {
  it('returns an already validated policy as it is', () => {
    const policy = normalizePolicy({ capacity: 4, refill: 2 })
    expect(isPolicy(policy)).toBe(true)
    expect(normalizePolicy(policy)).toBe(policy)
    expect(isPolicy({ ...policy })).toBe(false)
    expect(isPolicy(null)).toBe(false)
    expect(isPolicy(policy.id)).toBe(false)
  })

  it('writes an id per algorithm and mode', () => {
    const leaky = { algorithm: 'leaky-bucket', capacity: 5, refill: 1 } as const
    expect(normalizePolicy(leaky).id).toBe('lb:5:1:1000')
    expect(normalizePolicy({ ...leaky, mode: 'delay' }).id).toBe('lbd:5:1:1000')
    expect(normalizePolicy({ capacity: 5, refill: 1 }).id).toBe('tb:5:1:1000')
  })

  it('reports a rate per second, 0 for a bucket that never refills', () => {
    expect(ratePerSecond(normalizePolicy({ capacity: 1, refill: { tokens: 3, per: '1m' } }))).toBeCloseTo(
      0.05,
      12,
    )
    expect(ratePerSecond(normalizePolicy({ capacity: 1, refill: 0 }))).toBe(0)
  })

  it('turns a policy back into an input that normalizes to the same policy', () => {
    const token = normalizePolicy({ capacity: 7, refill: { tokens: 3, per: '2s' } })
    expect(policyToInput(token)).toEqual({ capacity: 7, refill: { tokens: 3, per: 2000 } })
    const shaper = normalizePolicy({ algorithm: 'leaky-bucket', mode: 'delay', capacity: 2, refill: 0.5 })
    expect(policyToInput(shaper)).toEqual({
      algorithm: 'leaky-bucket',
      mode: 'delay',
      capacity: 2,
      refill: { tokens: 1, per: 2000 },
    })
    expect(normalizePolicy(policyToInput(shaper)).id).toBe(shaper.id)
  })

  it('reads a policy back from its id, once per id', () => {
    for (const input of [
      { capacity: 10, refill: 10 },
      { capacity: 100, refill: { tokens: 13, per: '1s' } },
      { capacity: 3, refill: 0 },
      { algorithm: 'leaky-bucket', capacity: 25, refill: { tokens: 7, per: '90s' } },
      { algorithm: 'leaky-bucket', mode: 'delay', capacity: 12, refill: 0.3 },
    ] as const) {
      const policy = normalizePolicy(input)
      const read = policyFromId(policy.id)
      expect(read).toMatchObject({ ...policy })
      expect(policyFromId(policy.id)).toBe(read)
    }
  })

  it.each([
    'tb:10:10:1000', // not reduced: no policy has this id
    'tb:3:0:7', // a rate-0 policy's interval is 1
    'lb:1:1:1000x',
    'xlb:1:1:1000',
    'tb:1:1',
    'tb:2000000000:1:1', // capacity above the maximum
    'tb:a:1:1',
    '',
  ])('reads no policy from %j', (id) => {
    expect(policyFromId(id)).toBeUndefined()
  })
})
