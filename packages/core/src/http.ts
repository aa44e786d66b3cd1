import type { Decision } from './decision.js'
import { ErrorCode, invalid, TollgateError } from './errors.js'
import { type HeaderFormat, type HeaderPair, headerFormats, rateLimitHeaders } from './headers.js'
import { ipKey } from './identity.js'
import { type CheckOptions, createLimiter, type Limiter, type Subject, validateCost } from './limiter.js'
import { PROBLEM_CONTENT_TYPE, type ProblemDetails, refusalProblem } from './problem.js'

type MaybePromise<T> = T | Promise<T>

/** What every adapter accepts; `Req` is the framework's request (Express req, Koa ctx, Fastify request). */
export interface HttpLimitOptions<Req> {
  /** Default: a limiter on an in-process store with the default policy (5 tokens, 1 per second). */
  limiter?: Limiter
  /** The chain's keys for a request. Default: the client address (see ipKey). */
  subject?: (req: Req) => MaybePromise<Subject | undefined>
  /** Tokens this request costs. Default 1. */
  cost?: number | ((req: Req) => MaybePromise<number>)
  /** Forces a tier for this route or request. */
  tier?: string | ((req: Req) => MaybePromise<string | undefined>)
  /** Requests for which this returns true are not limited. */
  skip?: (req: Req) => MaybePromise<boolean>
  /** Header forms; default `'ietf'` (draft-11). `false` sends none (Retry-After still goes with refusals). */
  headers?: HeaderFormat | readonly HeaderFormat[] | false
  /** IPv6 prefix length for address keys; default 56. */
  ipv6Subnet?: number | false
  /** Called once with a misconfiguration warning (e.g. X-Forwarded-For while trust proxy is off). Default console.warn. */
  onWarning?: (warning: { code: string; message: string }) => void
}

/** What the adapter learned from the framework about the client. */
export interface ClientInfo {
  /** The address as the framework resolves it under its own trust-proxy setting. */
  readonly ip: string | undefined
  /** An X-Forwarded-For header came although the framework does not trust proxies. */
  readonly untrustedForwardedFor: boolean
}

/** The adapter's next move. */
export type HttpOutcome =
  | { readonly action: 'skip' }
  | {
      readonly action: 'pass'
      readonly decision: Decision
      readonly headers: HeaderPair[]
      readonly delayMs: number
    }
  | {
      readonly action: 'refuse'
      readonly decision: Decision
      readonly headers: HeaderPair[]
      readonly status: number
      readonly contentType: string
      readonly body: ProblemDetails
    }

export const UNEXPECTED_FORWARDED_FOR = 'ERR_TOLLGATE_UNEXPECTED_X_FORWARDED_FOR'

/**
 * The one shared request handler behind every adapter: request → subject, cost, tier → check → outcome.
 * Adapters only read the request and write the response.
 */
export function createHttpGate<Req>(
  options: HttpLimitOptions<Req> = {},
): (req: Req, client: ClientInfo) => Promise<HttpOutcome> {
  if (typeof options !== 'object' || options === null)
    throw invalid(ErrorCode.InvalidOption, 'options', options, 'an object')
  const limiter = options.limiter ?? createLimiter()
  const formats = headerFormats(options.headers)
  const ipv6Subnet = options.ipv6Subnet ?? 56
  ipKey('127.0.0.1', ipv6Subnet) // validates the option now, not on the first request
  const { cost, tier, skip, subject } = options
  if (typeof cost === 'number') validateCost(cost)
  else if (cost !== undefined && typeof cost !== 'function') {
    throw invalid(ErrorCode.InvalidOption, 'cost', cost, 'a whole number or a function of the request')
  }
  if (tier !== undefined && typeof tier !== 'string' && typeof tier !== 'function') {
    throw invalid(ErrorCode.InvalidOption, 'tier', tier, 'a tier name or a function of the request')
  }
  for (const [field, fn] of [
    ['subject', subject],
    ['skip', skip],
  ] as const) {
    if (fn !== undefined && typeof fn !== 'function')
      throw invalid(ErrorCode.InvalidOption, field, fn, 'a function of the request')
  }
  const warn = options.onWarning ?? ((w) => console.warn(`[tollgate] ${w.code}: ${w.message}`))
  let warnedForwardedFor = false

  return async (req, client) => {
    if (skip && (await skip(req))) return { action: 'skip' }
    if (client.untrustedForwardedFor && !warnedForwardedFor) {
      warnedForwardedFor = true
      warn({
        code: UNEXPECTED_FORWARDED_FOR,
        message:
          'An X-Forwarded-For header arrived but the framework does not trust proxies, so every client behind the proxy ' +
          'shares the proxy address. If the app is behind a proxy, enable trust proxy in the framework; the header is never trusted otherwise.',
      })
    }
    let key: Subject | undefined = subject ? await subject(req) : undefined
    if (key === undefined) key = client.ip ? ipKey(client.ip, ipv6Subnet) : 'unknown-client'
    const checkOptions: CheckOptions = { cost: typeof cost === 'function' ? await cost(req) : (cost ?? 1) }
    const routeTier = typeof tier === 'function' ? await tier(req) : tier
    if (routeTier !== undefined) checkOptions.tier = routeTier
    const decision = await limiter.check(key, checkOptions)
    const headers = rateLimitHeaders(decision, formats)
    if (decision.allowed) return { action: 'pass', decision, headers, delayMs: decision.delayMs }
    const body = refusalProblem(decision)
    return {
      action: 'refuse',
      decision,
      headers,
      status: body.status,
      contentType: PROBLEM_CONTENT_TYPE,
      body,
    }
  }
}

/** True for errors that mean "the request was bad" (a 4xx), not "the server failed". */
export function isClientError(error: unknown): error is TollgateError {
  return (
    error instanceof TollgateError &&
    (error.code === ErrorCode.InvalidCost ||
      error.code === ErrorCode.InvalidKey ||
      error.code === ErrorCode.InvalidSubject)
  )
}
