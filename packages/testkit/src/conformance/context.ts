import type { Limiter, LimiterOptions, PolicyInput, Store } from '@tollgate/core'
import { TollgateError } from '@tollgate/core'
import { expect } from 'vitest'
import type { ManualClock } from '../clock.js'

/** Makes a fresh, isolated store whose decisions use `clock` for time. */
export type StoreFactory = (clock: ManualClock) => Store | Promise<Store>

export interface ConformanceOptions {
  /** fast-check runs of each model-based property (default 60). */
  propertyRuns?: number
  /** Per-test timeout in ms (default 60 s). */
  timeoutMs?: number
}

/** What every part of the suite shares: the store factory and a limiter on a fresh store. */
export interface SuiteContext {
  readonly makeStore: StoreFactory
  readonly runs: number
  /** Stores to close after each test. */
  readonly opened: Store[]
  setup(
    limiterOptions?: Omit<LimiterOptions, 'store' | 'clock'>,
  ): Promise<{ clock: ManualClock; store: Store; limiter: Limiter }>
  admitted(
    limiter: Limiter,
    subject: Parameters<Limiter['check']>[0],
    attempts: number,
    cost?: number,
  ): Promise<number>
}

export const perSecond = (
  capacity: number,
  tokens: number,
  per: PolicyInput['refill'] extends infer R ? R : never = '1s' as never,
) => ({ capacity, refill: { tokens, per } }) as PolicyInput

export async function expectCode(
  promise: Promise<unknown> | (() => unknown),
  code: string,
): Promise<TollgateError> {
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    expect((error as TollgateError).code).toBe(code)
    return error as TollgateError
  }
  throw new Error(`expected a TollgateError ${code}, but nothing was thrown`)
}

/** Retries an assertion until it passes or `ms` of real time go by (for cross-process propagation only). */
export async function eventually(assertion: () => Promise<void>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await assertion()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

/** A small deterministic generator (mulberry32) so simulated traffic is the same every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
