import { createLimiter, ErrorCode, TollgateError } from '@tollgate/core'
import { bucketId } from '@tollgate/core/store'
import { manualClock } from '@tollgate/testkit'
import { describe, expect, it } from 'vitest'
import { type MemorySnapshot, memoryStore } from '../src/index.js'

describe('memoryStore', () => {
  it('holds at most maxKeys buckets, counts and reports every eviction', async () => {
    const clock = manualClock()
    const evicted: string[] = []
    const store = memoryStore({ clock: clock.now, maxKeys: 100, onEvict: (id) => evicted.push(id) })
    const limiter = createLimiter({ store, clock: clock.now, policy: { capacity: 5, refill: 1 } })
    for (let i = 0; i < 250; i++) await limiter.check(`tenant-${i}`)
    expect(store.stats()).toEqual({ size: 100, maxKeys: 100, evictions: 150 })
    expect(evicted[0]).toBe('key\u0000tenant-0')
  })

  it('keeps a hot tenant through a flood of one-off keys (least recently used goes first)', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now, maxKeys: 50 })
    const limiter = createLimiter({ store, clock: clock.now, policy: { capacity: 1000, refill: 0 } })
    for (let i = 0; i < 5000; i++) {
      await limiter.check(`flood-${i}`)
      if (i % 10 === 0) await limiter.check('hot')
    }
    expect((await limiter.check('hot', { cost: 0 })).remaining).toBe(1000 - 500)
  })

  it('lets buckets expire when they are full again', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now })
    const limiter = createLimiter({ store, clock: clock.now, policy: { capacity: 10, refill: 10 } })
    await limiter.check('a', { cost: 3 })
    await limiter.check('b', { cost: 10 })
    expect(store.stats().size).toBe(2)
    clock.advance(300)
    store.purgeStale()
    expect(store.stats().size).toBe(1)
    clock.advance(699)
    expect(store.purgeStale()).toBe(0)
    clock.advance(1)
    expect(store.purgeStale()).toBe(1)
    expect(store.stats().size).toBe(0)
  })

  it('does not expire a fixed allowance (rate 0)', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now })
    const limiter = createLimiter({ store, clock: clock.now, policy: { capacity: 2, refill: 0 } })
    await limiter.check('a')
    clock.advance(365 * 86_400_000)
    store.purgeStale()
    expect((await limiter.check('a', { cost: 0 })).remaining).toBe(1)
  })

  it('exports and imports buckets and the registry across a restart', async () => {
    const clock = manualClock()
    const options = {
      levels: ['user'],
      tiers: { free: { user: { capacity: 10, refill: 1 } }, pro: { user: { capacity: 50, refill: 5 } } },
    }
    const before = memoryStore({ clock: clock.now })
    const limiterBefore = createLimiter({ ...options, store: before, clock: clock.now })
    await limiterBefore.check('u1', { cost: 7 })
    await limiterBefore.setTier('u2', 'pro')
    await limiterBefore.createBucket({ level: 'user', key: 'u3' }, { capacity: 2, refill: 1 })
    const snapshot: MemorySnapshot = JSON.parse(JSON.stringify(before.export()))

    clock.advance(2000)
    const after = memoryStore({ clock: clock.now })
    after.import(snapshot)
    const limiterAfter = createLimiter({ ...options, store: after, clock: clock.now })
    expect(await limiterAfter.check('u1', { cost: 0 })).toMatchObject({ remaining: 5 })
    expect(await limiterAfter.check('u2', { cost: 0 })).toMatchObject({ tier: 'pro', limit: 50 })
    expect(await limiterAfter.check('u3', { cost: 0 })).toMatchObject({ limit: 2 })
  })

  it('keeps a per-IP limiter and an /export one apart on one store, both on the default level key (issue 14)', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now })
    const perIp = createLimiter({
      store,
      clock: clock.now,
      policy: { capacity: 3, refill: { tokens: 3, per: '1m' } },
    })
    const exporter = createLimiter({
      store,
      clock: clock.now,
      name: 'export',
      policy: { capacity: 1, refill: { tokens: 1, per: '1m' } },
    })
    expect((await exporter.check('127.0.0.1')).allowed).toBe(true)
    expect((await exporter.check('127.0.0.1')).allowed).toBe(false)
    // Before names both used bucket key:127.0.0.1: the export route's charge left this limiter nothing.
    const admitted = []
    for (let i = 0; i < 4; i++) admitted.push((await perIp.check('127.0.0.1')).allowed)
    expect(admitted).toEqual([true, true, true, false])
    expect(() => createLimiter({ store, policy: { capacity: 3, refill: 1 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.DuplicateName, field: 'name', value: 'default' }),
    )
  })

  it('exports and imports every limiter of the store, each in its own namespace', async () => {
    const clock = manualClock()
    const options = {
      tiers: { free: { key: { capacity: 10, refill: 1 } }, pro: { key: { capacity: 50, refill: 5 } } },
    }
    const before = memoryStore({ clock: clock.now })
    const perIp = createLimiter({ ...options, store: before, clock: clock.now })
    const exporter = createLimiter({ ...options, name: 'export', store: before, clock: clock.now })
    await perIp.check('1.2.3.4', { cost: 7 })
    await exporter.check('1.2.3.4', { cost: 2 })
    await exporter.setTier('1.2.3.4', 'pro')
    await exporter.updateLimits('free', { key: { capacity: 3, refill: 1 } })
    const snapshot: MemorySnapshot = JSON.parse(JSON.stringify(before.export()))
    // The default limiter's entries read as before names: no namespace field.
    expect(snapshot.registry.tiers).toEqual([expect.objectContaining({ namespace: 'export', tier: 'free' })])

    const after = memoryStore({ clock: clock.now })
    after.import(snapshot)
    const perIpAfter = createLimiter({ ...options, store: after, clock: clock.now })
    const exporterAfter = createLimiter({ ...options, name: 'export', store: after, clock: clock.now })
    expect(await perIpAfter.check('1.2.3.4', { cost: 0 })).toMatchObject({ tier: 'free', remaining: 3 })
    expect(await exporterAfter.check('1.2.3.4', { cost: 0 })).toMatchObject({ tier: 'pro', remaining: 8 })
    expect(await perIpAfter.check('5.6.7.8', { cost: 0 })).toMatchObject({ limit: 10 })
    expect(await exporterAfter.check('5.6.7.8', { cost: 0 })).toMatchObject({ limit: 3 })
  })

  it('refuses a snapshot it did not write, keeping what it holds', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now })
    const limiter = createLimiter({ store, clock: clock.now, policy: { capacity: 3, refill: 1 } })
    await limiter.check('a')
    for (const bad of [
      null,
      {},
      { format: 'tollgate-memory', version: 1 },
      { ...store.export(), states: [['x', { tat: 'soon' }]] },
      // A well-formed state under an id no store makes (no level in it).
      {
        ...store.export(),
        states: [['x', { tat: 1, frac: 0, capacity: 3, tokens: 1, per: 1000, epoch: 0 }]],
      },
    ]) {
      try {
        store.import(bad as MemorySnapshot)
        expect.unreachable()
      } catch (error) {
        expect(error).toBeInstanceOf(TollgateError)
        expect((error as TollgateError).code).toBe(ErrorCode.InvalidSnapshot)
      }
    }
    expect((await limiter.check('a', { cost: 0 })).remaining).toBe(2)
  })

  it('keeps the least recently used order across export and import: the oldest bucket goes first after', async () => {
    const clock = manualClock()
    const policy = { capacity: 3, refill: 1 }
    const before = memoryStore({ clock: clock.now, maxKeys: 3 })
    const limiterBefore = createLimiter({ store: before, clock: clock.now, policy })
    for (const key of ['old', 'mid', 'new']) await limiterBefore.check(key)
    const evicted: string[] = []
    const after = memoryStore({ clock: clock.now, maxKeys: 3, onEvict: (id) => evicted.push(id) })
    after.import(JSON.parse(JSON.stringify(before.export())))
    const limiterAfter = createLimiter({ store: after, clock: clock.now, policy })
    await limiterAfter.check('newest')
    expect(evicted).toEqual([bucketId('key', 'old')])
    expect((await limiterAfter.check('mid', { cost: 0 })).remaining).toBe(2)
  })

  it('rejects a bad maxKeys', () => {
    expect(() => memoryStore({ maxKeys: 0 })).toThrowError(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'maxKeys' }),
    )
  })
})
