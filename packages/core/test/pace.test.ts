import { describe, expect, it } from 'vitest'
import {
  createLimiter,
  type DecideRequest,
  ErrorCode,
  InProcessStore,
  type Store,
  TollgateError,
} from './internals.js'

/**
 * A caller that loops on check() while the circuit is open gets every answer from the fallback at once: a
 * store whose replies need the event loop (sockets) would never see the probe's reply. The limiter waits for
 * the store's `pace()` before each such answer (a real in-process store behind a switch, not a mock).
 */
function switchableStore(clock: () => number) {
  const inner = new InProcessStore({ maxKeys: 100, clock })
  let down = true
  let paced = 0
  const store: Store = {
    name: 'switchable',
    registry: inner.registry,
    reset: (namespace, level, key) => inner.reset(namespace, level, key),
    refund: (request) => inner.refund(request),
    decide: async (request: DecideRequest) => {
      if (down) throw new TollgateError(ErrorCode.StoreUnavailable, 'store is down')
      return inner.decide(request)
    },
    pace: () =>
      new Promise<void>((resolve) => {
        paced++
        setImmediate(resolve)
      }),
  }
  return { store, paced: () => paced, up: () => (down = false) }
}

describe('pacing while the circuit is open', () => {
  it("waits for the store's pace before each fallback answer, and not while the store answers", async () => {
    let now = 0
    const { store, paced, up } = switchableStore(() => now)
    const limiter = createLimiter({
      store,
      clock: () => now,
      policy: { capacity: 100, refill: 0 },
      onStoreError: 'closed',
      breaker: { failures: 2, cooldownMs: 1000 },
    })
    // Two failures open the circuit; they waited for the store, so they are not paced.
    for (let i = 0; i < 2; i++) expect((await limiter.check('k')).degraded).toBe('closed')
    expect(paced()).toBe(0)
    // Open: each answer comes from the fallback, after the store's pace.
    for (let i = 0; i < 5; i++) expect((await limiter.check('k')).degraded).toBe('closed')
    expect(paced()).toBe(5)
    // After the cooldown the probe reaches the store, which is back: closed again, no more pacing.
    up()
    now += 1000
    expect((await limiter.check('k')).degraded).toBeUndefined()
    expect((await limiter.check('k')).degraded).toBeUndefined()
    expect(paced()).toBe(5)
  })
})
