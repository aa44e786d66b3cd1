import { describe, expect, it } from 'vitest'
import { createLimiter, ErrorCode, type FleetMembership, InProcessStore, TollgateError } from './internals.js'
import { switchableStore } from './switchable-store.js'

/** A switchable store that reports whatever fleet size the test sets, as a heartbeat would have counted it. */
function fleetStore(clock: () => number) {
  let size: number | undefined
  const joins: string[] = []
  const joinFleet = (): FleetMembership => {
    joins.push('join')
    return { size: () => size, leave: () => joins.push('leave') }
  }
  const { store, setDown } = switchableStore(clock, { name: 'fleet-switchable', joinFleet })
  return {
    store,
    joins,
    setDown,
    setSize: (value: number | undefined) => {
      size = value
    },
  }
}

async function admittedOf(limiter: ReturnType<typeof createLimiter>, subject: string, tries: number) {
  let admitted = 0
  for (let i = 0; i < tries; i++) {
    const d = await limiter.check(subject)
    expect(d.degraded).toBe('local')
    if (d.allowed) admitted++
  }
  return admitted
}

describe("expectedServers: 'auto'", () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', 'all', {}])(
    'refuses %s, naming the field and the value',
    (value) => {
      try {
        createLimiter({ expectedServers: value as never })
        expect.unreachable('no error thrown')
      } catch (error) {
        expect(error).toBeInstanceOf(TollgateError)
        const e = error as TollgateError
        expect(e).toMatchObject({ code: ErrorCode.InvalidOption, field: 'expectedServers' })
        expect(Object.is(e.value, value)).toBe(true)
        expect(e.message).toContain("'auto' or a whole number ≥ 1")
      }
    },
  )

  it('refuses a store that cannot count its fleet, rather than quietly dividing by 1', () => {
    const { store } = fleetStore(() => 0)
    const { joinFleet: _, ...uncounted } = store
    try {
      createLimiter({ store: uncounted, expectedServers: 'auto' })
      expect.unreachable('no error thrown')
    } catch (error) {
      expect(error).toMatchObject({ code: ErrorCode.InvalidOption, field: 'expectedServers', value: 'auto' })
      expect((error as Error).message).toContain('"fleet-switchable" cannot count its fleet')
    }
    // A static count needs nothing from the store.
    expect(() => createLimiter({ store: uncounted, expectedServers: 3 })).not.toThrow()
  })

  it('takes an in-process store as a fleet of one', async () => {
    const limiter = createLimiter({ expectedServers: 'auto', policy: { capacity: 2, refill: 0 } })
    const allowed = []
    for (let i = 0; i < 3; i++) allowed.push((await limiter.check('k')).allowed)
    expect(allowed).toEqual([true, true, false])
    expect(new InProcessStore({ maxKeys: 1 }).joinFleet().size()).toBe(1)
  })

  it('divides every limit by the fleet size last counted, and follows it when it changes', async () => {
    let now = 0
    const { store, setDown, setSize } = fleetStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      onStoreError: 'local',
      expectedServers: 'auto',
      levels: ['user', 'org'],
      policies: { user: { capacity: 40, refill: 40 }, org: { capacity: 1000, refill: 1000 } },
    })
    setSize(4)
    expect((await limiter.check({ user: 'u', org: 'o' })).degraded).toBeUndefined()
    setDown(true)
    // 40 shared → 10 here (the one shared decision above is not this bucket's: local buckets start full).
    const first = await limiter.check({ user: 'u', org: 'o' })
    expect(first).toMatchObject({ allowed: true, degraded: 'local', limit: 10, remaining: 9 })
    expect(first.levels.map((l) => l.limit)).toEqual([10, 250])
    let admitted = 1
    for (let i = 0; i < 20; i++) if ((await limiter.check({ user: 'u', org: 'o' })).allowed) admitted++
    expect(admitted).toBe(10)
    now += 100 // 40/s shared → 10/s here: one token per 100 ms
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(true)
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(false)
    // The fleet shrank to 2 before the outage's count went stale: 20 and 20/s from then on. The tokens held
    // are kept (a bucket is converted when it is next charged, like any changed policy): no free refill.
    setSize(2)
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(false)
    now += 100 // one token refilled at 10/s before the conversion
    expect(await limiter.check({ user: 'u', org: 'o' })).toMatchObject({ allowed: true, limit: 20 })
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(false)
    now += 50 // 20/s now: one token per 50 ms
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(true)
    expect((await limiter.check({ user: 'u', org: 'o' })).allowed).toBe(false)
  })

  it('divides by 1 until the store has counted, and for a count that is not a whole number ≥ 1', async () => {
    for (const size of [undefined, 0, -3, 2.5, Number.NaN]) {
      const now = 0
      const { store, setDown, setSize } = fleetStore(() => now)
      const limiter = createLimiter({
        store,
        clock: () => now,
        expectedServers: 'auto',
        policy: { capacity: 12, refill: 0 },
      })
      setSize(size)
      setDown(true)
      expect(await admittedOf(limiter, 'k', 15)).toBe(12)
    }
  })

  it('rounds a share down: capacity 10 over 3 servers is 3 each, rate 0 stays 0', async () => {
    const now = 0
    const { store, setDown, setSize } = fleetStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      expectedServers: 'auto',
      policy: { capacity: 10, refill: 0 },
    })
    setSize(3)
    setDown(true)
    expect(await admittedOf(limiter, 'k', 10)).toBe(3)
  })

  it('joins the fleet once at creation and leaves it when the limiter closes', async () => {
    const { store, joins } = fleetStore(() => 0)
    const limiter = createLimiter({ store, expectedServers: 'auto' })
    expect(joins).toEqual(['join'])
    await limiter.close()
    await limiter.close()
    expect(joins).toEqual(['join', 'leave'])
    // A static count never joins.
    const fixed = fleetStore(() => 0)
    await createLimiter({ store: fixed.store, expectedServers: 2 }).close()
    expect(fixed.joins).toEqual([])
  })
})
