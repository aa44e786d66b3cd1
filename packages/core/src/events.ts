import type { Decision } from './decision.js'

export type StoreErrorMode = 'open' | 'closed' | 'local'

/** Everything the limiter reports, through one typed hook (`onEvent` or `limiter.on`). */
export type LimiterEvent =
  /** `storeMs`: how long the decision took, store included (measured only while someone listens). */
  | { readonly type: 'decision'; readonly decision: Decision; readonly storeMs?: number }
  /** A store call failed or timed out; the decision was made by `mode` instead. */
  | { readonly type: 'store-error'; readonly error: unknown; readonly mode: StoreErrorMode }
  /** The first failure after healthy operation: decisions are now made by `mode`. */
  | { readonly type: 'degraded'; readonly mode: StoreErrorMode; readonly error: unknown }
  /** The store answered again after being degraded for `downMs` (by the limiter's clock). */
  | { readonly type: 'recovered'; readonly downMs: number }
  /** The circuit breaker in front of the store changed state (open: store calls skipped; half-open: one probe). */
  | { readonly type: 'breaker'; readonly state: 'open' | 'half-open' | 'closed' }
  /** A registry change (tier, assignment, bucket) was seen; `id` undefined means a full reload. */
  | { readonly type: 'registry-change'; readonly kind?: string; readonly id?: string }

export type LimiterListener = (event: LimiterEvent) => void
