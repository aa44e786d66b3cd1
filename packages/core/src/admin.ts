import { describeValue, ErrorCode, TollgateError } from './errors.js'
import type { BucketInfo, BucketRef, Limiter } from './limiter.js'
import { type LimiterConfig, parseLevelIndex, parseTierLimits, unknownTier } from './options.js'
import { normalizePolicy, policyToInput } from './policy.js'
import type { Store } from './store.js'
import { parseKey } from './subject.js'
import type { TierBook } from './tiers.js'
import { latest } from './versions.js'

export type AdminMethods = Pick<
  Limiter,
  'createBucket' | 'updateBucket' | 'deleteBucket' | 'getBucket' | 'setTier' | 'getTier' | 'updateLimits'
>

export function bucketExists(level: string, key: string): TollgateError {
  return new TollgateError(
    ErrorCode.BucketExists,
    `bucket ${describeValue(key)} at level ${describeValue(level)} already exists`,
    { field: 'key', value: key },
  )
}

export function unknownBucket(level: string, key: string): TollgateError {
  return new TollgateError(
    ErrorCode.UnknownBucket,
    `no bucket ${describeValue(key)} at level ${describeValue(level)}`,
    { field: 'key', value: key },
  )
}

/**
 * Runtime administration. Every change is one registry write, stamped by the store's clock: it takes effect
 * at that moment for every bucket it governs, however late the bucket is next touched. Reads write nothing.
 */
export function adminMethods(config: LimiterConfig, store: Store, tierBook: TierBook): AdminMethods {
  const { levelNames, name } = config
  const parseRef = (ref: unknown): { level: string; index: number; key: string } => {
    if (typeof ref === 'string') return { level: levelNames[0]!, index: 0, key: parseKey(ref, 'key') }
    if (typeof ref !== 'object' || ref === null)
      throw new TollgateError(
        ErrorCode.InvalidKey,
        `ref must be an object { level, key }; got ${describeValue(ref)}`,
        {
          field: 'ref',
          value: ref,
        },
      )
    const { level, key } = ref as BucketRef
    const index = parseLevelIndex(levelNames, level, 'level')
    return { level, index, key: parseKey(key, 'key') }
  }
  const parseTier = (tier: unknown, field: string): string => {
    if (typeof tier !== 'string' || !config.tiers.has(tier))
      throw unknownTier(config.tiers.keys(), field, tier)
    return tier
  }

  return {
    async createBucket(ref, input) {
      const { level, key } = parseRef(ref)
      const policy = normalizePolicy(input, 'policy')
      if (!(await store.registry.write(name, 'bucket', level, key, policy.id, 'absent')))
        throw bucketExists(level, key)
    },
    async updateBucket(ref, input) {
      const { level, key } = parseRef(ref)
      const policy = normalizePolicy(input, 'policy')
      if (!(await store.registry.write(name, 'bucket', level, key, policy.id, 'present')))
        throw unknownBucket(level, key)
    },
    async deleteBucket(ref) {
      const { level, key } = parseRef(ref)
      if (!(await store.registry.write(name, 'bucket', level, key, null, 'present')))
        throw unknownBucket(level, key)
    },
    async getBucket(ref, options) {
      const { level, index, key } = parseRef(ref)
      const tier = options?.tier === undefined ? undefined : parseTier(options.tier, 'tier')
      if (tierBook.needsLoad) await tierBook.load()
      const keys: (string | undefined)[] = levelNames.map(() => undefined)
      keys[index] = key
      const result = await store.decide({ book: tierBook.current, keys, cost: 0, tier })
      const figures = result.levels[0]
      if (!figures) throw unknownBucket(level, key)
      const info: BucketInfo = {
        level,
        key,
        tier: result.tier,
        policy: policyToInput(figures.policy),
        custom: figures.custom,
        limit: figures.policy.capacity,
        remaining: figures.remaining,
        resetAfterMs: figures.resetAfterMs,
      }
      return info
    },
    async setTier(ref, tier) {
      const { level, key } = parseRef(ref)
      await store.registry.write(
        name,
        'assignment',
        level,
        key,
        tier === null ? null : parseTier(tier, 'tier'),
      )
    },
    async getTier(ref) {
      const { level, key } = parseRef(ref)
      return latest((await store.registry.read(name, level, key))?.assignment) ?? undefined
    },
    async updateLimits(tier, limits) {
      parseTier(tier, 'tier')
      const parsed = parseTierLimits(levelNames, tier, limits)
      if (parsed.size === 0)
        throw new TollgateError(ErrorCode.InvalidPolicy, 'limits must name at least one level → policy', {
          field: 'limits',
          value: limits,
        })
      // One registry entry per (tier, level): concurrent changes of different levels never overwrite each other.
      for (const [index, policy] of parsed)
        await store.registry.writeTier(name, tier, levelNames[index]!, policy.id)
      // A read already in flight began before the write: this process's next decision must see it.
      await tierBook.load(true)
    },
  }
}
