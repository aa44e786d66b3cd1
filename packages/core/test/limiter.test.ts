import { describe, expect, it } from 'vitest'
import {
  createLimiter,
  ErrorCode,
  InProcessStore,
  type LimiterEvent,
  type Store,
  TollgateError,
} from './internals.js'
import { switchableStore } from './switchable-store.js'

describe('createLimiter options', () => {
  it.each([
    [{ levels: [] }, 'levels', ErrorCode.InvalidOption],
    [{ levels: ['a', 'a'] }, 'levels', ErrorCode.InvalidOption],
    [{ levels: [''] }, 'levels[0]', ErrorCode.InvalidOption],
    [{ onStoreError: 'retry' }, 'onStoreError', ErrorCode.InvalidOption],
    [{ expectedServers: 0 }, 'expectedServers', ErrorCode.InvalidOption],
    [{ breaker: { failures: 0 } }, 'breaker.failures', ErrorCode.InvalidOption],
    [{ breaker: { cooldownMs: 1e300 } }, 'breaker.cooldownMs', ErrorCode.InvalidOption],
    [{ store: {} }, 'store', ErrorCode.InvalidOption],
    [{ policies: { team: { capacity: 1, refill: 1 } } }, 'policies.team', ErrorCode.UnknownLevel],
    [
      { tiers: { free: { key: { capacity: -2, refill: 1 } } } },
      'tiers.free.key.capacity',
      ErrorCode.InvalidPolicy,
    ],
    [
      { tiers: { free: { key: { capacity: 2, refill: 1 } } }, defaultTier: 'gold' },
      'defaultTier',
      ErrorCode.UnknownTier,
    ],
    [{ policy: { capacity: 1, refill: 1 }, policies: {} }, 'policy', ErrorCode.InvalidOption],
  ])('rejects %j naming %s', (options, field, code) => {
    try {
      createLimiter(options as never)
      expect.unreachable('no error thrown')
    } catch (error) {
      expect(error).toBeInstanceOf(TollgateError)
      expect(error).toMatchObject({ code, field })
    }
  })

  it('defaults to capacity 5 refilling 1 per second with buckets made on first use', async () => {
    let now = 0
    const limiter = createLimiter({ clock: () => now })
    const decisions = []
    for (let i = 0; i < 6; i++) decisions.push(await limiter.check('1.2.3.4'))
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false])
    expect(decisions[5]).toMatchObject({ limit: 5, retryAfterMs: 1000 })
    now += 1000
    expect((await limiter.check('1.2.3.4')).allowed).toBe(true)
  })

  it('refuses a store bounded below one bucket per level, which would let the lower levels never bind', async () => {
    const perHour = (n: number) => ({ capacity: n, refill: { tokens: n, per: '1h' as const } })
    const options = {
      levels: ['user', 'org', 'global'],
      policies: { user: perHour(1), org: perHour(100), global: perHour(1000) },
    }
    expect(() => createLimiter({ ...options, store: new InProcessStore({ maxKeys: 2 }) })).toThrowError(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'maxKeys', value: 2 }),
    )
    // At one bucket per level the chain holds: the user level admits its one.
    const limiter = createLimiter({ ...options, store: new InProcessStore({ maxKeys: 3 }) })
    const admitted = []
    for (let i = 0; i < 5; i++) admitted.push((await limiter.check({ user: 'u', org: 'o' })).allowed)
    expect(admitted).toEqual([true, false, false, false, false])
  })

  it('allows everything when the subject has a key for no limited level', async () => {
    const limiter = createLimiter({
      levels: ['user', 'org'],
      policies: { user: { capacity: 1, refill: 1 }, org: { capacity: 1, refill: 1 } },
    })
    const d = await limiter.check({ user: undefined })
    expect(d).toMatchObject({ allowed: true, levels: [] })
  })
})

describe('when the store fails', () => {
  it('open admits, closed refuses, and both report degraded then recovered', async () => {
    for (const mode of ['open', 'closed'] as const) {
      const now = 0
      const { store, setDown } = switchableStore(() => now)
      const events: LimiterEvent['type'][] = []
      const limiter = createLimiter({
        store,
        clock: () => now,
        onStoreError: mode,
        policy: { capacity: 1, refill: 1 },
        onEvent: (e) => events.push(e.type),
      })
      setDown(true)
      const d = await limiter.check('t')
      expect(d).toMatchObject({ allowed: mode === 'open', degraded: mode })
      setDown(false)
      expect((await limiter.check('t')).degraded).toBeUndefined()
      expect(events).toEqual(['degraded', 'store-error', 'decision', 'recovered', 'decision'])
    }
  })

  it('local decides with in-process buckets holding the shared limit divided by expectedServers', async () => {
    let now = 0
    const { store, setDown } = switchableStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      onStoreError: 'local',
      expectedServers: 4,
      policy: { capacity: 40, refill: 40 },
    })
    setDown(true)
    let admitted = 0
    for (let i = 0; i < 50; i++) {
      const d = await limiter.check('t')
      expect(d.degraded).toBe('local')
      if (d.allowed) admitted++
    }
    expect(admitted).toBe(10)
    now += 100 // 40/s shared → 10/s here: one token per 100 ms
    expect((await limiter.check('t')).allowed).toBe(true)
    expect((await limiter.check('t')).allowed).toBe(false)
  })

  it('local keeps the bucket of a hot tenant through a flood of new tenants, and stays bounded', async () => {
    const now = 0
    const { store, setDown } = switchableStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      onStoreError: 'local',
      levels: ['user', { name: 'global', key: 'all' }],
      policies: {
        user: { capacity: 3, refill: { tokens: 1, per: '1h' } },
        global: { capacity: 1e9, refill: 1e9 },
      },
    })
    setDown(true)
    for (let i = 0; i < 3; i++) expect((await limiter.check({ user: 'hot' })).allowed).toBe(true)
    // 150,000 one-off tenants: more than the fallback remembers (100,000), so it evicts; the hot tenant,
    // asked every 1000 of them, stays recent, so its empty bucket is kept and it stays refused.
    for (let i = 0; i < 150_000; i++) {
      if (i % 1000 === 0) expect((await limiter.check({ user: 'hot' })).allowed).toBe(false)
      const d = await limiter.check({ user: `u${i}` })
      if (!d.allowed || d.degraded !== 'local') expect(d).toMatchObject({ allowed: true, degraded: 'local' })
    }
    // A tenant of the flood's first half was evicted and starts full again; a recent one is still charged.
    expect((await limiter.check({ user: 'u0' })).levels[0]!.remaining).toBe(2)
    expect((await limiter.check({ user: 'u149999' })).levels[0]!.remaining).toBe(1)
  }, 30_000)

  it("takes a store's answerNow in the same turn, asks decide when it has none, and skips it while the circuit is open", async () => {
    let now = 0
    const { store, setDown, calls } = switchableStore(() => now)
    const held = new InProcessStore({ maxKeys: 10, clock: () => now })
    let asked = 0
    // Answers tenant 'hot' here (as Redis's remembered refusals do), anything else is left to decide.
    store.answerNow = (request) => {
      asked++
      return request.keys[0] === 'hot' ? held.decideNow({ ...request, cost: 0 }) : undefined
    }
    const limiter = createLimiter({
      store,
      clock: () => now,
      onStoreError: 'open',
      breaker: { failures: 1, cooldownMs: 1000 },
      policy: { capacity: 5, refill: 5 },
    })
    const hot = limiter.checkNow('hot')
    expect(hot).not.toBeInstanceOf(Promise)
    expect(hot).toMatchObject({ allowed: true, remaining: 5 })
    expect(calls()).toBe(0)
    const cold = limiter.checkNow('cold')
    expect(cold).toBeInstanceOf(Promise)
    expect(await cold).toMatchObject({ allowed: true, remaining: 4 })
    expect([asked, calls()]).toEqual([2, 1])
    setDown(true)
    expect((await limiter.check('cold')).degraded).toBe('open')
    // Open: the fallback answers, not answerNow (nor decide).
    expect((await limiter.check('hot')).degraded).toBe('open')
    expect([asked, calls()]).toEqual([3, 2])
    // The probe after the cooldown asks the store itself; closed again, answerNow answers.
    now += 1000
    setDown(false)
    expect((await limiter.check('hot')).degraded).toBeUndefined()
    expect([asked, calls()]).toEqual([3, 3])
    expect(limiter.checkNow('hot')).not.toBeInstanceOf(Promise)
    expect([asked, calls()]).toEqual([4, 3])
  })

  it('opens the circuit after repeated failures, then probes once the cooldown has passed', async () => {
    let now = 0
    const { store, setDown, calls } = switchableStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      onStoreError: 'open',
      breaker: { failures: 2, cooldownMs: 1000 },
      policy: { capacity: 5, refill: 5 },
    })
    setDown(true)
    await limiter.check('t')
    await limiter.check('t')
    expect(calls()).toBe(2)
    for (let i = 0; i < 10; i++) await limiter.check('t')
    expect(calls()).toBe(2) // the open circuit does not wait on a dead store
    now += 1000
    setDown(false)
    const probe = await limiter.check('t')
    expect(calls()).toBe(3)
    expect(probe.degraded).toBeUndefined()
    await limiter.check('t')
    expect(calls()).toBe(4)
  })

  it('never turns a store failure into a rejection', async () => {
    let now = 0
    const limiter = createLimiter({
      clock: () => now,
      onStoreError: 'local',
      policy: { capacity: 1, refill: 1 },
      store: brokenStore(),
    })
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.check('t')))
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
    now += 1
  })
})

describe('events', () => {
  it('reports every decision and survives a throwing listener', async () => {
    const seen: LimiterEvent[] = []
    const limiter = createLimiter({ policy: { capacity: 1, refill: 1 } })
    limiter.on(() => {
      throw new Error('listener bug')
    })
    const off = limiter.on((e) => seen.push(e))
    await limiter.check('a')
    off()
    await limiter.check('a')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ type: 'decision', decision: { allowed: true } })
  })
})

/** A store whose every call fails as a dead connection does. */
export function brokenStore(): Store {
  const hangUp = () => Promise.reject(new Error('socket hang up'))
  return {
    name: 'broken',
    decide: hangUp,
    refund: hangUp,
    reset: hangUp,
    registry: {
      read: hangUp,
      write: hangUp,
      tiers: hangUp,
      writeTier: hangUp,
      subscribe: () => () => undefined,
    },
  }
}

describe('local fallback memory', () => {
  it('takes no tier from a level every tenant shares (a global level)', async () => {
    const now = 0
    const { store, setDown } = switchableStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      levels: ['user', 'global'],
      tiers: {
        free: { user: { capacity: 10, refill: 10 }, global: { capacity: 1000, refill: 1000 } },
        anonymous: { user: { capacity: 5, refill: 5 }, global: { capacity: 500, refill: 500 } },
      },
      onStoreError: 'local',
    })
    expect(await limiter.check({ user: 'ip-1' }, { tier: 'anonymous' })).toMatchObject({ tier: 'anonymous' })
    setDown(true)
    // alice was never seen: she gets the default tier, not what the shared global bucket last saw.
    expect(await limiter.check({ user: 'alice' })).toMatchObject({
      degraded: 'local',
      tier: 'free',
      limit: 10,
    })
  })
})

describe('checkNow: a decision without a Promise when the store is in process', () => {
  it('returns the Decision itself on an in-process store, the same figures check gives', async () => {
    let now = 0
    const make = () => createLimiter({ clock: () => now, policy: { capacity: 2, refill: 1 } })
    const sync = make()
    const viaPromise = make()
    for (let i = 0; i < 4; i++) {
      const d = sync.checkNow('t')
      expect(d).not.toBeInstanceOf(Promise)
      expect(d).toEqual(await viaPromise.check('t'))
      now += 400
    }
  })

  it('gives the Promise check would when the store is not in process, and when it fails', async () => {
    const { store, setDown } = switchableStore(() => 0)
    const limiter = createLimiter({
      store,
      clock: () => 0,
      onStoreError: 'closed',
      policy: { capacity: 1, refill: 1 },
    })
    const first = limiter.checkNow('t')
    expect(first).toBeInstanceOf(Promise)
    expect(await first).toMatchObject({ allowed: true })
    setDown(true)
    const failed = limiter.checkNow('t')
    expect(failed).toBeInstanceOf(Promise)
    expect(await failed).toMatchObject({ allowed: false, degraded: 'closed' })
  })

  it('throws bad input at once, where check rejects', async () => {
    const limiter = createLimiter({ policy: { capacity: 1, refill: 1 } })
    expect(() => limiter.checkNow('')).toThrowError(expect.objectContaining({ code: ErrorCode.InvalidKey }))
    expect(() => limiter.checkNow('t', { cost: -1 })).toThrowError(
      expect.objectContaining({ code: ErrorCode.InvalidCost }),
    )
    const rejected = limiter.check('t', { cost: 1.5 })
    expect(rejected).toBeInstanceOf(Promise)
    await expect(rejected).rejects.toMatchObject({ code: ErrorCode.InvalidCost })
  })
})
