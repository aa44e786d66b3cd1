// @tollgate/core/http: what adapter authors need (the shared HTTP gate, headers, problem bodies).

export type { Decision, LevelDecision } from '../decision.js'
export { ErrorCode, invalid, TollgateError } from '../errors.js'
export {
  HEADER_FORMATS,
  type HeaderFormat,
  type HeaderPair,
  headerFormats,
  rateLimitHeaders,
  retryAfterSeconds,
} from '../headers.js'
export { createHttpGate, isClientError, tierScopedKey } from '../http.js'
export {
  HTTP_OPTION_NAMES,
  type LimiterSource,
  limiterFromOptions,
  routeOverScope,
  withSharedLimiter,
} from '../http-options.js'
// Every type an adapter needs to name (options, the gate, its outcomes, warnings).
export * from '../http-types.js'
export { ipKey } from '../identity.js'
export type { Subject } from '../limiter.js'
export {
  ABNORMAL_USAGE_TYPE,
  invalidRequestProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  problemJson,
  QUOTA_EXCEEDED_TYPE,
  REDUCED_CAPACITY_TYPE,
  refusalProblem,
} from '../problem.js'
