import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BucketTable, emptyState } from '../src/bucket-table.js'
import { createLimiter, InProcessStore, namespacedId, splitNamespacedId } from './internals.js'

const state = (tat: number) => ({ tat, frac: 0, capacity: 10, tokens: 1, per: 1000, epoch: 0 })

describe('bucket ids', () => {
  it('splitNamespacedId reads back every (namespace, level, key) namespacedId makes, keys with NULs included', () => {
    const name = fc.string({ minLength: 1 }).filter((s) => !s.includes('\u0000'))
    fc.assert(
      fc.property(name, name, fc.string(), (namespace, level, key) => {
        const parts = splitNamespacedId(namespacedId(namespace, level, key))
        expect(parts).toEqual([namespace, level, key])
      }),
    )
  })

  it('splitNamespacedId refuses strings no store makes', () => {
    for (const id of ['', 'plain', '\u0000only-name', '\u0000name\u0000level-without-key']) {
      expect(splitNamespacedId(id)).toBeUndefined()
    }
  })
})

describe('BucketTable: one lru-cache per (limiter name, level) under one bound', () => {
  it('never holds more than maxKeys, across tables, and counts each eviction', () => {
    const table = new BucketTable(10, true)
    const user = table.table('default', 'user')
    const org = table.table('default', 'org')
    for (let i = 0; i < 4; i++) table.put(org, `o${i}`, state(i))
    for (let i = 0; i < 100; i++) {
      table.put(user, `u${i}`, state(i))
      expect(table.size).toBeLessThanOrEqual(10)
    }
    expect(table.size).toBe(10)
    expect(table.evictions).toBe(94)
    expect(table.takeEvicted()?.slice(0, 2)).toEqual([
      namespacedId('default', 'user', 'u0'),
      namespacedId('default', 'user', 'u1'),
    ])
  })

  it('a flood on one level evicts that level, at its share, never the hot buckets of the others', () => {
    const table = new BucketTable(10)
    const user = table.table('default', 'user')
    const org = table.table('default', 'org')
    table.put(org, 'acme', state(7))
    // The org bucket is the least recently used of all from here on: one global LRU would drop it first.
    for (let i = 0; i < 50; i++) table.put(user, `u${i}`, state(i))
    expect(table.read(table.find(org, 'acme'), emptyState()).tat).toBe(7)
  })

  it('a table under its share takes the room from the largest table', () => {
    const table = new BucketTable(10)
    const user = table.table('default', 'user')
    const org = table.table('default', 'org')
    for (let i = 0; i < 10; i++) table.put(user, `u${i}`, state(i))
    for (let i = 0; i < 5; i++) table.put(org, `o${i}`, state(i))
    // org grew to its share (10 / 2) out of user's oldest buckets; at its share it now evicts its own.
    expect([user.slots.size, org.slots.size]).toEqual([5, 5])
    expect(table.find(user, 'u4')).toBe(-1)
    expect(table.find(user, 'u5')).toBeGreaterThanOrEqual(0)
    table.put(org, 'o5', state(5))
    expect([user.slots.size, org.slots.size]).toEqual([5, 5])
    expect(table.find(org, 'o0')).toBe(-1)
  })

  it('sets, deletes and lists buckets by their namespaced ids, and ignores ids no store makes', () => {
    const table = new BucketTable(10)
    expect(table.set(namespacedId('api', 'user', 'a\u0000b'), state(3))).toBe(true)
    expect(table.set('no-level', state(3))).toBe(false)
    expect([...table.entries()].map(([id, s]) => [splitNamespacedId(id), s.tat])).toEqual([
      [['api', 'user', 'a\u0000b'], 3],
    ])
    expect(table.delete('no-level')).toBe(false)
    expect(table.delete(namespacedId('api', 'user', 'a\u0000b'))).toBe(true)
    expect(table.size).toBe(0)
  })
})

describe('the in-process store under a key flood on the user level of a chain', () => {
  it('keeps the org and global buckets charged however many users come and go', async () => {
    const store = new InProcessStore({ maxKeys: 100 })
    const limiter = createLimiter({
      store,
      levels: ['user', 'org', 'global'],
      policies: {
        user: { capacity: 5, refill: { tokens: 1, per: '1h' } },
        org: { capacity: 10_000, refill: { tokens: 1, per: '1h' } },
        global: { capacity: 10_000, refill: { tokens: 1, per: '1h' } },
      },
    })
    for (let i = 0; i < 1000; i++) await limiter.check({ user: `u${i}`, org: 'acme', global: 'all' })
    const peek = await limiter.check({ user: 'fresh', org: 'acme', global: 'all' }, { cost: 0 })
    expect(peek.levels.map((l) => l.remaining)).toEqual([5, 9000, 9000])
    expect(store.stats().size).toBeLessThanOrEqual(100)
  })
})
