import { describe, expect, it } from 'vitest'
import { advance } from '../src/advance.js'
import { stateFromDebt } from '../src/algorithm.js'
import { makeBook } from '../src/book.js'
import { normalizePolicy } from '../src/policy.js'
import { changeMoments, latestChange, mayHaveChanged, policyAt, type TenantEntries } from '../src/resolve.js'
import { appendVersion, latest, latestSince } from '../src/versions.js'

const perSecond = (n: number) => normalizePolicy({ capacity: n, refill: { tokens: n, per: '1s' } })
const free = perSecond(10)
const alsoFree = perSecond(10)
const premium = perSecond(100)
const fixed = normalizePolicy({ capacity: 5, refill: 0 })

const book = makeBook({
  levels: ['user', 'org'],
  base: [undefined, undefined],
  tiers: new Map([
    ['free', [[{ since: 0, value: free }], undefined]],
    ['premium', [[{ since: 0, value: premium }], undefined]],
    ['same', [[{ since: 0, value: alsoFree }], undefined]],
    ['fixed', [[{ since: 0, value: fixed }], undefined]],
  ]),
  defaultTier: 'free',
})

const assigned = (tier: string, since: number): TenantEntries => ({ assignment: [{ since, value: tier }] })

describe('advance at the edges', () => {
  it('has nothing to advance without a state', () => {
    expect(advance(undefined, book, 0, [assigned('premium', 5)], undefined, 10)).toBeUndefined()
  })

  it('counts a change made in the very ms of the write, and in the ms after', () => {
    const empty = stateFromDebt(10 * free.per, free, 100, 100)
    for (const since of [100, 101]) {
      const advanced = advance(empty, book, 0, [assigned('premium', since)], undefined, 101)!
      expect(advanced).toMatchObject({ capacity: 100, epoch: since })
    }
  })

  it('keeps the state as it is when a change leaves its policy the same, or gives its level none', () => {
    const half = stateFromDebt(5 * free.per, free, 0, 0)
    expect(advance(half, book, 0, [assigned('same', 100)], undefined, 200)).toBe(half)
    // Level 1 (org) has no policy in any tier: a change of assignment there converts nothing.
    expect(advance(half, book, 1, [undefined, assigned('premium', 100)], undefined, 200)).toBe(half)
  })

  it('skips the registry when nothing can have changed, and not when a tier was updated at runtime', () => {
    // Empty at 0 under premium (100/s); premium becomes 10/s at 50, when 5 are back: 5 owed, full at 550.
    const empty = stateFromDebt(100 * premium.per, premium, 0, 0)
    expect(advance(empty, book, 0, [], 'premium', 60)).toBe(empty)
    const updated = makeBook({
      ...book,
      tiers: new Map([
        [
          'premium',
          [
            [
              { since: 0, value: premium },
              { since: 50, value: free },
            ],
            undefined,
          ],
        ],
      ]),
    })
    expect(advance(empty, updated, 0, [], 'premium', 60)).toMatchObject({ capacity: 10, tat: 550, epoch: 50 })
  })

  it('counts tokens spent from 0 when it converts into a fixed allowance', () => {
    // 8 of 10 used at 0 under 10/s; at 100 one more is back (3 held), clamped to the allowance of 5: 2 spent.
    const used = stateFromDebt(8 * free.per, free, 0, 0)
    const advanced = advance(used, book, 0, [assigned('fixed', 100)], undefined, 5000)!
    expect(advanced).toMatchObject({ tat: 2, frac: 0, capacity: 5, tokens: 0, epoch: 100 })
  })
})

describe('resolution at the edges', () => {
  it('falls back to the base policy for a tier it does not know', () => {
    const withBase = makeBook({ ...book, base: [fixed, undefined] })
    expect(policyAt(withBase, 0, undefined, 'gold', 0)).toEqual({ policy: fixed, custom: false })
  })

  it('lists a change made at the very moment asked about, none when nothing changed, none for an unknown tier', () => {
    const entries = [assigned('premium', 300)]
    expect(changeMoments(book, 0, entries, undefined, 0, 300)).toEqual([300])
    expect(changeMoments(book, 0, entries, undefined, 300, 1000)).toEqual([])
    expect(changeMoments(book, 0, entries, 'gold', 0, 1000)).toEqual([])
  })

  it('names the latest moment of change up to now, 0 when there is none', () => {
    const entries = [
      { assignment: [{ since: 300, value: 'premium' }], bucket: [{ since: 500, value: premium }] },
    ]
    expect(latestChange(book, 0, entries, undefined, 1000)).toBe(500)
    expect(latestChange(book, 0, entries, undefined, 400)).toBe(300)
    expect(latestChange(book, 0, entries, undefined, 200)).toBe(0)
  })
})

describe('resolution answers', () => {
  it('gives one answer object per policy and kind, telling custom from shared', () => {
    const withBase = makeBook({ ...book, base: [premium, undefined] })
    const ownPremium: TenantEntries = { bucket: [{ since: 0, value: premium }] }
    const shared = policyAt(withBase, 0, undefined, 'gold', 0)
    const custom = policyAt(withBase, 0, ownPremium, 'gold', 0)
    expect(shared).toEqual({ policy: premium, custom: false })
    expect(custom).toEqual({ policy: premium, custom: true })
    expect(policyAt(withBase, 0, undefined, 'premium', 5)).toBe(shared)
    expect(policyAt(withBase, 0, ownPremium, 'free', 5)).toBe(custom)
    expect(Object.isFrozen(custom)).toBe(true)
  })

  it('knows when nothing can have changed a level at runtime', () => {
    // Tiers as configured (since 0) and no registry entries: nothing to look up.
    expect(mayHaveChanged(book, 0, [])).toBe(false)
    expect(mayHaveChanged(book, 1, [])).toBe(false)
    expect(mayHaveChanged(book, 0, [undefined])).toBe(true)
    // updateLimits at 500 on level 0 of one tier: level 0 may have changed, level 1 not.
    const updated = makeBook({
      ...book,
      tiers: new Map([
        ['free', [[{ since: 0, value: free }], undefined]],
        [
          'premium',
          [
            [
              { since: 0, value: premium },
              { since: 500, value: free },
            ],
            undefined,
          ],
        ],
      ]),
    })
    expect(mayHaveChanged(updated, 0, [])).toBe(true)
    expect(mayHaveChanged(updated, 0, [])).toBe(true)
    expect(mayHaveChanged(updated, 1, [])).toBe(false)
  })
})

describe('versions at the edges', () => {
  it('answers the newest value and moment, null and 0 for no history', () => {
    const history = appendVersion(appendVersion<string>(undefined, 10, 'a'), 20, null)
    expect(latest(history)).toBeNull()
    expect(latest(appendVersion(history, 30, 'c'))).toBe('c')
    expect(latestSince(history)).toBe(20)
    expect(latest(undefined)).toBeNull()
    expect(latest([])).toBeNull()
    expect(latestSince(undefined)).toBe(0)
    expect(latestSince([])).toBe(0)
  })

  it('leaves the history it was given unchanged', () => {
    const history = appendVersion<string>(undefined, 10, 'a')
    const next = appendVersion(history, 10, 'b')
    expect(history).toEqual([{ since: 10, value: 'a' }])
    expect(next).toEqual([{ since: 10, value: 'b' }])
  })
})
