import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import {
  createLimiter,
  ErrorCode,
  type HttpLimitOptions,
  invalidRequestProblem,
  type Limiter,
  normalizePolicy,
  type PolicyInput,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  type Store,
  TollgateError,
} from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'

/** The demo tenants, by API key (`Authorization: Bearer <key>`). */
export const API_KEYS: Readonly<Record<string, { user: string; org: string }>> = {
  'free-alice': { user: 'alice', org: 'acme' },
  'free-dave': { user: 'dave', org: 'acme' },
  'premium-bob': { user: 'bob', org: 'globex' },
  'enterprise-carol': { user: 'carol', org: 'initech' },
}

/** Each org's plan when the API first starts (an org's tier is assigned at the org level: all its users follow). */
export const ORG_TIERS: Readonly<Record<string, PlanTier>> = {
  acme: 'free',
  globex: 'premium',
  initech: 'enterprise',
}

export const PLAN_TIERS = ['free', 'premium', 'enterprise'] as const
export type PlanTier = (typeof PLAN_TIERS)[number]
/** Requests with no API key (or an unknown one) are limited per client address under this tier. */
export const ANONYMOUS_TIER = 'anonymous'

const perSecond = (n: number): PolicyInput => ({ capacity: n, refill: { tokens: n, per: '1s' } })
/** The org level is always 5× the user level of the org's tier. */
const ORG_FACTOR = 5
const tierLimits = (userPerSecond: number) => ({
  user: perSecond(userPerSecond),
  org: perSecond(userPerSecond * ORG_FACTOR),
})

export const ROUTE_COST = { hello: 1, search: 5 } as const

export type Caller =
  | { kind: 'tenant'; user: string; org: string }
  | { kind: 'anonymous' }
  | { kind: 'unknown-key' }

/** Reads `Authorization: Bearer <key>`; any request shape with Node's headers will do. */
export function caller(headers: IncomingHttpHeaders): Caller {
  const authorization = headers.authorization
  if (!authorization) return { kind: 'anonymous' }
  const match = /^Bearer\s+(\S+)$/i.exec(authorization)
  const tenant = match ? API_KEYS[match[1]!] : undefined
  return tenant ? { kind: 'tenant', ...tenant } : { kind: 'unknown-key' }
}

export interface ExampleLimiter {
  limiter: Limiter
  /** Which store decides: `memory` or `redis`. */
  storeName: string
  close(): Promise<void>
}

/**
 * The limiter every example uses: chain user → org → global, tiers free / premium / enterprise (user level
 * 10 / 100 / 1000 per second, org level 5× that), a global 5000/s, and an anonymous tier of 5 at 1/s.
 * `REDIS_URL` set → a Redis store shared by every server, else an in-process memory store.
 */
export async function createExampleLimiter(env: NodeJS.ProcessEnv = process.env): Promise<ExampleLimiter> {
  const { store, storeName, closeStore } = await openStore(env.REDIS_URL)
  const limiter = createLimiter({
    store,
    levels: ['user', 'org', 'global'],
    tiers: {
      free: tierLimits(10),
      premium: tierLimits(100),
      enterprise: tierLimits(1000),
      [ANONYMOUS_TIER]: { user: { capacity: 5, refill: { tokens: 1, per: '1s' } } },
    },
    policies: { global: perSecond(5000) },
    defaultTier: 'free',
  })
  // With a shared store an earlier run (or another server) may have moved an org already: keep its choice.
  for (const [org, tier] of Object.entries(ORG_TIERS)) {
    const ref = { level: 'org', key: org }
    if ((await limiter.getTier(ref)) === undefined) await limiter.setTier(ref, tier)
  }
  return {
    limiter,
    storeName,
    async close() {
      await limiter.close()
      await closeStore()
    },
  }
}

async function openStore(
  redisUrl: string | undefined,
): Promise<{ store: Store; storeName: string; closeStore: () => Promise<void> }> {
  if (!redisUrl) return { store: memoryStore(), storeName: 'memory', closeStore: async () => {} }
  // Loaded only when asked for, so the memory-only path needs no Redis at all.
  const [{ Redis }, { redisStore }] = await Promise.all([import('ioredis'), import('@tollgate/redis')])
  // No offline queue: while Redis is away commands fail at once and the limiter's onStoreError decides.
  const client = new Redis(redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  })
  client.on('error', () => {}) // reported through the limiter's store-error events; reconnects by itself
  await client.connect()
  const store = redisStore({ client })
  return {
    store,
    storeName: 'redis',
    closeStore: async () => {
      await store.close?.()
      client.disconnect()
    },
  }
}

/** The adapter options of an API route: subject and tier from the API key, the route's cost. */
export function routeLimit(
  limiter: Limiter,
  cost: number,
): HttpLimitOptions<{ readonly headers: IncomingHttpHeaders }> {
  return {
    limiter,
    cost,
    // undefined → the adapter keys the request by client address (IPv6 by /56).
    subject: (req) => {
      const who = caller(req.headers)
      return who.kind === 'tenant' ? { user: who.user, org: who.org } : undefined
    },
    // Tenants get their org's assigned tier; everyone else the anonymous one.
    tier: (req) => (caller(req.headers).kind === 'tenant' ? undefined : ANONYMOUS_TIER),
  }
}

/** A response the framework glue sends as is. */
export interface JsonResult {
  status: number
  contentType: string
  body: unknown
}

const json = (status: number, body: unknown): JsonResult => ({
  status,
  contentType: 'application/json',
  body,
})
const problem = (body: ProblemDetails): JsonResult => ({
  status: body.status,
  contentType: PROBLEM_CONTENT_TYPE,
  body,
})

export const unauthorized = (detail: string): JsonResult =>
  problem({ type: 'about:blank', title: 'Unauthorized', status: 401, detail })
const notFound = (detail: string): JsonResult =>
  problem({ type: 'about:blank', title: 'Not Found', status: 404, detail })
const badRequest = (detail: string, field: string, code?: string): JsonResult =>
  problem(invalidRequestProblem(detail, field, code))

/** The answer of an API route, after the limit admitted it: 401 for an unknown key, else who called. */
export function apiReply(
  route: keyof typeof ROUTE_COST,
  headers: IncomingHttpHeaders,
  query?: string,
): JsonResult {
  const who = caller(headers)
  if (who.kind === 'unknown-key')
    return unauthorized('Unknown API key. Demo keys: ' + Object.keys(API_KEYS).join(', '))
  const base = { route, cost: ROUTE_COST[route], caller: who.kind === 'tenant' ? who.user : 'anonymous' }
  if (route === 'hello') return json(200, { ...base, message: `hello, ${base.caller}` })
  return json(200, { ...base, query: query ?? '', results: [] })
}

export const health = (): JsonResult => json(200, { status: 'ok' })

/** Reads a raw request body as text (for frameworks that have not parsed it), at most 64 KiB. */
export async function readBody(req: IncomingMessage, limit = 65_536): Promise<string> {
  let text = ''
  for await (const chunk of req) {
    text += chunk
    if (text.length > limit)
      throw new TollgateError(ErrorCode.InvalidOption, 'body is too large', { field: 'body' })
  }
  return text
}

/** The admin API: guarded by ADMIN_TOKEN, bad bodies answered with 400 problems that name the field. */
export function createAdmin(limiter: Limiter, adminToken: string) {
  function authorize(headers: IncomingHttpHeaders): JsonResult | undefined {
    return headers.authorization === `Bearer ${adminToken}`
      ? undefined
      : unauthorized('Admin routes need Authorization: Bearer <ADMIN_TOKEN>')
  }
  const knownOrgs = new Set(Object.values(API_KEYS).map((t) => t.org))

  function parse(text: string | undefined): { value: Record<string, unknown> } | JsonResult {
    try {
      const value: unknown = JSON.parse(text ?? '')
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        return { value: value as Record<string, unknown> }
      }
    } catch {
      // falls through to the 400 below
    }
    return badRequest('The body must be a JSON object', 'body')
  }

  /** Runs an admin operation: unauthorized → 401, TollgateError → 400 naming its field. */
  async function run(
    headers: IncomingHttpHeaders,
    operation: () => Promise<JsonResult>,
  ): Promise<JsonResult> {
    const denied = authorize(headers)
    if (denied) return denied
    try {
      return await operation()
    } catch (error) {
      if (!(error instanceof TollgateError)) throw error
      const field = error.field?.replace(/^body\./, '') ?? 'body'
      return badRequest(error.message.replace(/^body\./, ''), field, error.code)
    }
  }

  return {
    /** PUT /admin/orgs/:org/tier `{ "tier": "premium" }` */
    setOrgTier: (headers: IncomingHttpHeaders, org: string, text: string | undefined) =>
      run(headers, async () => {
        if (!knownOrgs.has(org)) return notFound(`No org ${JSON.stringify(org)}`)
        const parsed = parse(text)
        if (!('value' in parsed)) return parsed
        const tier = (parsed.value as { tier?: unknown }).tier
        if (typeof tier !== 'string' || !(PLAN_TIERS as readonly string[]).includes(tier)) {
          return badRequest(
            `tier must be one of ${PLAN_TIERS.join(', ')}; got ${JSON.stringify(tier) ?? 'nothing'}`,
            'tier',
            ErrorCode.UnknownTier,
          )
        }
        await limiter.setTier({ level: 'org', key: org }, tier)
        return json(200, { org, tier })
      }),

    /** PUT /admin/tiers/:tier `{ "capacity": 20, "refill": { "tokens": 20, "per": "1s" } }`: the user level; org follows at 5×. */
    updateTier: (headers: IncomingHttpHeaders, tier: string, text: string | undefined) =>
      run(headers, async () => {
        if (!(PLAN_TIERS as readonly string[]).includes(tier))
          return notFound(`No tier ${JSON.stringify(tier)}`)
        const parsed = parse(text)
        if (!('value' in parsed)) return parsed
        const user = normalizePolicy(parsed.value, 'body')
        const org = {
          ...parsed.value,
          capacity: user.capacity * ORG_FACTOR,
          refill: { tokens: user.tokens * ORG_FACTOR, per: user.per },
        }
        await limiter.updateLimits(tier, { user, org: normalizePolicy(org, 'body') })
        return json(200, { tier, user: parsed.value, org: { capacity: org.capacity, refill: org.refill } })
      }),

    /** GET /admin/orgs/:org: the org's tier and the current state of its bucket and its users' buckets. */
    getOrg: (headers: IncomingHttpHeaders, org: string) =>
      run(headers, async () => {
        if (!knownOrgs.has(org)) return notFound(`No org ${JSON.stringify(org)}`)
        const tier = await limiter.getTier({ level: 'org', key: org })
        const bucket = await limiter.getBucket({ level: 'org', key: org })
        const users = Object.values(API_KEYS).filter((t) => t.org === org)
        const userBuckets = await Promise.all(
          users.map((t) => limiter.getBucket({ level: 'user', key: t.user }, tier ? { tier } : undefined)),
        )
        return json(200, { org, tier, bucket, users: userBuckets })
      }),
  }
}

export type Admin = ReturnType<typeof createAdmin>

export interface ExampleConfig {
  port: number
  host: string
  adminToken: string
  /** True when the token was generated: print it at start. */
  generatedToken: boolean
}

/** PORT (default 3000), HOST (default 127.0.0.1, loopback), ADMIN_TOKEN (generated when unset). */
export function exampleConfig(env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TollgateError(ErrorCode.InvalidOption, `PORT must be a port number; got ${env.PORT}`, {
      field: 'PORT',
      value: env.PORT,
    })
  }
  const adminToken = env.ADMIN_TOKEN || randomBytes(18).toString('base64url')
  return { port, host: env.HOST || '127.0.0.1', adminToken, generatedToken: !env.ADMIN_TOKEN }
}

/** The start-up lines every example prints; the e2e tests wait for "listening on". */
export function announce(framework: string, config: ExampleConfig, url: string, storeName: string): void {
  console.log(`tollgate ${framework} example listening on ${url} (store: ${storeName})`)
  if (config.generatedToken) console.log(`ADMIN_TOKEN=${config.adminToken}`)
  console.log(`try: curl -i -H 'Authorization: Bearer free-alice' ${url}/api/hello`)
}

/** Stops cleanly on SIGINT / SIGTERM. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false
  const handler = () => {
    if (stopping) return
    stopping = true
    stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
}
