import type { Decision } from './decision.js'
import type { Duration } from './duration.js'
import type { HeaderFormat, HeaderPair } from './headers.js'
import type { Limiter, Subject } from './limiter.js'
import type { ProblemDetails } from './problem.js'

export type MaybePromise<T> = T | Promise<T>

/** Who a request is, read once per request: the chain's keys, and optionally its tier and cost. */
export interface Identity {
  /** The chain's keys (`{ user, org }`) or one key. Default: the client address (see ipKey). */
  readonly subject?: Subject | undefined
  /** A tier for this request; it counts in buckets of its own (see `tier`). */
  readonly tier?: string | undefined
  /** Tokens this request costs. */
  readonly cost?: number | undefined
}

/** What every adapter accepts; `Req` is the framework's request (Express req, Koa ctx, Fastify request). */
export interface HttpLimitOptions<Req> {
  /** The limiter to ask. Default: one made from `limit`/`per`, else the default policy (5 tokens, 1 per second). */
  limiter?: Limiter
  /** One-call setup: a token bucket of `limit` requests refilling `limit` per `per`, with no createLimiter. */
  limit?: number
  /** The interval of `limit` (`'15m'`, `'1h'`, ms). Default `'1m'`. */
  per?: Duration
  /** Reads subject, tier and cost in one step (may be async, e.g. an API-key lookup); called once per request. */
  identify?: (req: Req) => MaybePromise<Identity | undefined>
  /** Shorthand for identify's `subject`. Default: the client address. */
  subject?: (req: Req) => MaybePromise<Subject | undefined>
  /** Shorthand for identify's `cost`. Default 1. */
  cost?: number | ((req: Req) => MaybePromise<number>)
  /**
   * Forces a tier for this route or request. A forced tier counts in buckets of its own (each key prefixed
   * `[tier]`), so a route's tier never rewrites a bucket other routes count on.
   */
  tier?: string | ((req: Req) => MaybePromise<string | undefined>)
  /** Requests for which this returns true are not limited. */
  skip?: (req: Req) => MaybePromise<boolean>
  /** Client addresses, CIDR ranges (`'10.0.0.0/8'`) and subject keys that are never limited. */
  allowList?: readonly string[]
  /** Give the token back when the response status is 400 or more, or the client left before it was sent. */
  skipFailedRequests?: boolean
  /** Give the token back when the response status is below 400. */
  skipSuccessfulRequests?: boolean
  /** Give the token back when this returns true for the status sent. */
  refundWhen?: (status: number, req: Req) => boolean
  /** Called with each refused request (logging, alerts). A hook that throws is reported; the response stays. */
  onRefused?: (req: Req, decision: Decision) => unknown
  /** Header forms; default `'ietf'` (draft-11). `false` sends none (Retry-After still goes with refusals). */
  headers?: HeaderFormat | readonly HeaderFormat[] | false
  /** IPv6 prefix length for address keys; default 56. */
  ipv6Subnet?: number | false
  /** Misconfiguration and hook failures (codes in `HttpWarningCode`). Default console.warn. */
  onWarning?: (warning: HttpWarning) => void
}

export interface HttpWarning {
  readonly code: string
  readonly message: string
  readonly error?: unknown
}

/** Stable codes of what the gate reports through `onWarning`. */
export const HttpWarningCode = {
  UnexpectedForwardedFor: 'ERR_TOLLGATE_UNEXPECTED_X_FORWARDED_FOR',
  /** One limiter used twice on one request: the second use charges nothing. */
  DoubleCount: 'ERR_TOLLGATE_DOUBLE_COUNT',
  /** A second limiter on a request wrote a header form that cannot be merged; the later value stands. */
  HeadersReplaced: 'ERR_TOLLGATE_HEADERS_REPLACED',
  /** onRefused or refundWhen threw. */
  HookFailed: 'ERR_TOLLGATE_HOOK_FAILED',
  /** limiter.refund failed; the token stays spent. */
  RefundFailed: 'ERR_TOLLGATE_REFUND_FAILED',
} as const

export const UNEXPECTED_FORWARDED_FOR = HttpWarningCode.UnexpectedForwardedFor

/** What the adapter learned from the framework about the client. */
export interface ClientInfo {
  /** The address as the framework resolves it under its own trust-proxy setting. */
  readonly ip: string | undefined
  /** An X-Forwarded-For header came although the framework does not trust proxies. */
  readonly untrustedForwardedFor: boolean
}

export interface SkipOutcome {
  readonly action: 'skip'
}
export interface PassOutcome {
  readonly action: 'pass'
  readonly decision: Decision
  readonly headers: HeaderPair[]
  /** Leaky bucket in delay mode: hold the request this long first. */
  readonly delayMs: number
  /** To call once the response is done with its status (undefined: the client left first); set when refunds may apply. */
  readonly settle: ((status: number | undefined) => void) | undefined
  /** Set when held (delayMs > 0): to call when the client leaves during the hold; its token is given back. */
  readonly abandon: (() => void) | undefined
}
export interface RefuseOutcome {
  readonly action: 'refuse'
  /** The refusal's decision; undefined for a 400 (bad cost, key or subject from the request). */
  readonly decision: Decision | undefined
  readonly headers: HeaderPair[]
  readonly status: number
  readonly contentType: string
  readonly body: ProblemDetails
}
/** The adapter's next move. */
export type HttpOutcome = SkipOutcome | PassOutcome | RefuseOutcome

/**
 * The shared request handler behind every adapter; adapters only read the request and write the response.
 * It returns the outcome itself when nothing had to wait (an in-process store, sync options), else a Promise.
 */
export type HttpGate<Req> = (req: Req, client: ClientInfo) => MaybePromise<HttpOutcome>

/** The adapter's own options, accepted beside the shared ones (e.g. `handler`). */
export interface HttpGateContext {
  readonly adapterOptions?: readonly string[]
}
