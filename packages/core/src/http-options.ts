import ipaddr from 'ipaddr.js'
import type { Duration } from './duration.js'
import { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'
import { createLimiter, type Limiter } from './limiter.js'

/**
 * Options of the peers (express-rate-limit, @fastify/rate-limit, koa-ratelimit, rate-limiter-flexible) that
 * users type first, with what tollgate calls the same thing. An unknown option is an error; for these the
 * message says what to write instead.
 */
const peerEquivalents: Readonly<Record<string, string>> = {
  windowMs: "per (a duration: rateLimit({ limit: 100, per: '15m' }))",
  max: 'limit (with per)',
  timeWindow: "per (a duration such as '1m')",
  duration: "per (a duration such as '1m')",
  points: 'limit (with per)',
  keyGenerator: 'identify(req) => ({ subject }) or subject(req)',
  id: 'identify(req) => ({ subject }) or subject(req)',
  requestWasSuccessful: 'refundWhen(status, req) (true gives the token back)',
  standardHeaders: "headers ('ietf', 'draft-8', 'draft-7', 'draft-6' or false)",
  legacyHeaders: "headers: ['ietf', 'legacy'] (or 'legacy' alone)",
  enableDraftSpec: "headers: 'ietf'",
  addHeaders: 'headers (a format, a list of formats, or false)',
  addHeadersOnExceeding: 'headers (a format, a list of formats, or false)',
  disableHeader: 'headers: false',
  message: 'handler (answer the refusal yourself)',
  statusCode: 'handler (answer the refusal yourself)',
  errorResponseBuilder: 'handler (answer the refusal yourself)',
  errorMessage: 'handler (answer the refusal yourself)',
  throw: 'handler (answer the refusal yourself)',
  onExceeded: 'onRefused(req, decision)',
  onExceeding: 'onRefused(req, decision)',
  onLimitReached: 'onRefused(req, decision)',
  whitelist: 'allowList (keys, addresses and CIDR ranges) or skip(req) => boolean',
  blacklist: 'nothing built in: refuse those requests before the limit, or give them a tier of their own',
  allowlist: 'allowList',
  store: 'limiter: createLimiter({ store })',
  driver: 'limiter: createLimiter({ store: memoryStore() or redisStore({ client }) })',
  db: 'limiter: createLimiter({ store: redisStore({ client }) })',
  redis: 'limiter: createLimiter({ store: redisStore({ client }) })',
  storeClient: 'limiter: createLimiter({ store: redisStore({ client }) })',
  cache: 'limiter: createLimiter({ store: memoryStore({ maxKeys }) })',
  passOnStoreError: "limiter: createLimiter({ onStoreError: 'open' })",
  skipOnError: "limiter: createLimiter({ onStoreError: 'open' })",
  insuranceLimiter: "limiter: createLimiter({ onStoreError: 'local' })",
  nameSpace: 'limiter: createLimiter({ name })',
  keyPrefix: 'limiter: createLimiter({ name })',
  prefix: 'limiter: createLimiter({ name })',
  identifier: 'the level names of createLimiter({ levels }) (they name the policies in the headers)',
  execEvenly:
    "a leaky bucket in delay mode: createLimiter({ policy: { algorithm: 'leaky-bucket', mode: 'delay', ... } })",
  requestPropertyName: 'nothing: the decision is always req.rateLimit (ctx.state.rateLimit in Koa)',
  validate: 'nothing: tollgate always checks its options; warnings go to onWarning',
  ban: "limiter: createLimiter({ block: { after: 5, within: '1m', for: '15m' } }) (a 429 with Retry-After)",
  onBanReach: 'onRefused(req, decision): decision.blocked is true for a blocked client',
  blockDuration: "limiter: createLimiter({ block: { after: 1, for: '15m' } })",
  continueExceeding: 'none: a refused request charges nothing, and a token bucket has no window to extend',
  exponentialBackoff: 'none: Retry-After gives the exact wait',
  groupId: 'a limiter per group (the limiter option), or identify returning a subject per group',
  hook: 'none: Express and Koa run the middleware where it is mounted, Fastify at onRequest',
  global:
    'app.use(rateLimit(...)) in Express and Koa; global is an option of the @tollgate/fastify plugin only',
}

/** The options every adapter understands (each adapter adds its own, such as `handler`). */
export const HTTP_OPTION_NAMES = [
  'limiter',
  'limit',
  'per',
  'identify',
  'subject',
  'cost',
  'tier',
  'skip',
  'allowList',
  'skipFailedRequests',
  'skipSuccessfulRequests',
  'refundWhen',
  'onRefused',
  'headers',
  'ipv6Subnet',
  'onWarning',
] as const

/** Throws for an option no adapter knows, naming it and, for a peer's name, tollgate's equivalent. */
export function assertKnownOptions(options: object, adapterOptions: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if ((HTTP_OPTION_NAMES as readonly string[]).includes(name) || adapterOptions.includes(name)) continue
    const equivalent = Object.hasOwn(peerEquivalents, name) ? peerEquivalents[name] : undefined
    const known = [...HTTP_OPTION_NAMES, ...adapterOptions].join(', ')
    throw new TollgateError(
      ErrorCode.InvalidOption,
      equivalent
        ? `Unknown option ${name}: tollgate's equivalent is ${equivalent}.`
        : `Unknown option ${describeValue(name)}; the options are ${known}.`,
      { field: name, value: (options as Record<string, unknown>)[name] },
    )
  }
}

/**
 * The limiter the options ask for: `limiter` as given, or for the one-call setup `{ limit, per }` a limiter of
 * its own with one token bucket of `limit` tokens refilling `limit` per `per` (default '1m') on an
 * in-process store. Without either, a limiter with the default policy (5 tokens, 1 per second).
 */
export function limiterFromOptions(options: {
  limiter?: Limiter | undefined
  limit?: number | undefined
  per?: Duration | undefined
}): Limiter {
  const { limiter, limit, per } = options
  if (limiter !== undefined) {
    if (limit !== undefined || per !== undefined) {
      throw invalid(
        ErrorCode.InvalidOption,
        limit !== undefined ? 'limit' : 'per',
        limit ?? per,
        'left out when a limiter is given (the limiter has the policy)',
      )
    }
    if (typeof limiter !== 'object' || limiter === null || typeof limiter.check !== 'function')
      throw invalid(ErrorCode.InvalidOption, 'limiter', limiter, 'a limiter from createLimiter()')
    return limiter
  }
  if (limit === undefined) {
    if (per !== undefined) throw invalid(ErrorCode.InvalidOption, 'limit', limit, 'given with per')
    return createLimiter()
  }
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)
    throw invalid(ErrorCode.InvalidOption, 'limit', limit, 'a whole number of requests, 1 or more')
  // The policy validates `per` (a duration) and names the field.
  return createLimiter({ policy: { capacity: limit, refill: { tokens: limit, per: per ?? '1m' } } })
}

export interface LimiterSource {
  limiter?: Limiter | undefined
  limit?: number | undefined
  per?: Duration | undefined
}

/** A scope's options with its one-call `limit`/`per` made into one limiter, so every route under it shares it. */
export function withSharedLimiter<O extends LimiterSource>(options: O): O {
  if (options.limit === undefined && options.per === undefined) return options
  const { limit: _limit, per: _per, ...rest } = options
  return { ...rest, limiter: limiterFromOptions(options) } as O
}

/** A route's options over its scope's: a route's own `limiter` (or `limit`/`per`) replaces the scope's limiter. */
export function routeOverScope<O extends LimiterSource>(scope: O, route: O): O {
  if (route.limiter === undefined && route.limit === undefined && route.per === undefined)
    return { ...scope, ...route }
  const { limiter: _limiter, limit: _limit, per: _per, ...rest } = scope
  return { ...rest, ...route }
}

/** An allowList, parsed once: client addresses and CIDR ranges, and plain subject keys. */
export interface AllowList {
  /** True when the client address is listed or falls in a listed range. */
  address(ip: string | undefined): boolean
  /** True when a key of the subject is listed. */
  key(subject: unknown): boolean
  readonly empty: boolean
}

export function parseAllowList(option: unknown): AllowList {
  if (option !== undefined && !Array.isArray(option))
    throw invalid(ErrorCode.InvalidOption, 'allowList', option, 'an array of keys, addresses and CIDR ranges')
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = []
  const keys = new Set<string>()
  for (const [i, entry] of (option ?? []).entries()) {
    if (typeof entry !== 'string' || entry.length === 0)
      throw invalid(ErrorCode.InvalidOption, `allowList[${i}]`, entry, 'a non-empty string')
    if (entry.includes('/') && ipaddr.isValidCIDR(entry)) {
      const [address, bits] = ipaddr.parseCIDR(entry)
      ranges.push(
        address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
          ? [(address as ipaddr.IPv6).toIPv4Address(), Math.max(0, bits - 96)]
          : [address, bits],
      )
    } else if (ipaddr.isValid(entry)) {
      const address = ipaddr.process(entry)
      ranges.push([address, address.kind() === 'ipv4' ? 32 : 128])
    } else keys.add(entry)
  }
  const empty = ranges.length === 0 && keys.size === 0
  return {
    empty,
    address(ip) {
      if (ranges.length === 0 || ip === undefined) return false
      const text = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip
      if (!ipaddr.isValid(text)) return false
      const address = ipaddr.process(text) // IPv4-mapped IPv6 as IPv4
      return ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))
    },
    key(subject) {
      if (keys.size === 0) return false
      if (typeof subject === 'string') return keys.has(subject)
      if (typeof subject !== 'object' || subject === null) return false
      return Object.values(subject).some((key) => typeof key === 'string' && keys.has(key))
    },
  }
}
