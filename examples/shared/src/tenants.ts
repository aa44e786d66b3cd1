import type { IncomingHttpHeaders } from 'node:http'

/** The demo tenants, by API key (`Authorization: Bearer <key>`). */
export const API_KEYS: Readonly<Record<string, { user: string; org: string }>> = {
  'free-alice': { user: 'alice', org: 'acme' },
  'free-dave': { user: 'dave', org: 'acme' },
  'premium-bob': { user: 'bob', org: 'globex' },
  'enterprise-carol': { user: 'carol', org: 'initech' },
}

export const PLAN_TIERS = ['free', 'premium', 'enterprise'] as const
export type PlanTier = (typeof PLAN_TIERS)[number]
/** Requests with no API key (or an unknown one) are limited per client address under this tier. */
export const ANONYMOUS_TIER = 'anonymous'

/** Each org's plan when the API first starts (an org's tier is assigned at the org level: all its users follow). */
export const ORG_TIERS: Readonly<Record<string, PlanTier>> = {
  acme: 'free',
  globex: 'premium',
  initech: 'enterprise',
}

export const isPlanTier = (tier: unknown): tier is PlanTier =>
  typeof tier === 'string' && (PLAN_TIERS as readonly string[]).includes(tier)

export const isKnownOrg = (org: string): boolean => Object.hasOwn(ORG_TIERS, org)

/** The users of an org, in API-key order. */
export const usersOf = (org: string): string[] =>
  Object.values(API_KEYS)
    .filter((tenant) => tenant.org === org)
    .map((tenant) => tenant.user)

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
  // Own keys only: `Bearer __proto__` must not find Object.prototype.
  const tenant = match && Object.hasOwn(API_KEYS, match[1]!) ? API_KEYS[match[1]!] : undefined
  return tenant ? { kind: 'tenant', ...tenant } : { kind: 'unknown-key' }
}
