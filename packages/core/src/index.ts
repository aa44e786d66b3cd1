export {
  assess,
  type BucketResult,
  type BucketState,
  convertDebt,
  decide,
  settle,
  stateTtlMs,
} from './algorithm.js'
export { type ChainEntry, type ChainOutcome, evaluateChain } from './chain.js'
export { type Decision, type LevelDecision, summarize } from './decision.js'
export { type Duration, parseDuration } from './duration.js'
export { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'
export type { LimiterEvent, LimiterListener, StoreErrorMode } from './events.js'
export {
  HEADER_FORMATS,
  type HeaderFormat,
  type HeaderPair,
  headerFormats,
  rateLimitHeaders,
  retryAfterSeconds,
} from './headers.js'
export {
  type ClientInfo,
  createHttpGate,
  type HttpLimitOptions,
  type HttpOutcome,
  isClientError,
  UNEXPECTED_FORWARDED_FOR,
} from './http.js'
export { ipKey } from './identity.js'
export {
  boundedMapCache,
  bucketId,
  type Clock,
  InProcessRegistry,
  InProcessStore,
  type InProcessStoreOptions,
  isExpired,
  monotonicClock,
  type StateCache,
} from './in-process.js'
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
export {
  type Algorithm,
  DEFAULT_POLICY_INPUT,
  isPolicy,
  type LeakyMode,
  MAX_CAPACITY,
  normalizePolicy,
  type Policy,
  type PolicyInput,
  policyToInput,
  ratePerSecond,
  windowSeconds,
} from './policy.js'
export {
  invalidRequestProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  QUOTA_EXCEEDED_TYPE,
  REDUCED_CAPACITY_TYPE,
  refusalProblem,
} from './problem.js'
export type { ConsumeOp, ConsumeResult, RegistryChange, RegistryKind, RegistryStore, Store } from './store.js'
