// @tollgate/core/http: what adapter authors need: the shared HTTP gate, headers and problem bodies.
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
export {
  type ClientInfo,
  createHttpGate,
  type HttpLimitOptions,
  type HttpOutcome,
  isClientError,
  UNEXPECTED_FORWARDED_FOR,
} from '../http.js'
export { ipKey } from '../identity.js'
export {
  invalidRequestProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  QUOTA_EXCEEDED_TYPE,
  REDUCED_CAPACITY_TYPE,
  refusalProblem,
} from '../problem.js'
