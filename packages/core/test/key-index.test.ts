import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { hashKey, KeyIndex } from '../src/key-index.js'

describe('KeyIndex against a Map', () => {
  // Hashes drawn from a handful of values, so runs collide, wrap around the end of the table and are
  // shifted back on delete; keys are slots' names, as BucketTable's keys array holds them.
  const op = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({ add: fc.nat(60), hash: fc.constantFrom(0, 1, 15, 31, -1, 0x7fffffff) }),
    },
    { weight: 2, arbitrary: fc.record({ remove: fc.nat(60) }) },
    { weight: 1, arbitrary: fc.record({ clear: fc.constant(true) }) },
  )
  it('finds every key it holds and none it does not, through growth, collisions and deletes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const index = new KeyIndex()
        const model = new Map<string, { slot: number; hash: number }>()
        const keys: (string | undefined)[] = []
        let nextSlot = 0
        for (const o of ops) {
          if ('clear' in o) {
            index.clear()
            model.clear()
          } else if ('add' in o) {
            const key = `k${o.add}`
            if (model.has(key)) continue
            const slot = nextSlot++
            keys[slot] = key
            index.add(o.hash, slot)
            model.set(key, { slot, hash: o.hash })
          } else {
            const key = `k${o.remove}`
            const held = model.get(key)
            if (!held) continue
            index.remove(held.hash, held.slot)
            model.delete(key)
          }
          if (index.size !== model.size) expect(index.size).toBe(model.size)
        }
        // Taking out a slot that is not filed changes nothing (and returns: a run ends at an empty pair).
        index.remove(7, 1_000_000)
        expect(index.size).toBe(model.size)
        const found: number[] = []
        const expected: number[] = []
        for (let k = 0; k <= 60; k++) {
          const key = `k${k}`
          const held = model.get(key)
          for (const hash of [0, 1, 15, 31, -1, 0x7fffffff]) {
            found.push(index.find(key, hash, keys))
            expected.push(held && held.hash === hash ? held.slot : -1)
          }
        }
        expect(found).toEqual(expected)
      }),
      { numRuns: 500 },
    )
  }, 30_000)

  it('hashKey spreads keys that differ in one character, and is the same for the same key', () => {
    const low = new Set<number>()
    for (let i = 0; i < 4096; i++) low.add(hashKey(`10.0.${i >> 8}.${i & 255}`) & 4095)
    // 4096 keys into 4096 buckets: a fair hash fills about 63% (1 − 1/e); sequential keys must not clump.
    expect(low.size).toBeGreaterThan(2400)
    expect(hashKey('tenant-a')).toBe(hashKey(`tenant-${'a'}`))
    expect(hashKey('tenant-a')).not.toBe(hashKey('tenant-b'))
  })
})
