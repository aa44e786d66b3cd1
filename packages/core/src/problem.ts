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
  // Built field by field in the order the body is sent, with no spread objects: this runs on every refusal.
  const retryAfter = retryAfterSeconds(decision)
  let body: ProblemDetails
  if (decision.degraded === 'closed') {
    body = {
      type: REDUCED_CAPACITY_TYPE,
      title: 'Temporarily reduced capacity',
      status: 503,
      detail: 'The rate-limit store is unavailable; try again shortly.',
    }
    if (instance) body.instance = instance
  } else {
    const violated: string[] = []
    for (const level of decision.levels) if (!level.allowed) violated.push(level.level)
    const at = decision.binding ?? 'rate'
    if (decision.blocked) {
      // A repeat offender (createLimiter's `block`): the draft's problem type for it, and the block's end.
      body = {
        type: ABNORMAL_USAGE_TYPE,
        title: 'Abnormal usage detected',
        status: 429,
        detail: `Blocked at the ${at} level after repeated refusals; retry in ${retryAfter} s.`,
      }
    } else {
      const wait =
        retryAfter === undefined
          ? `a cost of ${decision.cost} is more than the ${decision.binding ?? 'limit'} level can ever admit`
          : `retry in ${retryAfter} s`
      body = {
        type: QUOTA_EXCEEDED_TYPE,
        title: 'Quota exceeded',
        status: 429,
        detail: `Too many requests at the ${at} level; ${wait}.`,
      }
    }
    if (instance) body.instance = instance
    body['violated-policies'] = violated
    if (decision.binding) body.binding = decision.binding
    if (decision.blocked) body.blocked = true
  }
  if (retryAfter !== undefined) body.retryAfter = retryAfter
  return body
}

let lastBody: ProblemDetails | undefined
let lastText = ''
/**
 * JSON.stringify(body), reusing the last text when the body has the same fields and values: under a flood
 * the refusals of one second are alike, and serialising the same body again is most of a refusal's cost.
 */
export function problemJson(body: ProblemDetails): string {
  if (lastBody !== undefined && sameFields(lastBody, body)) return lastText
  lastText = JSON.stringify(body)
  // A copy, so a caller changing its body afterwards cannot make the next match stale.
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(body)) {
    const value = body[key]
    copy[key] = Array.isArray(value) ? value.slice() : value
  }
  lastBody = copy as ProblemDetails
  return lastText
}

function sameFields(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  const keys = Object.keys(a)
  const others = Object.keys(b)
  if (keys.length !== others.length) return false
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (key !== others[i]) return false
    const x = a[key]
    const y = b[key]
    if (typeof x === 'object' && x !== null) {
      if (!(Array.isArray(x) && Array.isArray(y) && sameStrings(x, y))) return false
    } else if (x !== y) return false
  }
  return true
}

function sameStrings(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] || typeof a[i] !== 'string') return false
  return true
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
