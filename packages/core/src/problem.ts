import type { Decision } from './decision.js'
import { retryAfterSeconds } from './headers.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'
export const ABNORMAL_USAGE_TYPE = 'https://iana.org/assignments/http-problem-types#abnormal-usage-detected'
export const REDUCED_CAPACITY_TYPE =
  'https://iana.org/assignments/http-problem-types#temporary-reduced-capacity'

/** An RFC 9457 problem details object. */
export interface ProblemDetails {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  [extension: string]: unknown
}

/**
 * The body of a refusal: 429 quota-exceeded naming the levels that refused, or — when the store is down
 * and `onStoreError` is `closed` — 503 temporary-reduced-capacity. No internals (store errors) leak into it.
 */
export function refusalProblem(decision: Decision, instance?: string): ProblemDetails {
  const retryAfter = retryAfterSeconds(decision)
  if (decision.degraded === 'closed') {
    return {
      type: REDUCED_CAPACITY_TYPE,
      title: 'Temporarily reduced capacity',
      status: 503,
      detail: 'The rate-limit store is unavailable; try again shortly.',
      ...(instance ? { instance } : {}),
      ...(retryAfter !== undefined ? { retryAfter } : {}),
    }
  }
  const violated = decision.levels.filter((l) => !l.allowed).map((l) => l.level)
  if (decision.blocked) {
    // A repeat offender (createLimiter's `block`): the draft's problem type for it, and the block's end.
    return {
      type: ABNORMAL_USAGE_TYPE,
      title: 'Abnormal usage detected',
      status: 429,
      detail: `Blocked at the ${decision.binding ?? 'rate'} level after repeated refusals; retry in ${retryAfter} s.`,
      ...(instance ? { instance } : {}),
      'violated-policies': violated,
      ...(decision.binding ? { binding: decision.binding } : {}),
      blocked: true,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
    }
  }
  const wait =
    retryAfter === undefined
      ? `a cost of ${decision.cost} is more than the ${decision.binding ?? 'limit'} level can ever admit`
      : `retry in ${retryAfter} s`
  return {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Quota exceeded',
    status: 429,
    detail: `Too many requests at the ${decision.binding ?? 'rate'} level; ${wait}.`,
    ...(instance ? { instance } : {}),
    'violated-policies': violated,
    ...(decision.binding ? { binding: decision.binding } : {}),
    ...(retryAfter !== undefined ? { retryAfter } : {}),
  }
}

/** A 400 problem for invalid input (admin bodies and the like) naming the field. */
export function invalidRequestProblem(detail: string, field?: string, code?: string): ProblemDetails {
  return {
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail,
    ...(field ? { field } : {}),
    ...(code ? { code } : {}),
  }
}
