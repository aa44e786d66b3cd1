import {
  type BucketInfo,
  ErrorCode,
  type Limiter,
  normalizePolicy,
  type PolicyInput,
  TollgateError,
} from '@tollgate/core'
import { ORG_TIERS, PLAN_TIERS, usersOf } from './tenants.js'

/** A level's limit as the ops page shows it: the burst, and the refill per second. */
export interface LimitView {
  capacity: number
  perSecond: number
}

/** A bucket's state: what is left against its limit, and when it is full again. */
export interface BucketView {
  level: string
  remaining: number
  limit: number
  resetAfterMs: number
}

export interface TierView {
  name: string
  /** A plan an org can be moved to (the anonymous tier is not one). */
  plan: boolean
  /** Per level; a level the tier does not limit is absent. */
  limits: Record<string, LimitView>
}

export interface OrgView {
  org: string
  tier: string | undefined
  users: { user: string; buckets: BucketView[] }[]
}

/** A key no tenant has: reading its bucket under a forced tier gives that tier's policy at a level. */
const PROBE_KEY = '(tier limits)'

function limitView(input: PolicyInput): LimitView {
  const policy = normalizePolicy(input, 'policy')
  // Six significant digits: 1 token an hour stays readable (0.000277778), so does 1000/3 per second.
  return {
    capacity: policy.capacity,
    perSecond: Number(((policy.tokens * 1000) / policy.per).toPrecision(6)),
  }
}

const bucketView = (info: BucketInfo): BucketView => ({
  level: info.level,
  remaining: info.remaining,
  limit: info.limit,
  resetAfterMs: info.resetAfterMs,
})

/** Every tier with its limits per level, read from the limiter (so a change made elsewhere shows). */
export async function tiersView(limiter: Limiter): Promise<TierView[]> {
  return Promise.all(
    limiter.tierNames.map(async (name) => {
      const limits: Record<string, LimitView> = {}
      for (const level of limiter.levels) {
        const key = level === 'global' ? 'global' : PROBE_KEY
        try {
          limits[level] = limitView((await limiter.getBucket({ level, key }, { tier: name })).policy)
        } catch (error) {
          // No policy at that level under this tier (a limiter refuses such tiers, but a view stays safe).
          if (!(error instanceof TollgateError && error.code === ErrorCode.UnknownBucket)) throw error
        }
      }
      return { name, plan: (PLAN_TIERS as readonly string[]).includes(name), limits }
    }),
  )
}

/** Each org with its tier, and each of its users' buckets along the chain (user, org, global). */
export async function orgsView(limiter: Limiter): Promise<OrgView[]> {
  const global = bucketView(await limiter.getBucket({ level: 'global', key: 'global' }))
  return Promise.all(
    Object.keys(ORG_TIERS).map(async (org) => {
      const tier = await limiter.getTier({ level: 'org', key: org })
      const orgBucket = bucketView(await limiter.getBucket({ level: 'org', key: org }))
      const users = await Promise.all(
        usersOf(org).map(async (user) => {
          // The tier is assigned to the org: a user's bucket read alone needs it said.
          const info = await limiter.getBucket({ level: 'user', key: user }, tier ? { tier } : undefined)
          return { user, buckets: [bucketView(info), orgBucket, global] }
        }),
      )
      return { org, tier, users }
    }),
  )
}
