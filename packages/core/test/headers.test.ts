import { describe, expect, it } from 'vitest'
import {
  createLimiter,
  type Decision,
  ErrorCode,
  headerFormats,
  normalizePolicy,
  problemJson,
  QUOTA_EXCEEDED_TYPE,
  REDUCED_CAPACITY_TYPE,
  rateLimitHeaders,
  refusalProblem,
  summarize,
  TollgateError,
} from './internals.js'

async function chainDecisions() {
  let now = 1_800_000_000_000
  const limiter = createLimiter({
    clock: () => now,
    levels: ['user', 'org'],
    policies: { user: { capacity: 10, refill: 10 }, org: { capacity: 50, refill: 50 } },
  })
  const decisions: Decision[] = []
  for (let i = 0; i < 11; i++) decisions.push(await limiter.check({ user: 'u', org: 'o' }))
  now += 0
  return decisions
}

describe('rateLimitHeaders', () => {
  it('writes draft-11 structured fields with one named policy per level', async () => {
    const decisions = await chainDecisions()
    expect(rateLimitHeaders(decisions[0]!)).toEqual([
      ['RateLimit-Policy', '"user";q=10;w=1, "org";q=50;w=1'],
      ['RateLimit', '"user";r=9;t=1, "org";r=49;t=1'],
    ])
    const refused = decisions[10]!
    expect(rateLimitHeaders(refused)).toEqual([
      ['RateLimit-Policy', '"user";q=10;w=1, "org";q=50;w=1'],
      ['RateLimit', '"user";r=0;t=1, "org";r=40;t=1'],
      ['Retry-After', '1'],
    ])
  })

  it('names each level when two levels share one policy object, as decisions from a Redis store do', async () => {
    // A Redis store reads policies back by id, one object per id: equal levels then share it.
    const policy = { capacity: 10, refill: 10 }
    const limiter = createLimiter({ levels: ['user', 'org'], policies: { user: policy, org: policy } })
    const decision = await limiter.check({ user: 'u', org: 'o' })
    const shared = decision.levels[0]!.policy
    const sharing = {
      ...decision,
      levels: decision.levels.map((l) => ({ ...l, policy: shared })),
    } as Decision
    const expected = [
      ['RateLimit-Policy', '"user";q=10;w=1, "org";q=10;w=1'],
      ['RateLimit', '"user";r=9;t=1, "org";r=9;t=1'],
    ]
    expect(rateLimitHeaders(sharing)).toEqual(expected)
    // Again, from the policy texts built the first time.
    expect(rateLimitHeaders(sharing)).toEqual(expected)
  })

  it("takes one format as a string ('ietf'), and false for Retry-After alone", async () => {
    const decisions = await chainDecisions()
    expect(rateLimitHeaders(decisions[0]!, 'ietf')).toEqual(rateLimitHeaders(decisions[0]!, ['ietf']))
    expect(rateLimitHeaders(decisions[0]!, 'legacy')[0]).toEqual(['X-RateLimit-Limit', '10'])
    expect(rateLimitHeaders(decisions[0]!, false)).toEqual([])
    expect(rateLimitHeaders(decisions[10]!, false)).toEqual([['Retry-After', '1']])
    expect(() => rateLimitHeaders(decisions[0]!, 'draft-5' as never)).toThrow(TollgateError)
  })

  it('writes the older forms from the binding level', async () => {
    const refused = (await chainDecisions())[10]!
    expect(rateLimitHeaders(refused, ['draft-7'])).toEqual([
      ['RateLimit-Policy', '10;w=1'],
      ['RateLimit', 'limit=10, remaining=0, reset=1'],
      ['Retry-After', '1'],
    ])
    const pairs = rateLimitHeaders(refused, ['draft-6', 'legacy'])
    expect(pairs).toEqual([
      ['RateLimit-Policy', '10;w=1'],
      ['RateLimit-Limit', '10'],
      ['RateLimit-Remaining', '0'],
      ['RateLimit-Reset', '1'],
      ['X-RateLimit-Limit', '10'],
      ['X-RateLimit-Remaining', '0'],
      ['X-RateLimit-Reset', String(Math.ceil((refused.now + 1000) / 1000))],
      ['Retry-After', '1'],
    ])
  })

  it('never writes Infinity, NaN, negatives or fractions, and no Retry-After for a cost that can never pass', async () => {
    const limiter = createLimiter({ policy: { capacity: 2, refill: 0 } })
    await limiter.check('t', { cost: 2 })
    const never = await limiter.check('t')
    const pairs = [
      ...rateLimitHeaders(never, ['ietf', 'legacy']),
      ...rateLimitHeaders(never, ['draft-7']),
      ...rateLimitHeaders(never, ['draft-6']),
    ]
    for (const [, value] of pairs) expect(value).not.toMatch(/Infinity|NaN|-\d|\d\.\d/)
    expect(pairs.find(([name]) => name === 'Retry-After')).toBeUndefined()
    expect(pairs).toContainEqual(['RateLimit-Policy', '"key";q=2'])
    expect(pairs).toContainEqual(['RateLimit', '"key";r=0'])
  })

  it('points Retry-After no earlier than an exhausted level’s t', async () => {
    let now = 0
    const limiter = createLimiter({
      clock: () => now,
      policy: { capacity: 3, refill: { tokens: 1, per: '7s' } },
    })
    await limiter.check('t', { cost: 3 })
    now = 2500
    const refused = await limiter.check('t', { cost: 2 })
    const pairs = Object.fromEntries(rateLimitHeaders(refused))
    expect(pairs.RateLimit).toBe('"key";r=0;t=12')
    expect(Number(pairs['Retry-After'])).toBeGreaterThanOrEqual(12)
  })

  it('escapes level names into valid structured-field strings', () => {
    const policy = normalizePolicy({ capacity: 1, refill: 1 })
    const decision = summarize(
      [
        {
          level: 'te"am\\ü',
          key: 'k',
          limit: 1,
          policy,
          allowed: true,
          remaining: 1,
          resetAfterMs: 0,
          retryAfterMs: 0,
          delayMs: 0,
        },
      ],
      true,
      0,
      undefined,
      0,
    )
    expect(rateLimitHeaders(decision)[0]).toEqual(['RateLimit-Policy', '"te\\"am\\\\?";q=1;w=1'])
  })

  it('validates the headers option', () => {
    expect(headerFormats(undefined)).toEqual(['ietf'])
    expect(headerFormats(false)).toEqual([])
    expect(headerFormats(['legacy', 'legacy'])).toEqual(['legacy'])
    expect(headerFormats(['ietf', 'draft-8', 'legacy'])).toEqual(['ietf', 'draft-8', 'legacy'])
    expect(() => headerFormats('draft-99')).toThrowError(TollgateError)
    // two forms that both write RateLimit-Policy cannot be sent together
    expect(() => headerFormats(['ietf', 'draft-7'])).toThrowError(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'headers' }),
    )
    expect(() => headerFormats(['draft-6', 'draft-7'])).toThrowError(TollgateError)
    try {
      headerFormats(['ietf', 'x'])
    } catch (error) {
      expect((error as TollgateError).code).toBe(ErrorCode.InvalidOption)
    }
  })
})

describe('refusalProblem', () => {
  it('builds an RFC 9457 quota-exceeded body naming the violated levels', async () => {
    const refused = (await chainDecisions())[10]!
    expect(refusalProblem(refused, '/api/x')).toEqual({
      type: QUOTA_EXCEEDED_TYPE,
      title: 'Quota exceeded',
      status: 429,
      detail: 'Too many requests at the user level; retry in 1 s.',
      instance: '/api/x',
      'violated-policies': ['user'],
      binding: 'user',
      retryAfter: 1,
    })
  })

  it('answers 503 reduced capacity when the store is down and the limiter fails closed', async () => {
    const limiter = createLimiter({
      onStoreError: 'closed',
      store: {
        name: 'down',
        decide: async () => {
          throw new Error('connection refused')
        },
        refund: async () => undefined,
        reset: async () => false,
        registry: {
          read: async () => undefined,
          write: async () => true,
          tiers: async () => [],
          writeTier: async () => undefined,
          subscribe: () => () => undefined,
        },
      },
    })
    const decision = await limiter.check('t')
    const body = refusalProblem(decision)
    expect(body).toMatchObject({ type: REDUCED_CAPACITY_TYPE, status: 503 })
    expect(JSON.stringify(body)).not.toContain('connection refused')
  })
})

describe('problemJson', () => {
  it('is JSON.stringify of the body, also for a body changed after it was sent once', async () => {
    const refused = (await chainDecisions())[10]!
    const body = refusalProblem(refused)
    expect(problemJson(body)).toBe(JSON.stringify(body))
    expect(problemJson(refusalProblem(refused))).toBe(JSON.stringify(body))
    body.detail = 'changed'
    ;(body['violated-policies'] as string[]).push('org')
    expect(problemJson(body)).toBe(JSON.stringify(body))
    const other = refusalProblem(refused, '/x')
    expect(problemJson(other)).toBe(JSON.stringify(other))
    const nested = { type: 'about:blank', title: 'Bad Request', status: 400, extra: { n: 1 } }
    expect(problemJson(nested)).toBe(JSON.stringify(nested))
    nested.extra.n = 2
    expect(problemJson(nested)).toBe(JSON.stringify(nested))
  })
})
