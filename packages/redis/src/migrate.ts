import { DEFAULT_LIMITER_NAME, normalizePolicy } from '@tollgate/core/store'
import { type RedisClient, storeClient } from './client.js'
import { type HashTag, legacyRegistryKeys } from './keys.js'
import { redisStore } from './store.js'

export interface MigrateOptions {
  client: RedisClient
  prefix?: string
  hashTag?: HashTag
}

export interface MigrateReport {
  readonly tiers: number
  readonly assignments: number
  readonly buckets: number
}

function split(id: string): [string, string] {
  const at = id.indexOf('\u0000')
  return [id.slice(0, at), id.slice(at + 1)]
}

/**
 * Moves a registry written by an earlier release (one hash per kind under `{registry}`) to the current
 * layout: tier changes to `{registry}:tiers`, each assignment and custom bucket beside its tenant's bucket.
 * Every entry takes effect as of the migration. Safe to run twice; run it with the store's prefix and hashTag.
 * Those releases had no limiter names: everything moves to the default limiter's (`default`).
 */
export async function migrateRegistry(options: MigrateOptions): Promise<MigrateReport> {
  const prefix = options.prefix ?? 'tollgate:'
  const store = redisStore({ client: options.client, prefix, hashTag: options.hashTag, timeoutMs: 10_000 })
  const [tierKey, assignmentKey, bucketKey] = legacyRegistryKeys(prefix) as [string, string, string]
  const client = storeClient(options.client)
  const [tiers, assignments, buckets] = await Promise.all([
    client.hgetall(tierKey),
    client.hgetall(assignmentKey),
    client.hgetall(bucketKey),
  ])
  for (const [id, json] of Object.entries(tiers)) {
    const [tier, level] = split(id)
    await store.registry.writeTier(DEFAULT_LIMITER_NAME, tier, level, normalizePolicy(JSON.parse(json)).id)
  }
  for (const [id, json] of Object.entries(assignments)) {
    const [level, key] = split(id)
    await store.registry.write(DEFAULT_LIMITER_NAME, 'assignment', level, key, JSON.parse(json) as string)
  }
  for (const [id, json] of Object.entries(buckets)) {
    const [level, key] = split(id)
    await store.registry.write(
      DEFAULT_LIMITER_NAME,
      'bucket',
      level,
      key,
      normalizePolicy(JSON.parse(json)).id,
    )
  }
  await client.del(tierKey, assignmentKey, bucketKey)
  await store.close?.()
  return {
    tiers: Object.keys(tiers).length,
    assignments: Object.keys(assignments).length,
    buckets: Object.keys(buckets).length,
  }
}
