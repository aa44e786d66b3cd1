import type {
  DecideRequest,
  DecideResult,
  FleetMembership,
  RefundRequest,
  RegistryChange,
  Store,
} from '@tollgate/core/store'
import { type Chain, type Decided, type GroupReply, ScriptCalls, slotGroups, toResult } from './calls.js'
import { connection } from './connection.js'
import { Heartbeat, parseFleetOptions } from './heartbeat.js'
import { bucketKey, fleetKey, keyspaceOf, refusalKey } from './keys.js'
import { parseStoreOptions, type RedisStoreOptions } from './options.js'
import { LocalRefusals } from './refusals.js'
import { RedisRegistry } from './registry.js'

export type { RedisStoreOptions } from './options.js'

/** A Store in Redis; `ready()` resolves once the client is connected (bounded by timeoutMs). */
export type RedisStore = Store & {
  ready(): Promise<void>
  joinFleet(): FleetMembership
  /** Refusals held to answer locally now (at most the `localRefusals` option), and decisions so answered. */
  localRefusalStats(): { held: number; answered: number }
}

/**
 * A Store in Redis or Redis Cluster: one Lua script reads a chain's states and the tenants' registry
 * entries beside them, resolves every level's policy on Redis's clock and decides the chain atomically.
 * See the package README for the key layout, the Cluster error bound and failure behaviour.
 */
const resultOf = (decided: Decided) => decided.result

/** A chain in one slot reads no assignment ahead: one empty map for all of them, not one per decision. */
const sameSlot: ReadonlyMap<number, string | null> = new Map()

export function redisStore(options: RedisStoreOptions): RedisStore {
  const config = parseStoreOptions(options)
  const fleetTiming = parseFleetOptions(options)
  const { client, prefix, hashTag, clock } = config
  const link = connection(client, config.timeoutMs)
  const calls = new ScriptCalls(config, link)
  const keyOf = (ns: string, level: string, key: string) => bucketKey(prefix, ns, level, key, hashTag)

  /** The levels present (those with a key and, for a refund, a charge) and their Redis keys. */
  function locate(request: DecideRequest | RefundRequest, refunding: boolean) {
    const present: number[] = []
    const keys: string[] = []
    request.keys.forEach((key, i) => {
      if (key === undefined || (refunding && (request as RefundRequest).policyIds[i] === undefined)) return
      present.push(i)
      keys[i] = keyOf(request.book.namespace, request.book.levels[i]!, key)
    })
    const groups = client.isCluster ? slotGroups(keys, present) : [present]
    return { present, keys, groups }
  }

  // A chain in one slot (every chain on a single node) is one script call and one handler: no async frame.
  function decide(request: DecideRequest): Promise<Decided> {
    const { present, keys, groups } = locate(request, false)
    if (groups.length > 1) return decideOverSlots(request, present, keys, groups)
    return calls
      .group('d', request, { present, keys, external: sameSlot }, present)
      .then((reply) => toResult(request, [reply], reply.allowed))
  }

  async function decideOverSlots(
    request: DecideRequest,
    present: number[],
    keys: string[],
    groups: number[][],
  ): Promise<Decided> {
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

  const refusals = config.localRefusals > 0 ? new LocalRefusals(config.localRefusals, clock) : undefined
  const registry = new RedisRegistry(
    client,
    prefix,
    config.registryRefreshMs,
    keyOf,
    link.bounded,
    link.run,
    clock,
    refusals && ((change) => dropChanged(refusals, change)),
  )
  const heartbeat = new Heartbeat(fleetKey(prefix), link.bounded, link.run, fleetTiming)

  /** Local refusals first, then the script calls; a throw here is the caller's rejection (see decide). */
  function decideWithRefusals(request: DecideRequest): Promise<DecideResult> {
    if (request.keys.every((k) => k === undefined)) {
      return Promise.resolve({
        allowed: true,
        now: Math.floor(clock ? clock() : Date.now()),
        tier: request.tier,
        levels: [],
      })
    }
    // Each script call is bounded by the batcher (which also undoes a charge answered too late).
    if (!refusals) return decide(request).then(resultOf)
    const local = refusals.answer(request)
    if (local) return Promise.resolve(local)
    const ticket = refusals.ticket()
    return decide(request).then((decided) => {
      if (!decided.result.allowed) {
        refusals.refused(request, decided.result)
        refusals.remember(request, decided, ticket)
      } else if (request.cost > 0) refusals.charged(decided.result)
      return decided.result
    })
  }

  return {
    name: 'redis',
    keyspace: keyspaceOf(options.client, prefix),
    decide(request) {
      try {
        return decideWithRefusals(request)
      } catch (error) {
        return Promise.reject(error)
      }
    },
    answerNow: refusals && ((request) => refusals.answer(request)),
    async refund(request) {
      request.keys.forEach((key, i) => {
        if (key !== undefined && request.policyIds[i] !== undefined)
          refusals?.dropBucket(request.book.levels[i]!, key)
      })
      await refund(request)
    },
    async reset(namespace, level, key) {
      refusals?.dropBucket(level, key)
      const bucket = keyOf(namespace, level, key)
      return (await link.bounded(() => client.del(bucket, refusalKey(bucket)))) > 0
    },
    ready: () => link.bounded(async () => undefined),
    // Replies and timeouts need the event loop: decisions the open circuit answers at once give it a turn.
    pace: () => new Promise((resolve) => setImmediate(resolve)),
    localRefusalStats: () => ({ held: refusals?.size ?? 0, answered: refusals?.answered ?? 0 }),
    registry,
    joinFleet: () => heartbeat.join(),
    async close() {
      await Promise.all([registry.close(), heartbeat.close()])
    },
  }
}

/** A change to one tenant drops what was remembered of it; anything wider drops everything. */
function dropChanged(refusals: LocalRefusals, change: RegistryChange | undefined): void {
  if (change?.kind !== 'tier' && change?.level !== undefined && change.key !== undefined) {
    refusals.dropBucket(change.level, change.key)
  } else refusals.dropAll()
}
