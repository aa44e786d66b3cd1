import { describe, expect, it } from 'vitest'
import { createLimiter, ErrorCode, InProcessStore, type LimiterOptions } from './internals.js'
import { failure as thrown } from './thrown.js'

const perIp = { capacity: 3, refill: { tokens: 3, per: '1m' } } as const
const exportPolicy = { capacity: 1, refill: { tokens: 1, per: '1m' } } as const

describe('limiter names on a shared in-process store', () => {
  it('keeps a per-IP limiter and an /export one apart on the default level key (the issue 14 case)', async () => {
    const now = 0
    const store = new InProcessStore({ maxKeys: 1000, clock: () => now })
    const all = createLimiter({ store, clock: () => now, policy: perIp })
    const exporter = createLimiter({ store, clock: () => now, name: 'export', policy: exportPolicy })
    const allowed = async (limiter: typeof all, n: number) => {
      let count = 0
      for (let i = 0; i < n; i++) if ((await limiter.check('127.0.0.1')).allowed) count++
      return count
    }
    expect(await allowed(exporter, 3)).toBe(1)
    // Before names both wrote bucket key:127.0.0.1, so the export route's charge drained this one.
    expect(await allowed(all, 5)).toBe(3)
    expect(await exporter.check('127.0.0.1', { cost: 0 })).toMatchObject({ remaining: 0, limit: 1 })
  })

  it('keeps two limiters with equal policies on one store and level apart', async () => {
    const store = new InProcessStore({ maxKeys: 1000, clock: () => 0 })
    const all = createLimiter({ store, clock: () => 0, policy: perIp })
    const exporter = createLimiter({ store, clock: () => 0, name: 'export', policy: perIp })
    expect((await exporter.check('127.0.0.1', { cost: 2 })).allowed).toBe(true)
    // Before names one bucket key:127.0.0.1 served both: the export route's 2 tokens left this one 1.
    expect(await all.check('127.0.0.1', { cost: 0 })).toMatchObject({ remaining: 3 })
    expect(await exporter.check('127.0.0.1', { cost: 0 })).toMatchObject({ remaining: 1 })
  })

  it('refuses a second limiter with the default name on one store, naming the field and value', () => {
    const store = new InProcessStore({ maxKeys: 1000 })
    createLimiter({ store, policy: perIp })
    const error = thrown(() => createLimiter({ store, policy: exportPolicy }))
    expect(error).toMatchObject({ code: ErrorCode.DuplicateName, field: 'name', value: 'default' })
    expect(error.message).toContain('createLimiter({ name })')
  })

  it('frees a name when its limiter closes; limiters with stores of their own never clash', async () => {
    const store = new InProcessStore({ maxKeys: 1000 })
    const first = createLimiter({ store, name: 'api', policy: perIp })
    expect(thrown(() => createLimiter({ store, name: 'api' })).code).toBe(ErrorCode.DuplicateName)
    await first.close()
    expect(createLimiter({ store, name: 'api' }).name).toBe('api')
    expect(createLimiter().name).toBe('default')
    expect(createLimiter().name).toBe('default')
  })

  it.each([[''], [7], ['a\u0000b'], ['x'.repeat(201)]])('refuses name %j', (name) => {
    expect(thrown(() => createLimiter({ name } as unknown as LimiterOptions))).toMatchObject({
      code: ErrorCode.InvalidOption,
      field: 'name',
    })
  })
})

describe('a chain level with no policy', () => {
  it.each([
    [{ levels: ['user', 'org'], policies: { user: perIp } }, 'policies.org'],
    [{ levels: ['user', 'org'], tiers: { free: { user: perIp } } }, 'tiers.free.org'],
    [
      { levels: ['user', 'org'], tiers: { free: { user: perIp, org: perIp }, pro: { user: perIp } } },
      'tiers.pro.org',
    ],
    [{ levels: ['user', { name: 'global' }], tiers: { free: { user: perIp } } }, 'tiers.free.global'],
  ] as [LimiterOptions, string][])('is refused when the limiter is made: %j names %s', (options, field) => {
    const error = thrown(() => createLimiter(options))
    expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field })
    const [where, tierOrLevel] = field.split('.')
    expect(error.message).toContain(`level "${field.split('.').at(-1)}"`)
    if (where === 'tiers') expect(error.message).toContain(`tier "${tierOrLevel}"`)
  })

  it('is fine where a base policy covers the tiers that leave the level out', async () => {
    const limiter = createLimiter({
      levels: ['user', 'org'],
      policies: { org: exportPolicy },
      tiers: { free: { user: perIp }, pro: { user: perIp, org: perIp } },
    })
    const d = await limiter.check({ user: 'u', org: 'o' })
    expect(d.levels.map((l) => [l.level, l.limit])).toEqual([
      ['user', 3],
      ['org', 1],
    ])
  })

  it('cannot come from a runtime change: updateLimits refuses a level without a policy', async () => {
    const limiter = createLimiter({
      levels: ['user', 'org'],
      tiers: { free: { user: perIp, org: exportPolicy } },
    })
    for (const value of [null, undefined]) {
      const error = await limiter.updateLimits('free', { org: value as never }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: ErrorCode.InvalidPolicy, field: 'tiers.free.org' })
    }
    expect((await limiter.check({ user: 'u', org: 'o' })).levels.map((l) => l.level)).toEqual(['user', 'org'])
    expect((await limiter.check({ user: 'u', org: 'o' })).binding).toBe('org')
  })
})
