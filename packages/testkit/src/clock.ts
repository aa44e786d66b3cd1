import type { Clock } from '@tollgate/core'

/** A clock tests move by hand: no test ever sleeps to wait for a refill. */
export interface ManualClock {
  /** The clock function to hand to stores and limiters. */
  readonly now: Clock
  advance(ms: number): number
  set(ms: number): void
}

/** Starts at a fixed wall-clock-like instant so epoch-based figures (legacy reset) look real. */
export function manualClock(start = 1_800_000_000_000): ManualClock {
  let current = start
  return {
    now: () => current,
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`manual clock moves forward only; got ${ms}`)
      current += ms
      return current
    },
    set(ms) {
      current = ms
    },
  }
}
