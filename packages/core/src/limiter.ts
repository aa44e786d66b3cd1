import type { Decision } from './decision.js'
import { ErrorCode, invalid } from './errors.js'
import type { LimiterListener } from './events.js'
import type { TierLimits } from './options.js'
import type { PolicyInput } from './policy.js'
import type { Subject } from './subject.js'

export { createLimiter } from './create-limiter.js'
export type { LimiterOptions, TierLimits } from './options.js'
export type { LevelSpec, Subject } from './subject.js'

export interface CheckOptions {
  /** Whole tokens ≥ 0; 0 peeks without charging. Default 1. */
  cost?: number
  /** Forces a tier (per-route plans), overriding assignments. */
  tier?: string
}

export interface BucketRef {
  readonly level: string
  readonly key: string
}

export interface BucketInfo {
  readonly level: string
  readonly key: string
  readonly tier: string | undefined
  /** The policy in force: a custom bucket's, else the tier's or the level's. */
  readonly policy: PolicyInput
  /** A per-tenant bucket made with createBucket. */
  readonly custom: boolean
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
}

export interface Limiter {
  check(subject: Subject, options?: CheckOptions): Promise<Decision>
  /**
   * `check` without a Promise when it can: a store in this process (the default store, memoryStore()) decides
   * in the same turn and the Decision comes back as it is; any other store, or a store that fails, gives
   * the Promise `check` would. Bad input throws here (check rejects). For code on the hot path:
   * `const d = limiter.checkNow(key); const decision = d instanceof Promise ? await d : d`.
   */
  checkNow(subject: Subject, options?: CheckOptions): Decision | Promise<Decision>
  /**
   * Gives back what an admitted decision of this limiter charged, on every level at once, never above
   * capacity and never to a level whose policy changed since. Does nothing for a refused, degraded or
   * cost-0 decision.
   */
  refund(decision: Decision): Promise<void>
  createBucket(ref: BucketRef, policy: PolicyInput): Promise<void>
  updateBucket(ref: BucketRef, policy: PolicyInput): Promise<void>
  deleteBucket(ref: BucketRef): Promise<void>
  /** Reads a bucket; writes nothing. */
  getBucket(ref: BucketRef, options?: { tier?: string }): Promise<BucketInfo>
  /** Assigns a tier to a key at a level (a string key means the first level); `null` removes it. */
  setTier(ref: BucketRef | string, tier: string | null): Promise<void>
  getTier(ref: BucketRef | string): Promise<string | undefined>
  /** Changes a tier's limits at runtime, for the levels given. Buckets keep their history. */
  updateLimits(tier: string, limits: TierLimits): Promise<void>
  /** Listens to every event; returns the unsubscribe function. */
  on(listener: LimiterListener): () => void
  /** The limiter's namespace in its store (`createLimiter({ name })`, default `'default'`). */
  readonly name: string
  readonly levels: readonly string[]
  readonly tierNames: readonly string[]
  /** Stops listening to the store and frees the name, so a new limiter may take it on that store. */
  close(): Promise<void>
}

export function parseCost(cost: unknown): number {
  if (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 0) {
    throw invalid(ErrorCode.InvalidCost, 'cost', cost, 'a whole number of tokens, 0 or more')
  }
  return cost
}

/** @deprecated the old name of parseCost. */
export const validateCost = parseCost
