import { describe, expect, it } from 'vitest'
import { refusalProblem } from '../src/problem.js'
import {
  createLimiter,
  ErrorCode,
  InProcessStore,
  type LimiterOptions,
  rateLimitHeaders,
  TollgateError,
} from './internals.js'

function manual(start = 1_800_000_000_000) {
  let now = start
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

function setup(options: Omit<LimiterOptions, 'clock' | 'store'>) {
  const clock = manual()
  const store = new InProcessStore({ maxKeys: 1000, clock: clock.now })
  return { clock, store, limiter: createLimiter({ ...options, clock: clock.now, store }) }
}

// A token a minute: a block must outlast the wait the bucket already has to show.
const slow = { capacity: 2, refill: { tokens: 1, per: '1m' } } as const

describe('block option', () => {
  it.each([
    [{ after: 0, within: '1m', for: '1m' }, 'block.after', ErrorCode.InvalidOption],
    [{ after: 2.5, within: '1m', for: '1m' }, 'block.after', ErrorCode.InvalidOption],
    [{ after: 1001, within: '1m', for: '1m' }, 'block.after', ErrorCode.InvalidOption],
    [{ after: 2, for: '1m' }, 'block.within', ErrorCode.InvalidDuration],
    [{ after: 2, within: 'soon', for: '1m' }, 'block.within', ErrorCode.InvalidDuration],
    [{ after: 2, within: 0.5, for: '1m' }, 'block.within', ErrorCode.InvalidDuration],
    [{ after: 2, within: '1m' }, 'block.for', ErrorCode.InvalidDuration],
    [{ after: 2, within: '1m', for: '400d' }, 'block.for', ErrorCode.InvalidDuration],
    [{ after: 2, within: '1m', for: -5 }, 'block.for', ErrorCode.InvalidDuration],
    [{ after: 2, within: '1m', for: '1m', levels: [] }, 'block.levels', ErrorCode.InvalidOption],
    [{ after: 2, within: '1m', for: '1m', levels: ['org'] }, 'block.levels', ErrorCode.UnknownLevel],
    [{ after: 2, within: '1m', for: '1m', duration: 5 }, 'block.duration', ErrorCode.InvalidOption],
    ['5m', 'block', ErrorCode.InvalidOption],
  ])('refuses %j naming %s', (block, field, code) => {
    try {
      createLimiter({ block: block as never })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(TollgateError)
      expect((error as TollgateError).code).toBe(code)
      expect((error as TollgateError).field).toBe(field)
    }
  })
})

describe('blocking repeat offenders (in-process store, manual clock)', () => {
  it('blocks the bucket at the after-th refusal within the span, for exactly the duration', async () => {
    const { clock, limiter } = setup({
      policy: { capacity: 2, refill: { tokens: 1, per: '1s' } },
      block: { after: 3, within: '10s', for: '1m' },
    })
    await limiter.check('ip')
    await limiter.check('ip')
    const first = await limiter.check('ip')
    expect(first).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 1000 })
    clock.advance(100)
    expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 900 })
    clock.advance(100)
    const blocked = await limiter.check('ip')
    expect(blocked).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 60_000, remaining: 0 })
    expect(blocked.levels[0]).toMatchObject({ blocked: true, retryAfterMs: 60_000 })
    const headers = Object.fromEntries(rateLimitHeaders(blocked))
    expect(headers['Retry-After']).toBe('60')
    expect(headers.RateLimit).toBe('"key";r=0;t=60')
    expect(refusalProblem(blocked)).toMatchObject({
      status: 429,
      type: 'https://iana.org/assignments/http-problem-types#abnormal-usage-detected',
      blocked: true,
      retryAfter: 60,
    })
    // Refusals during the block do not count: hammering neither extends nor renews it.
    for (let i = 0; i < 10; i++) {
      clock.advance(5_000)
      expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: true })
    }
    expect((await limiter.check('ip')).retryAfterMs).toBe(10_000)
    clock.advance(9_999)
    expect(await limiter.check('ip')).toMatchObject({ allowed: false, retryAfterMs: 1 })
    clock.advance(1)
    // It lifts exactly at the end, with one token there; then the bucket refills as before.
    expect(await limiter.check('ip')).toMatchObject({ allowed: true, remaining: 0, blocked: false })
    expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 1000 })
    // Other subjects were never affected.
    expect((await limiter.check('other')).allowed).toBe(true)
  })

  it('counts only refusals inside the span: one exactly `within` old has left it', async () => {
    const { clock, limiter } = setup({ policy: slow, block: { after: 3, within: '10s', for: '10m' } })
    await limiter.check('ip', { cost: 2 })
    for (const wait of [0, 5_000, 5_000]) {
      clock.advance(wait)
      expect((await limiter.check('ip')).blocked).toBe(false)
    }
    clock.advance(1)
    expect((await limiter.check('ip')).blocked).toBe(true)
  })

  it('after: 1 blocks at the first refusal; peeks and impossible costs never count', async () => {
    const { limiter } = setup({ policy: slow, block: { after: 1, for: '5m' } })
    await limiter.check('ip', { cost: 2 })
    expect(await limiter.check('ip', { cost: 0 })).toMatchObject({ allowed: false, blocked: false })
    expect(await limiter.check('ip', { cost: 3 })).toMatchObject({ allowed: false, blocked: false })
    expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 300_000 })
    // Seen through a peek and getBucket while it lasts.
    expect(await limiter.check('ip', { cost: 0 })).toMatchObject({ allowed: false, blocked: true })
    expect(await limiter.getBucket({ level: 'key', key: 'ip' })).toMatchObject({ remaining: 0 })
  })

  it('a block shorter than a token keeps the wait the bucket already had', async () => {
    const { limiter } = setup({ policy: slow, block: { after: 1, for: '1s' } })
    await limiter.check('ip', { cost: 2 })
    expect(await limiter.check('ip')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 60_000 })
  })

  it('blocks only the levels named (default: the first), so a shared org or global level never blocks', async () => {
    const { clock, limiter } = setup({
      levels: ['user', 'org'],
      policies: { user: slow, org: { capacity: 3, refill: { tokens: 1, per: '1m' } } },
      block: { after: 2, within: '1m', for: '10m' },
    })
    await limiter.check({ user: 'a', org: 'acme' }, { cost: 2 })
    await limiter.check({ user: 'b', org: 'acme' })
    // The org refuses b twice: b is not the offender, nor is the org blocked.
    expect((await limiter.check({ user: 'b', org: 'acme' })).binding).toBe('org')
    const again = await limiter.check({ user: 'b', org: 'acme' })
    expect(again).toMatchObject({ blocked: false, binding: 'org' })
    // a's own bucket refuses twice: a is blocked.
    await limiter.check({ user: 'a', org: 'other' })
    const blocked = await limiter.check({ user: 'a', org: 'other' })
    expect(blocked).toMatchObject({ blocked: true, binding: 'user', retryAfterMs: 600_000 })
    expect(blocked.levels.map((l) => [l.level, l.allowed, l.blocked ?? false])).toEqual([
      ['user', false, true],
      ['org', true, false],
    ])
    clock.advance(600_000)
    expect(await limiter.check({ user: 'a', org: 'other' })).toMatchObject({ allowed: true })
  })

  it('a refund never shortens a block; a policy change ends it; reset forgets it', async () => {
    const { limiter } = setup({ policy: slow, block: { after: 1, for: '5m' } })
    const admitted = await limiter.check('ip', { cost: 2 })
    expect((await limiter.check('ip')).blocked).toBe(true)
    await limiter.refund(admitted)
    expect(await limiter.check('ip', { cost: 0 })).toMatchObject({ blocked: true, retryAfterMs: 300_000 })
    await limiter.createBucket({ level: 'key', key: 'ip' }, { capacity: 3, refill: { tokens: 1, per: '1m' } })
    // Converted to the new policy: the tokens it had (none) stay, so it is empty, and no longer blocked.
    expect(await limiter.check('ip', { cost: 0 })).toMatchObject({ blocked: false, retryAfterMs: 60_000 })

    const other = setup({ policy: slow, block: { after: 2, within: '1m', for: '5m' } })
    await other.limiter.check('ip', { cost: 2 })
    await other.limiter.check('ip')
    await other.store.reset('default', 'key', 'ip')
    await other.limiter.check('ip', { cost: 2 })
    // The refusal before the reset was forgotten with the bucket.
    expect((await other.limiter.check('ip')).blocked).toBe(false)
  })
})
