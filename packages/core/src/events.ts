import type { Decision } from './decision.js'

export type StoreErrorMode = 'open' | 'closed' | 'local'

/** Everything the limiter reports, through one typed hook (`onEvent` or `limiter.on`). */
export type LimiterEvent =
  | { readonly type: 'decision'; readonly decision: Decision }
  /** A store call failed or timed out; the decision was made by `mode` instead. */
  | { readonly type: 'store-error'; readonly error: unknown; readonly mode: StoreErrorMode }
  /** The first failure after healthy operation: decisions are now made by `mode`. */
  | { readonly type: 'degraded'; readonly mode: StoreErrorMode; readonly error: unknown }
  /** The store answered again after being degraded for `downMs` (by the limiter's clock). */
  | { readonly type: 'recovered'; readonly downMs: number }
  /** A registry change (tier, assignment, bucket) was seen; `id` undefined means a full reload. */
  | { readonly type: 'registry-change'; readonly kind?: string; readonly id?: string }

export type LimiterListener = (event: LimiterEvent) => void
