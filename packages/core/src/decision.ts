import type { BucketResult } from './algorithm.js'
import type { StoreErrorMode } from './events.js'
import type { Policy } from './policy.js'

/** One level's figures in a decision. */
export interface LevelDecision extends BucketResult {
  readonly level: string
  readonly key: string
  /** The level's capacity. */
  readonly limit: number
  readonly policy: Policy
  /** The policy is the tenant's own bucket (createBucket). */
  readonly custom?: boolean
}

export interface Decision {
  readonly allowed: boolean
  readonly cost: number
  readonly tier: string | undefined
  /** The level that refused (the one with the longest wait), or when allowed the one with least left. */
  readonly binding: string | undefined
  /** The binding level's remaining whole tokens. */
  readonly remaining: number
  /** The binding level's capacity. */
  readonly limit: number
  readonly resetAfterMs: number
  /** ms until the whole chain could admit this cost; 0 when allowed; Infinity when it never can. */
  readonly retryAfterMs: number
  /** leaky-bucket delay mode: hold the request this long before passing it on. */
  readonly delayMs: number
  /** Every level's figures, in chain order. */
  readonly levels: readonly LevelDecision[]
  /** The deciding store's clock (ms). */
  readonly now: number
  /**
   * Refused because a level's bucket is blocked (createLimiter's `block`: a repeat offender). The limiter
   * always sets it (false otherwise); optional so that Decisions built by hand (tests, fakes) need not.
   */
  readonly blocked?: boolean
  /** Set when the shared store failed and `onStoreError` decided instead. */
  readonly degraded?: StoreErrorMode
}

/** Builds a Decision from per-level figures: the binding level and the chain-wide waits. */
export function summarize(
  levels: readonly LevelDecision[],
  allowed: boolean,
  cost: number,
  tier: string | undefined,
  now: number,
  degraded?: StoreErrorMode,
): Decision {
  let binding: LevelDecision | undefined
  let retryAfterMs = 0
  let delayMs = 0
  let blocked = false
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level.blocked) blocked = true
    if (level.retryAfterMs > retryAfterMs) retryAfterMs = level.retryAfterMs
    if (level.delayMs > delayMs) delayMs = level.delayMs
    if (allowed) {
      if (!binding || level.remaining < binding.remaining) binding = level
    } else if (!level.allowed && (!binding || level.retryAfterMs > binding.retryAfterMs)) binding = level
  }
  return {
    allowed,
    cost,
    tier,
    binding: binding?.level,
    // With no level in force nothing limits the request: Infinity says so (headers then send nothing).
    remaining: binding ? binding.remaining : Number.POSITIVE_INFINITY,
    limit: binding ? binding.limit : Number.POSITIVE_INFINITY,
    resetAfterMs: binding ? binding.resetAfterMs : 0,
    retryAfterMs,
    delayMs: allowed ? delayMs : 0,
    levels,
    now,
    blocked: blocked && !allowed,
    degraded,
  }
}
