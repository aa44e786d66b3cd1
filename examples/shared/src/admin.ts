import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { ErrorCode, type Limiter, normalizePolicy, TollgateError } from '@tollgate/core'
import { badRequest, type JsonResult, json, notFound, unauthorized } from './http.js'
import { ORG_FACTOR } from './limiter.js'
import { orgsView, tiersView } from './overview.js'
import { API_KEYS, PLAN_TIERS } from './tenants.js'

/** Reads the request body, called only once the caller is authorized. */
export type BodyReader = () => Promise<string | undefined>

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * The admin API: guarded by ADMIN_TOKEN (checked before any body is read), bad bodies answered with 400
 * problems that name the field.
 */
export function createAdmin(limiter: Limiter, adminToken: string) {
  const expected = digest(adminToken)
  /** 401 unless `Authorization: Bearer <ADMIN_TOKEN>`; compares equal-length digests in constant time. */
  function authorize(headers: IncomingHttpHeaders): JsonResult | undefined {
    const token = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1] ?? ''
    return timingSafeEqual(digest(token), expected)
      ? undefined
      : unauthorized('Admin routes need Authorization: Bearer <ADMIN_TOKEN>')
  }
  const knownOrgs = new Set(Object.values(API_KEYS).map((t) => t.org))

  async function parse(body: BodyReader): Promise<{ value: Record<string, unknown> } | JsonResult> {
    const text = await body()
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

  /**
   * Runs an admin operation: unauthorized → 401; the body failing validation (a TollgateError whose field is
   * in the body) → 400 naming the field. Any other error, a store timeout included, is the server's: 500.
   */
  async function run(
    headers: IncomingHttpHeaders,
    operation: () => Promise<JsonResult>,
  ): Promise<JsonResult> {
    const denied = authorize(headers)
    if (denied) return denied
    try {
      return await operation()
    } catch (error) {
      if (!(error instanceof TollgateError && /^body(\.|$)/.test(error.field ?? ''))) throw error
      const field = error.field!.replace(/^body\./, '')
      return badRequest(error.message.replace(/^body\./, ''), field, error.code)
    }
  }

  return {
    authorize,

    /** PUT /admin/orgs/:org/tier `{ "tier": "premium" }` */
    setOrgTier: (headers: IncomingHttpHeaders, org: string, body: BodyReader) =>
      run(headers, async () => {
        if (!knownOrgs.has(org)) return notFound(`No org ${JSON.stringify(org)}`)
        const parsed = await parse(body)
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
    updateTier: (headers: IncomingHttpHeaders, tier: string, body: BodyReader) =>
      run(headers, async () => {
        if (!(PLAN_TIERS as readonly string[]).includes(tier))
          return notFound(`No tier ${JSON.stringify(tier)}`)
        const parsed = await parse(body)
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

    /** GET /admin/tiers: every tier and its limits per level (the ops page's table). */
    listTiers: (headers: IncomingHttpHeaders) =>
      run(headers, async () => json(200, { levels: limiter.levels, tiers: await tiersView(limiter) })),

    /** GET /admin/orgs: every org, its tier, and its users' buckets per level (the ops page polls it). */
    listOrgs: (headers: IncomingHttpHeaders) =>
      run(headers, async () => json(200, { orgs: await orgsView(limiter) })),

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
