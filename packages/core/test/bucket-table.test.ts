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

describe('BucketTable: one recency list per (limiter name, level) under one bound', () => {
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

/**
 * The reference: per table its keys newest first, and the same eviction rule (a table at its share drops its
 * own oldest, one below it the largest table's oldest; ties keep the table itself, then the first made).
 */
class ModelTable {
  readonly tables = new Map<string, { key: string; tat: number }[]>()
  evictions = 0
  constructor(readonly maxKeys: number) {}
  private list(name: string) {
    const list = this.tables.get(name) ?? []
    this.tables.set(name, list)
    return list
  }
  private get size() {
    let n = 0
    for (const list of this.tables.values()) n += list.length
    return n
  }
  find(name: string, key: string): number | undefined {
    const list = this.list(name)
    const at = list.findIndex((e) => e.key === key)
    if (at < 0) return undefined
    const [entry] = list.splice(at, 1)
    list.unshift(entry!)
    return entry!.tat
  }
  put(name: string, key: string, tat: number): void {
    const list = this.list(name)
    const held = list.find((e) => e.key === key)
    if (held) {
      held.tat = tat
      return
    }
    if (this.size >= this.maxKeys) {
      let victim = list
      if (list.length * this.tables.size < this.maxKeys)
        for (const other of this.tables.values()) if (other.length > victim.length) victim = other
      if (victim.pop()) this.evictions++
    }
    list.unshift({ key, tat })
  }
  remove(name: string, key: string): boolean {
    const list = this.list(name)
    const at = list.findIndex((e) => e.key === key)
    if (at >= 0) list.splice(at, 1)
    return at >= 0
  }
  entries(): [string, string, number][] {
    return [...this.tables].flatMap(([name, list]) =>
      list.map((e) => [name, e.key, e.tat] as [string, string, number]),
    )
  }
}

describe("BucketTable's memo of the key found last", () => {
  it('never answers for a bucket removed, evicted or cleared since it was found', () => {
    // Few keys and a bound of 3: a find, then a remove, an eviction or a clear, then the same find again is common.
    const step = fc.record({
      kind: fc.constantFrom('put', 'find', 'find', 'remove', 'clear'),
      key: fc.nat(4),
    })
    fc.assert(
      fc.property(fc.array(step, { minLength: 20, maxLength: 60 }), (steps) => {
        const table = new BucketTable(3)
        const user = table.table('ns', 'user')
        const held = new Map<string, number>()
        for (const [i, o] of steps.entries()) {
          const key = `k${o.key}`
          if (o.kind === 'put') {
            table.put(user, key, state(i))
            // The least recently used goes first (a Map lists in insertion order; a find re-inserts, a
            // write to a held key keeps its place).
            if (!held.has(key) && held.size === 3) held.delete(held.keys().next().value!)
            held.set(key, i)
          } else if (o.kind === 'remove') {
            table.remove(user, key)
            held.delete(key)
          } else if (o.kind === 'clear') {
            table.clear()
            held.clear()
          } else {
            const slot = table.find(user, key)
            const tat = held.get(key)
            if (tat !== undefined) {
              held.delete(key)
              held.set(key, tat)
            }
            expect(slot < 0 ? undefined : table.read(slot, emptyState()).tat).toBe(tat)
          }
        }
      }),
      { numRuns: 1000 },
    )
  })
})

describe('BucketTable against a reference model', () => {
  const op = fc.oneof(
    {
      weight: 10,
      arbitrary: fc.record({
        kind: fc.constant('put' as const),
        table: fc.nat(2),
        key: fc.nat(15),
        tat: fc.nat(1000),
      }),
    },
    {
      weight: 10,
      arbitrary: fc.record({ kind: fc.constant('find' as const), table: fc.nat(2), key: fc.nat(15) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('remove' as const), table: fc.nat(2), key: fc.nat(15) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
  )
  it('finds, writes, evicts and lists what a per-table LRU under one bound would', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 300 }), (maxKeys, ops) => {
        const table = new BucketTable(maxKeys)
        const model = new ModelTable(maxKeys)
        const names = ['user', 'org', 'global']
        const levels = names.map((name) => table.table('ns', name))
        for (const name of names) model.find(name, '')
        for (const o of ops) {
          if (o.kind === 'clear') {
            table.clear()
            model.tables.clear()
            for (const name of names) model.find(name, '')
            continue
          }
          const name = names[o.table]!
          const key = `k${o.key}`
          if (o.kind === 'put') {
            table.put(levels[o.table]!, key, state(o.tat))
            model.put(name, key, o.tat)
          } else if (o.kind === 'find') {
            const slot = table.find(levels[o.table]!, key)
            const tat = slot < 0 ? undefined : table.read(slot, emptyState()).tat
            expect(tat).toBe(model.find(name, key))
          } else {
            expect(table.remove(levels[o.table]!, key)).toBe(model.remove(name, key))
          }
          expect(table.size).toBeLessThanOrEqual(maxKeys)
        }
        const listed = [...table.entries()].map(([id, s]) => {
          const [, level, key] = splitNamespacedId(id)!
          return [level, key, s.tat]
        })
        expect(listed).toEqual(model.entries())
        expect(table.size).toBe(listed.length)
        expect(table.evictions).toBe(model.evictions)
      }),
      { numRuns: 500 },
    )
  })
})
