import { checkNowOf } from './create-limiter.js'
import type { Decision } from './decision.js'
import { ErrorCode, invalid, TollgateError } from './errors.js'
import { type HeaderPair, headerFormats, rateLimitHeaders } from './headers.js'
import { assertKnownOptions, limiterFromOptions, parseAllowList } from './http-options.js'
import {
  type ClientInfo,
  type HttpGate,
  type HttpGateContext,
  type HttpLimitOptions,
  type HttpOutcome,
  type HttpWarning,
  HttpWarningCode,
  type Identity,
  type MaybePromise,
  type RefuseOutcome,
  type SkipOutcome,
  UNEXPECTED_FORWARDED_FOR,
} from './http-types.js'
import { ipKey } from './identity.js'
import { type CheckOptions, type Limiter, parseCost, type Subject } from './limiter.js'
import { invalidRequestProblem, PROBLEM_CONTENT_TYPE, refusalProblem } from './problem.js'

// What the root entry shows of the gate; adapter authors get the rest from '@tollgate/core/http'.
export type { ClientInfo, HttpLimitOptions, HttpOutcome } from './http-types.js'
export { UNEXPECTED_FORWARDED_FOR }

/** What the gates have done on one request, kept on the framework's request object. */
interface RequestRecord {
  readonly limiters: Limiter[]
  headers: HeaderPair[]
}
const RECORD = Symbol('tollgate.request')
type Recorded = { [RECORD]?: RequestRecord }
const NO_HEADERS: HeaderPair[] = []
interface ResolvedIdentity {
  subject: Subject | undefined
  tier: string | undefined
  cost: number
}
const SKIP: SkipOutcome = Object.freeze({ action: 'skip' })
const mergeable = new Set(['ratelimit-policy', 'ratelimit'])

/** The key of a forced tier's bucket: its own namespace, so it never shares a bucket with another tier. */
export function tierScopedKey(tier: string, key: string): string {
  return `[${tier}]${key}`
}
function scopeSubject(subject: Subject, tier: string): Subject {
  if (typeof subject !== 'object' || subject === null) return tierScopedKey(tier, subject as string)
  const scoped: Record<string, string | undefined> = {}
  for (const [level, key] of Object.entries(subject))
    scoped[level] = typeof key === 'string' ? tierScopedKey(tier, key) : key
  return scoped
}

/** request → identify → check → outcome. Bad options throw now; bad input from a request is a 400 outcome. */
export function createHttpGate<Req>(
  options: HttpLimitOptions<Req> = {},
  context: HttpGateContext = {},
): HttpGate<Req> {
  if (typeof options !== 'object' || options === null)
    throw invalid(ErrorCode.InvalidOption, 'options', options, 'an object')
  assertKnownOptions(options, context.adapterOptions ?? [])
  const limiter = limiterFromOptions(options)
  const formats = headerFormats(options.headers)
  const namedForm = formats.includes('ietf') || formats.includes('draft-8')
  const ipv6Subnet = options.ipv6Subnet ?? 56
  ipKey('127.0.0.1', ipv6Subnet) // validates the option now, not on the first request
  const allow = parseAllowList(options.allowList)
  const { cost, tier, skip, subject, identify, onRefused, refundWhen } = options
  if (typeof cost === 'number') parseCost(cost)
  else if (cost !== undefined && typeof cost !== 'function') {
    throw invalid(ErrorCode.InvalidOption, 'cost', cost, 'a whole number or a function of the request')
  }
  if (tier !== undefined && typeof tier !== 'string' && typeof tier !== 'function') {
    throw invalid(ErrorCode.InvalidOption, 'tier', tier, 'a tier name or a function of the request')
  }
  const tiers = limiter.tierNames
  if (tier !== undefined && (typeof tier === 'function' ? tiers.length === 0 : !tiers.includes(tier))) {
    const known =
      tiers.length === 0 ? 'defines no tiers' : `has the tiers ${tiers.map((t) => `"${t}"`).join(', ')}`
    throw new TollgateError(
      ErrorCode.UnknownTier,
      `tier ${typeof tier === 'string' ? `"${tier}"` : '(a function)'} cannot work: the limiter ${known}`,
      { field: 'tier', value: tier },
    )
  }
  const functions = { subject, skip, identify, onRefused, refundWhen, onWarning: options.onWarning }
  for (const [field, fn] of Object.entries(functions)) {
    if (fn !== undefined && typeof fn !== 'function')
      throw invalid(ErrorCode.InvalidOption, field, fn, 'a function')
  }
  if (identify && subject)
    throw invalid(
      ErrorCode.InvalidOption,
      'subject',
      subject,
      'left out when identify is given (it returns the subject)',
    )
  const skipFailed = booleanOption(options, 'skipFailedRequests')
  const skipSuccessful = booleanOption(options, 'skipSuccessfulRequests')
  const refunds = skipFailed || skipSuccessful || refundWhen !== undefined

  const userWarn = options.onWarning ?? ((w) => console.warn(`[tollgate] ${w.code}: ${w.message}`))
  const warn = (warning: HttpWarning) => {
    try {
      userWarn(warning)
    } catch {
      // A failing warning sink must not change a response.
    }
  }
  const warned = new Set<string>()
  const warnOnce = (code: string, message: string) => {
    if (warned.has(code)) return
    warned.add(code)
    warn({ code, message })
  }
  const hookFailed = (hook: string) => (error: unknown) =>
    warn({ code: HttpWarningCode.HookFailed, message: `${hook} threw; the response is unchanged`, error })
  // Runs in a response's 'finish' handler: nothing may throw out of it.
  const refund = (decision: Decision) => {
    Promise.resolve()
      .then(() => limiter.refund(decision))
      .catch((error: unknown) =>
        warn({
          code: HttpWarningCode.RefundFailed,
          message: 'limiter.refund failed; the token stays spent',
          error,
        }),
      )
  }
  const shouldRefund = (status: number | undefined, req: Req): boolean => {
    if (status === undefined) return skipFailed
    if (skipFailed && status >= 400) return true
    if (skipSuccessful && status < 400) return true
    if (!refundWhen) return false
    try {
      return refundWhen(status, req) === true
    } catch (error) {
      hookFailed('refundWhen')(error)
      return false
    }
  }

  // Without functions to call, the identity is the same every time: nothing to build per request for it.
  const fixedIdentity =
    identify || subject || typeof tier === 'function' || typeof cost === 'function'
      ? undefined
      : ({ subject: undefined, tier, cost: cost ?? 1 } as ResolvedIdentity)
  const fixedCheckOptions: CheckOptions | undefined =
    fixedIdentity &&
    (fixedIdentity.tier === undefined
      ? { cost: fixedIdentity.cost }
      : { cost: fixedIdentity.cost, tier: fixedIdentity.tier })
  // Each step waits only when a function returned a Promise: sync options keep the request on one tick.
  function identifyRequest(req: Req): MaybePromise<ResolvedIdentity> {
    const id = identify ? identify(req) : undefined
    return isThenable(id) ? id.then((found) => withIdentity(req, found)) : withIdentity(req, id)
  }
  function withIdentity(req: Req, id: Identity | undefined): MaybePromise<ResolvedIdentity> {
    if (id !== undefined && (typeof id !== 'object' || id === null))
      throw invalid(
        ErrorCode.InvalidSubject,
        'identify',
        id,
        'an object { subject, tier?, cost? } or undefined',
      )
    const found = id ? id.subject : subject ? subject(req) : undefined
    return isThenable(found) ? found.then((s) => withSubject(req, id, s)) : withSubject(req, id, found)
  }
  function withSubject(
    req: Req,
    id: Identity | undefined,
    found: Subject | undefined,
  ): MaybePromise<ResolvedIdentity> {
    const named = id?.tier ?? (typeof tier === 'function' ? tier(req) : tier)
    return isThenable(named)
      ? named.then((t) => withTier(req, id, found, t))
      : withTier(req, id, found, named)
  }
  function withTier(
    req: Req,
    id: Identity | undefined,
    found: Subject | undefined,
    named: string | undefined,
  ): MaybePromise<ResolvedIdentity> {
    const tokens = id?.cost ?? (typeof cost === 'function' ? cost(req) : (cost ?? 1))
    return isThenable(tokens)
      ? tokens.then((c): ResolvedIdentity => ({ subject: found, tier: named, cost: c }))
      : { subject: found, tier: named, cost: tokens }
  }

  /** Headers after any earlier gate's on this request: IETF lists joined, Retry-After the longest wait. */
  function mergeHeaders(record: RequestRecord, mine: HeaderPair[]): HeaderPair[] {
    const earlier = record.headers
    if (earlier.length === 0) {
      record.headers = mine
      return mine
    }
    const merged = new Map(earlier.map(([name, value]) => [name.toLowerCase(), [name, value] as HeaderPair]))
    for (const [name, value] of mine) {
      const lower = name.toLowerCase()
      const before = merged.get(lower)
      if (!before) merged.set(lower, [name, value])
      else if (lower === 'retry-after')
        merged.set(lower, [name, String(Math.max(Number(before[1]), Number(value)))])
      else if (namedForm && mergeable.has(lower) && before[1].startsWith('"'))
        merged.set(lower, [name, `${before[1]}, ${value}`])
      else {
        warnOnce(
          HttpWarningCode.HeadersReplaced,
          `a second limiter on this request replaced the ${name} header; use the 'ietf' form on both to send both`,
        )
        merged.set(lower, [name, value])
      }
    }
    record.headers = [...merged.values()]
    return record.headers
  }

  const checkNow = checkNowOf(limiter)
  const invalidRequest = (error: unknown): RefuseOutcome => {
    if (!isClientError(error)) throw error
    return {
      action: 'refuse',
      decision: undefined,
      headers: [],
      status: 400,
      contentType: PROBLEM_CONTENT_TYPE,
      body: invalidRequestProblem(error.message, error.field, error.code),
    }
  }

  function checkRequest(req: Req, client: ClientInfo, id: ResolvedIdentity): MaybePromise<HttpOutcome> {
    let key = id.subject ?? (client.ip ? ipKey(client.ip, ipv6Subnet) : 'unknown-client')
    if (!allow.empty && allow.key(key)) return SKIP
    let record = (req as Recorded)[RECORD]
    if (record) record.limiters.push(limiter)
    else (req as Recorded)[RECORD] = record = { limiters: [limiter], headers: NO_HEADERS }
    let checkOptions = fixedCheckOptions
    if (checkOptions === undefined) {
      checkOptions = { cost: id.cost }
      if (id.tier !== undefined) checkOptions.tier = id.tier
    }
    if (id.tier !== undefined) key = scopeSubject(key, id.tier)
    const decided = checkNow ? checkNow(key, checkOptions) : limiter.check(key, checkOptions)
    const done = record
    return isThenable(decided)
      ? decided.then((decision) => outcomeOf(req, done, decision), invalidRequest)
      : outcomeOf(req, done, decided)
  }

  function outcomeOf(req: Req, record: RequestRecord, decision: Decision): HttpOutcome {
    const headers = mergeHeaders(record, rateLimitHeaders(decision, formats))
    if (decision.allowed) {
      const abandon = decision.delayMs > 0 ? () => refund(decision) : undefined
      const settle = refunds
        ? (status: number | undefined) => shouldRefund(status, req) && refund(decision)
        : undefined
      return { action: 'pass', decision, headers, delayMs: decision.delayMs, settle, abandon }
    }
    if (onRefused) {
      try {
        Promise.resolve(onRefused(req, decision)).catch(hookFailed('onRefused'))
      } catch (error) {
        hookFailed('onRefused')(error)
      }
    }
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

  function afterSkip(req: Req, client: ClientInfo): MaybePromise<HttpOutcome> {
    if (client.untrustedForwardedFor) {
      warnOnce(
        UNEXPECTED_FORWARDED_FOR,
        'An X-Forwarded-For header arrived but the framework does not trust proxies, so every client behind the proxy ' +
          'shares the proxy address. If the app is behind a proxy, enable trust proxy in the framework; the header is never trusted otherwise.',
      )
    }
    if (!allow.empty && allow.address(client.ip)) return SKIP
    if ((req as Recorded)[RECORD]?.limiters.includes(limiter)) {
      warnOnce(
        HttpWarningCode.DoubleCount,
        'One limiter was used twice on one request (e.g. app.use and a route); the second use charged nothing. ' +
          'Give the route a limiter of its own, or set the cost in the first one.',
      )
      return SKIP
    }
    try {
      if (fixedIdentity) return checkRequest(req, client, fixedIdentity)
      const id = identifyRequest(req)
      return isThenable(id)
        ? id.then((found) => checkRequest(req, client, found)).catch(invalidRequest)
        : checkRequest(req, client, id)
    } catch (error) {
      return invalidRequest(error)
    }
  }

  // Returns the outcome itself when nothing had to wait (in-process store, sync options); a Promise otherwise.
  return (req, client) => {
    try {
      if (!skip) return afterSkip(req, client)
      const skipped = skip(req)
      if (!isThenable(skipped)) return skipped ? SKIP : afterSkip(req, client)
      return skipped.then((yes) => (yes ? SKIP : afterSkip(req, client)))
    } catch (error) {
      return Promise.reject(error)
    }
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  )
}

function booleanOption(options: object, field: string): boolean {
  const value = (options as Record<string, unknown>)[field]
  if (value !== undefined && typeof value !== 'boolean')
    throw invalid(ErrorCode.InvalidOption, field, value, 'true or false')
  return value === true
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
