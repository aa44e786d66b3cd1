import { describe, expect, it } from 'vitest'
import { advance } from '../src/advance.js'
import { stateFromDebt } from '../src/algorithm.js'
import { makeBook } from '../src/book.js'
import { normalizePolicy, type Policy } from '../src/policy.js'
import { changeMoments, policyAt, type TenantEntries, tierAt } from '../src/resolve.js'
import { appendVersion, MAX_VERSIONS, valueAt } from '../src/versions.js'

const perSecond = (n: number) => normalizePolicy({ capacity: n, refill: { tokens: n, per: '1s' } })
const free = perSecond(10)
const premium = perSecond(100)
const custom = perSecond(3)
const base = perSecond(1)

function book(premiumLater?: { since: number; value: Policy }) {
  return makeBook({
    levels: ['user', 'org'],
    base: [base, undefined],
    tiers: new Map([
      ['free', [[{ since: 0, value: free }], undefined]],
      ['premium', [[{ since: 0, value: premium }, ...(premiumLater ? [premiumLater] : [])], undefined]],
    ]),
    defaultTier: 'free',
  })
}

describe('resolution (pure: book + registry entries → policies)', () => {
  it('takes the forced tier, else the first level with an assignment, else the default', () => {
    const b = book()
    const org: TenantEntries = { assignment: [{ since: 100, value: 'premium' }] }
    const user: TenantEntries = { assignment: [{ since: 200, value: 'free' }] }
    expect(tierAt(b, [undefined, org], undefined, 99)).toBe('free')
    expect(tierAt(b, [undefined, org], undefined, 100)).toBe('premium')
    expect(tierAt(b, [user, org], undefined, 150)).toBe('premium')
    expect(tierAt(b, [user, org], undefined, 200)).toBe('free')
    expect(tierAt(b, [user, org], 'premium', 250)).toBe('premium')
    // An assignment to a tier this limiter does not know is skipped.
    expect(tierAt(b, [{ assignment: [{ since: 0, value: 'gold' }] }, org], undefined, 300)).toBe('premium')
  })

  it("prefers the tenant's custom bucket, then the tier's policy, then the base policy", () => {
    const b = book()
    const entries: TenantEntries = {
      bucket: [
        { since: 10, value: custom },
        { since: 20, value: null },
      ],
    }
    expect(policyAt(b, 0, entries, 'premium', 5)).toEqual({ policy: premium, custom: false })
    expect(policyAt(b, 0, entries, 'premium', 15)).toEqual({ policy: custom, custom: true })
    expect(policyAt(b, 0, entries, 'premium', 20)).toEqual({ policy: premium, custom: false })
    expect(policyAt(b, 0, undefined, undefined, 0)).toEqual({ policy: base, custom: false })
    expect(policyAt(b, 1, undefined, 'free', 0)).toBeUndefined()
  })

  it('lists the moments of change after a state was written, of every source, once each, in order', () => {
    const b = book({ since: 300, value: perSecond(70) })
    const user: TenantEntries = { bucket: [{ since: 200, value: custom }] }
    const org: TenantEntries = {
      assignment: [
        { since: 100, value: 'premium' },
        { since: 200, value: null },
      ],
    }
    expect(changeMoments(b, 0, [user, org], undefined, 50, 1000)).toEqual([100, 200, 300])
    expect(changeMoments(b, 0, [user, org], undefined, 100, 250)).toEqual([200])
    expect(changeMoments(b, 0, [user, org], 'free', 0, 1000)).toEqual([200])
  })
})

describe('advance', () => {
  it('converts at each moment of change: tokens then held stay (clamped), the new rate applies after', () => {
    // Empty at 0 under free (10/s); moved to premium (100/s) at 100 by the org's assignment.
    const b = book()
    const org: TenantEntries = { assignment: [{ since: 100, value: 'premium' }] }
    const empty = stateFromDebt(10 * free.per, free, 0, 0)
    const advanced = advance(empty, b, 0, [undefined, org], undefined, 500)!
    // At 100: 1 token held under free; then 400 ms at 100/s: 41 of 100 at 500.
    expect(advanced.capacity).toBe(100)
    const debtAt500 = (advanced.tat - 500) * advanced.tokens + advanced.frac
    expect(100 - debtAt500 / advanced.per).toBe(41)
  })

  it('is pure: the same inputs give the same state, and a full bucket stays full under any change', () => {
    const b = book()
    const org: TenantEntries = { assignment: [{ since: 100, value: 'premium' }] }
    const half = stateFromDebt(5 * free.per, free, 0, 0)
    expect(advance(half, b, 0, [undefined, org], undefined, 2000)).toEqual(
      advance(half, b, 0, [undefined, org], undefined, 2000),
    )
    // Half empty at 0 refills by 500 under free: full before the change, so the change finds it full.
    expect(
      advance(half, b, 0, [undefined, { assignment: [{ since: 600, value: 'premium' }] }], undefined, 700),
    ).toBeUndefined()
  })
})

describe('versions', () => {
  it('keeps the last MAX_VERSIONS, lets a later change in the same ms win, and answers by moment', () => {
    let versions = appendVersion<string>(undefined, 10, 'a')
    versions = appendVersion(versions, 10, 'b')
    expect(versions).toEqual([{ since: 10, value: 'b' }])
    for (let i = 1; i <= MAX_VERSIONS + 3; i++) versions = appendVersion(versions, 10 + i, `v${i}`)
    expect(versions).toHaveLength(MAX_VERSIONS)
    expect(valueAt(versions, 9)).toBeNull()
    expect(valueAt(versions, 10 + MAX_VERSIONS + 3)).toBe(`v${MAX_VERSIONS + 3}`)
  })
})
