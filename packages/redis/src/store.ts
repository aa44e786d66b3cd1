import type { DecideRequest, DecideResult, RefundRequest, Store } from '@tollgate/core/store'
import { type Chain, type GroupReply, ScriptCalls, slotGroups, toResult } from './calls.js'
import { connection } from './connection.js'
import { bucketKey, refusalKey } from './keys.js'
import { parseStoreOptions, type RedisStoreOptions } from './options.js'
import { RedisRegistry } from './registry.js'

export type { RedisStoreOptions } from './options.js'

/** A Store in Redis; `ready()` resolves once the client is connected (bounded by timeoutMs). */
export type RedisStore = Store & { ready(): Promise<void> }

/**
 * A Store in Redis or Redis Cluster: one Lua script reads a chain's states and the tenants' registry
 * entries beside them, resolves every level's policy on Redis's clock and decides the chain atomically.
 * See the package README for the key layout, the Cluster error bound and failure behaviour.
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const config = parseStoreOptions(options)
  const { client, prefix, hashTag, clock } = config
  const link = connection(client, config.timeoutMs)
  const calls = new ScriptCalls(config, link)
  const keyOf = (level: string, key: string) => bucketKey(prefix, level, key, hashTag)

  /** The levels present (those with a key and, for a refund, a charge) and their Redis keys. */
  function locate(request: DecideRequest | RefundRequest, refunding: boolean) {
    const present: number[] = []
    const keys: string[] = []
    request.keys.forEach((key, i) => {
      if (key === undefined || (refunding && (request as RefundRequest).policyIds[i] === undefined)) return
      present.push(i)
      keys[i] = keyOf(request.book.levels[i]!, key)
    })
    const groups = client.isCluster ? slotGroups(keys, present) : [present]
    return { present, keys, groups }
  }

  async function decide(request: DecideRequest): Promise<DecideResult> {
    const { present, keys, groups } = locate(request, false)
    if (groups.length === 1) {
      const reply = await calls.group('d', request, { present, keys, external: new Map() }, present)
      return toResult(request, [reply], reply.allowed)
    }
    const chain: Chain = { present, keys, external: await calls.assignments(request, present, keys, groups) }
    // Slot group by slot group: a refusal stops charging; earlier groups get their charge back.
    const replies: GroupReply[] = []
    let refusedAt = -1
    for (let g = 0; g < groups.length && refusedAt < 0; g++) {
      const reply = await calls.group('d', request, chain, groups[g]!)
      replies.push(reply)
      if (!reply.allowed) refusedAt = g
    }
    if (refusedAt >= 0) {
      const decidedAt = replies[0]!.now
      await Promise.all([
        ...groups.slice(0, refusedAt).map((group, g) => {
          if (request.cost === 0) return undefined
          const ids = replies[g]!.levels.map((l) => l.id)
          return calls.group('r', { ...request, decidedAt, policyIds: [] }, chain, group, ids)
        }),
        ...groups.slice(refusedAt + 1).map(async (group) => {
          replies.push(await calls.group('p', request, chain, group))
        }),
      ])
    }
    return toResult(request, replies, refusedAt < 0)
  }

  async function refund(request: RefundRequest): Promise<void> {
    const { present, keys, groups } = locate(request, true)
    if (present.length === 0) return
    const chain: Chain = { present, keys, external: await calls.assignments(request, present, keys, groups) }
    await Promise.all(
      groups.map((group) =>
        calls.group(
          'r',
          request,
          chain,
          group,
          group.map((i) => request.policyIds[i]!),
        ),
      ),
    )
  }

  const registry = new RedisRegistry(
    client,
    prefix,
    config.registryRefreshMs,
    keyOf,
    link.bounded,
    link.run,
    clock,
  )

  return {
    name: 'redis',
    async decide(request) {
      if (request.keys.every((k) => k === undefined)) {
        return {
          allowed: true,
          now: Math.floor(clock ? clock() : Date.now()),
          tier: request.tier,
          levels: [],
        }
      }
      // Each script call is bounded by the batcher (which also undoes a charge answered too late).
      return decide(request)
    },
    refund: (request) => refund(request),
    async reset(level, key) {
      const bucket = keyOf(level, key)
      return (await link.bounded(() => client.del(bucket, refusalKey(bucket)))) > 0
    },
    ready: () => link.bounded(async () => undefined),
    registry,
    async close() {
      await registry.close()
    },
  }
}
