import { describe, expect, it } from 'vitest'
import {
  ErrorCode,
  normalizePolicy,
  parseDuration,
  ratePerSecond,
  TollgateError,
  windowSeconds,
} from './internals.js'

function codeOf(fn: () => unknown): { code: string; field: string | undefined; message: string } {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    const e = error as TollgateError
    return { code: e.code, field: e.field, message: e.message }
  }
  throw new Error('nothing thrown')
}

describe('normalizePolicy', () => {
  it('keeps rates as exact reduced fractions of tokens per ms', () => {
    expect(normalizePolicy({ capacity: 10, refill: { tokens: 10, per: '1s' } })).toMatchObject({
      tokens: 1,
      per: 100,
    })
    expect(normalizePolicy({ capacity: 1, refill: 0.3 })).toMatchObject({ tokens: 3, per: 10_000 })
    expect(normalizePolicy({ capacity: 1, refill: 1 / 3 })).toMatchObject({ tokens: 1, per: 3000 })
    expect(normalizePolicy({ capacity: 1, refill: { tokens: 1, per: '1h' } })).toMatchObject({
      tokens: 1,
      per: 3_600_000,
    })
    expect(normalizePolicy({ capacity: 1, refill: { tokens: 1000, per: 1000 } })).toMatchObject({
      tokens: 1,
      per: 1,
    })
    expect(normalizePolicy({ capacity: 1, refill: { tokens: 7, per: '1.5m' } })).toMatchObject({
      tokens: 7,
      per: 90_000,
    })
    expect(normalizePolicy({ capacity: 3, refill: 0 })).toMatchObject({ tokens: 0, per: 1, id: 'tb:3:0:1' })
  })

  it('reports rate and window for headers', () => {
    const p = normalizePolicy({ capacity: 10, refill: 0.3 })
    expect(ratePerSecond(p)).toBeCloseTo(0.3, 12)
    expect(windowSeconds(p)).toBe(34)
    expect(windowSeconds(normalizePolicy({ capacity: 3, refill: 0 }))).toBeUndefined()
    expect(windowSeconds(normalizePolicy({ capacity: 0, refill: 5 }))).toBe(1)
  })

  it('defaults to a token bucket in reject mode and accepts a leaky bucket in delay mode', () => {
    expect(normalizePolicy({ capacity: 1, refill: 1 })).toMatchObject({
      algorithm: 'token-bucket',
      mode: 'reject',
    })
    expect(
      normalizePolicy({ algorithm: 'leaky-bucket', mode: 'delay', capacity: 1, refill: 1 }),
    ).toMatchObject({
      algorithm: 'leaky-bucket',
      mode: 'delay',
      id: 'lbd:1:1:1000',
    })
  })

  it.each([
    [{ capacity: -1, refill: 1 }, 'policy.capacity'],
    [{ capacity: 1.5, refill: 1 }, 'policy.capacity'],
    [{ capacity: Number.NaN, refill: 1 }, 'policy.capacity'],
    [{ capacity: '10', refill: 1 }, 'policy.capacity'],
    [{ capacity: 2e9, refill: 1 }, 'policy.capacity'],
    [{ capacity: 1, refill: -1 }, 'policy.refill'],
    [{ capacity: 1, refill: Number.POSITIVE_INFINITY }, 'policy.refill'],
    [{ capacity: 5, refill: 6.4e-323 }, 'policy.refill'],
    [{ capacity: 1, refill: { tokens: 'ten', per: '1s' } }, 'policy.refill.tokens'],
    [{ capacity: 1, refill: { tokens: 1, per: '1 fortnight' } }, 'policy.refill.per'],
    [{ capacity: 1, refill: { tokens: 1, per: 0 } }, 'policy.refill.per'],
    [{ capacity: 1, refill: { tokens: 1, per: -5 } }, 'policy.refill.per'],
    [{ capacity: 1 }, 'policy.refill'],
    [{ capacity: 1, refill: 1, algorithm: 'fixed-window' }, 'policy.algorithm'],
    [{ capacity: 1, refill: 1, mode: 'queue' }, 'policy.mode'],
    [{ capacity: 1, refill: 1, mode: 'delay' }, 'policy.mode'],
    [null, 'policy'],
    ['10/s', 'policy'],
  ])('rejects %j naming %s', (input, field) => {
    const error = codeOf(() => normalizePolicy(input))
    expect(error.code).toBe(ErrorCode.InvalidPolicy)
    expect(error.field).toBe(field)
    expect(error.message).toContain(field)
  })

  it('refuses a capacity × interval that would lose exactness', () => {
    const error = codeOf(() => normalizePolicy({ capacity: 1e9, refill: { tokens: 1, per: '365d' } }))
    expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'policy.capacity' })
  })
})

describe('parseDuration', () => {
  it('reads numbers and unit strings', () => {
    expect(parseDuration(250)).toBe(250)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1s')).toBe(1000)
    expect(parseDuration('1.5m')).toBe(90_000)
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('1d')).toBe(86_400_000)
  })
  it.each(['1', '1y', '', 's', '-1s', 'NaNs'])('rejects %j', (text) => {
    expect(codeOf(() => parseDuration(text)).code).toBe(ErrorCode.InvalidDuration)
  })
})
