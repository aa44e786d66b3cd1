import { describe, expect, it } from 'vitest'
import {
  decide,
  ErrorCode,
  headerFormats,
  type LevelDecision,
  normalizePolicy,
  type Policy,
  rateLimitHeaders,
  summarize,
} from './internals.js'
import { failure } from './thrown.js'

/** A level as a store reports it, from the algorithm's own figures. */
function level(name: string, policy: Policy, result: ReturnType<typeof decide>['result']): LevelDecision {
  return { level: name, key: 'k', limit: policy.capacity, policy, ...result }
}

const tenPerSecond = normalizePolicy({ capacity: 10, refill: 10 })
const allowance = normalizePolicy({ capacity: 2, refill: 0 })

describe('headers from the binding level', () => {
  it('writes the older forms from the level that bound, not the first one', () => {
    const roomy = level('user', tenPerSecond, decide(undefined, tenPerSecond, 0, 1).result)
    const org = normalizePolicy({ capacity: 4, refill: { tokens: 1, per: '1s' } })
    const tight = level('org', org, decide(undefined, org, 0, 3).result)
    const decision = summarize([roomy, tight], true, 1, undefined, 0)
    expect(decision.binding).toBe('org')
    expect(rateLimitHeaders(decision, ['draft-7'])).toEqual([
      ['RateLimit-Policy', '4;w=4'],
      ['RateLimit', 'limit=4, remaining=1, reset=3'],
    ])
  })

  it('falls back to the first level when no level is named binding', () => {
    const only = level('user', tenPerSecond, decide(undefined, tenPerSecond, 0, 1).result)
    const decision = { ...summarize([only], true, 1, undefined, 0), binding: undefined }
    expect(rateLimitHeaders(decision, ['draft-6'])).toContainEqual(['RateLimit-Remaining', '9'])
  })

  it('sends only Retry-After for a decision with no level in force', () => {
    const none = summarize([], true, 1, undefined, 0)
    expect(rateLimitHeaders(none, ['ietf', 'legacy'])).toEqual([])
    const refused = { ...summarize([], false, 1, undefined, 0), retryAfterMs: 1500 }
    expect(rateLimitHeaders(refused, ['draft-7'])).toEqual([['Retry-After', '2']])
  })
})

describe('header figures', () => {
  it("gives an exhausted level's t as the time until one token is back", () => {
    // 0.3/s, capacity 4, all taken at once: full again in 13 334 ms, one token back in 3334 ms.
    const slow = normalizePolicy({ capacity: 4, refill: 0.3 })
    const drained = level('key', slow, decide(undefined, slow, 0, 4).result)
    expect(drained).toMatchObject({ remaining: 0, resetAfterMs: 13_334, retryAfterMs: 0 })
    const decision = summarize([drained], true, 4, undefined, 0)
    expect(rateLimitHeaders(decision)).toEqual([
      ['RateLimit-Policy', '"key";q=4;w=14'],
      ['RateLimit', '"key";r=0;t=4'],
    ])
    // 10/s, capacity 10, all taken: one token back in 100 ms, so t = 1 (not 0).
    const ten = level('key', tenPerSecond, decide(undefined, tenPerSecond, 0, 10).result)
    expect(rateLimitHeaders(summarize([ten], true, 10, undefined, 0))[1]).toEqual([
      'RateLimit',
      '"key";r=0;t=1',
    ])
  })

  it('never writes a negative time, even from figures a store got wrong', () => {
    const base = level('key', tenPerSecond, decide(undefined, tenPerSecond, 0, 1).result)
    const decision = summarize([{ ...base, resetAfterMs: -1500 }], true, 1, undefined, 0)
    expect(rateLimitHeaders(decision)[1]).toEqual(['RateLimit', '"key";r=9;t=0'])
  })

  it('leaves out w, t and reset where a fixed allowance never refills', () => {
    const spent = level('key', allowance, decide(undefined, allowance, 0, 2).result)
    const refused = level(
      'key',
      allowance,
      decide(decide(undefined, allowance, 0, 2).state, allowance, 0, 1).result,
    )
    expect(rateLimitHeaders(summarize([spent], true, 2, undefined, 0), ['draft-7'])).toEqual([
      ['RateLimit-Policy', '2'],
      ['RateLimit', 'limit=2, remaining=0'],
    ])
    expect(rateLimitHeaders(summarize([refused], false, 1, undefined, 0), ['draft-6'])).toEqual([
      ['RateLimit-Policy', '2'],
      ['RateLimit-Limit', '2'],
      ['RateLimit-Remaining', '0'],
    ])
  })

  it('writes the named fields once for ietf and draft-8 together, and draft-8 alone like ietf', () => {
    const one = summarize(
      [level('user', tenPerSecond, decide(undefined, tenPerSecond, 0, 1).result)],
      true,
      1,
      undefined,
      0,
    )
    const ietf = rateLimitHeaders(one, ['ietf'])
    expect(ietf).toHaveLength(2)
    expect(rateLimitHeaders(one, ['draft-8'])).toEqual(ietf)
    expect(rateLimitHeaders(one, ['ietf', 'draft-8'])).toEqual(ietf)
  })
})

describe('headerFormats', () => {
  it('accepts each format alone, and true for the default', () => {
    expect(headerFormats(true)).toEqual(['ietf'])
    for (const format of ['ietf', 'draft-8', 'draft-7', 'draft-6', 'legacy']) {
      expect(headerFormats(format)).toEqual([format])
    }
    expect(headerFormats(['draft-6', 'legacy'])).toEqual(['draft-6', 'legacy'])
  })

  it('names the formats it knows when given another', () => {
    const error = failure(() => headerFormats('draft-5', 'limits.headers'))
    expect(error).toMatchObject({ code: ErrorCode.InvalidOption, field: 'limits.headers' })
    expect(error.message).toContain("one of 'ietf', 'draft-8', 'draft-7', 'draft-6', 'legacy' or false")
    const clash = failure(() => headerFormats(['draft-7', 'draft-6']))
    expect(clash.message).toContain(
      "at most one of 'ietf' (or 'draft-8'), 'draft-7', 'draft-6', plus 'legacy'",
    )
  })
})
