// @tollgate/core: what an application uses. Store authors: '@tollgate/core/store'; adapter authors:
// '@tollgate/core/http' and '@tollgate/core/node'.
export type { BlockOption } from './block.js'
export type { Decision, LevelDecision } from './decision.js'
export type { Duration } from './duration.js'
export { ErrorCode, TollgateError } from './errors.js'
export type { LimiterEvent, LimiterListener, StoreErrorMode } from './events.js'
export { type HeaderFormat, type HeaderPair, rateLimitHeaders } from './headers.js'
export {
  type ClientInfo,
  createHttpGate,
  type HttpLimitOptions,
  type HttpOutcome,
  isClientError,
  UNEXPECTED_FORWARDED_FOR,
} from './http.js'
export { ipKey } from './identity.js'
export type { Clock } from './in-process.js'
export {
  type BucketInfo,
  type BucketRef,
  type CheckOptions,
  createLimiter,
  type LevelSpec,
  type Limiter,
  type LimiterOptions,
  type Subject,
  type TierLimits,
  validateCost,
} from './limiter.js'
export { normalizePolicy, type Policy, type PolicyInput } from './policy.js'
export { invalidRequestProblem, PROBLEM_CONTENT_TYPE, type ProblemDetails } from './problem.js'
export type { FleetMembership, Store } from './store.js'
