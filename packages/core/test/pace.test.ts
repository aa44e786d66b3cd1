import { describe, expect, it } from 'vitest'
import { createLimiter } from './internals.js'
import { switchableStore } from './switchable-store.js'

/**
 * A caller that loops on check() while the circuit is open gets every answer from the fallback at once: a
 * store whose replies need the event loop (sockets) would never see the probe's reply. The limiter waits for
 * the store's `pace()` before each such answer.
 */
function pacedStore(clock: () => number) {
  let paced = 0
  const pace = () =>
    new Promise<void>((resolve) => {
      paced++
      setImmediate(resolve)
    })
  const { store, setDown } = switchableStore(clock, { pace })
  setDown(true)
  return { store, paced: () => paced, up: () => setDown(false) }
}

describe('pacing while the circuit is open', () => {
  it("waits for the store's pace before each fallback answer, and not while the store answers", async () => {
    let now = 0
    const { store, paced, up } = pacedStore(() => now)
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
