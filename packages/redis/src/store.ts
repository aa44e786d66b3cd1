/// <reference path="./cluster-key-slot.d.ts" />
import {
  assessDebt,
  type Clock,
  type DecideRequest,
  type DecideResult,
  describeValue,
  ErrorCode,
  invalid,
  type LevelResult,
  type PolicyBook,
  policyFromId,
  type RefundRequest,
  type Store,
  settle,
  TollgateError,
} from '@tollgate/core/store'
import calculateSlot from 'cluster-key-slot'
import { Batcher, type Job } from './batch.js'
import { type RedisClient, storeClient } from './client.js'
import { escapeValue, unescapeValue } from './history.js'
import { bucketKey, entryKey, type HashTag, refusalKey } from './keys.js'
import { RedisRegistry } from './registry.js'
import { decisionScript, type Script } from './scripts.js'

export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster` created with `enableOfflineQueue: false`, or a node-redis client
   * (`createClient`) or cluster (`createCluster`) with `disableOfflineQueue: true`. The store never closes it.
   */
  client: RedisClient
  /** Prefix of every key and of the pub/sub channel. No `{` or `}`. Default `tollgate:`. */
  prefix?: string
  /** ms each store call may take before it fails with ERR_TOLLGATE_STORE_TIMEOUT. Default 50. */
  timeoutMs?: number
  /**
   * Redis Cluster only: buckets with equal tags share a hash slot, so a chain over them is one atomic
   * script. Default: every bucket its own tag (`level:key`). Example: `(level, key) => key.split('/')[0]`
   * for user keys written `org/user` and org keys written `org`.
   */
  hashTag?: HashTag
  /** ms between checks of the tier version counter (the safety net behind pub/sub). Default 1000. */
  registryRefreshMs?: number
  /**
   * ms Redis remembers each call's reply, so a call the client re-sends (a lost reply) is answered, not
   * applied twice, and a call that failed without an answer can be cancelled. Default 10000; 0 turns it off.
   */
  rememberCallsMs?: number
  /**
   * TESTS ONLY. Decisions normally take time from Redis (`TIME` inside the script), so app servers'
   * clocks never matter. With `clock`, the script receives `now` from this function instead, and keys
   * expire 10 minutes after the test clock says their bucket is full (real time does not follow it).
   */
  clock?: Clock
}

/** Keys written under a test clock outlive their computed expiry by this much (real time does not follow the test clock). */
const testClockSlackMs = 600_000

function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return invalid(ErrorCode.InvalidOption, field, value, expectation)
}

/** Anything Redis or the connection throws becomes ERR_TOLLGATE_STORE_UNAVAILABLE (the limiter's fallback trigger). */
function unavailable(error: unknown): TollgateError {
  if (error instanceof TollgateError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new TollgateError(ErrorCode.StoreUnavailable, `redis store unavailable: ${message}`, {
    cause: error,
  })
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/** Indexes grouped by hash slot, groups in order of first appearance. */
function slotGroups(keys: readonly string[], indexes: readonly number[]): number[][] {
  const bySlot = new Map<number, number[]>()
  for (const i of indexes) {
    const slot = calculateSlot(keys[i]!)
    const group = bySlot.get(slot)
    if (group) group.push(i)
    else bySlot.set(slot, [i])
  }
  return [...bySlot.values()]
}

interface GroupReply {
  now: number
  allowed: boolean
  tier: string | undefined
  /** Per level of the group: debt before the decision, policy id ('' none), custom. */
  levels: { index: number; debt: number; id: string; custom: boolean }[]
}

/**
 * A Store in Redis or Redis Cluster: one Lua script reads a chain's states and the tenants' registry
 * entries beside them, resolves every level's policy on Redis's clock and decides the chain atomically.
 * See the package README for the key layout, the Cluster error bound and failure behaviour.
 */
/** A Store in Redis; `ready()` resolves once the client is connected (bounded by timeoutMs). */
export type RedisStore = Store & { ready(): Promise<void> }

export function redisStore(options: RedisStoreOptions): RedisStore {
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  const client = storeClient(options.client)
  const prefix = options.prefix ?? 'tollgate:'
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw optionError('prefix', prefix, 'a string without { or } (hash tags are placed by the store)')
  }
  const timeoutMs = options.timeoutMs ?? 50
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw optionError('timeoutMs', timeoutMs, 'a finite number of ms above 0')
  }
  const checkMs = options.registryRefreshMs ?? 1000
  if (typeof checkMs !== 'number' || !Number.isFinite(checkMs) || checkMs <= 0) {
    throw optionError('registryRefreshMs', checkMs, 'a finite number of ms above 0')
  }
  const recordMs = options.rememberCallsMs ?? 10_000
  if (typeof recordMs !== 'number' || !Number.isInteger(recordMs) || recordMs < 0) {
    throw optionError('rememberCallsMs', recordMs, 'a whole number of ms, 0 or more')
  }
  const { clock, hashTag } = options
  if (clock !== undefined && typeof clock !== 'function') throw optionError('clock', clock, 'a function')
  if (hashTag !== undefined && typeof hashTag !== 'function')
    throw optionError('hashTag', hashTag, 'a function')
  const isCluster = client.isCluster
  const slack = clock ? testClockSlackMs : 0
  const nowArg = () => (clock ? String(Math.floor(clock())) : '')
  const keyOf = (level: string, key: string) => bucketKey(prefix, level, key, hashTag)

  // A client that never connected yet is waited for (bounded by the timeout): it is not a failing store.
  // One that lost its connection fails at once, so the fallback decides without waiting.
  let everReady = client.ready
  if (!everReady)
    client.nextReady().then(
      () => (everReady = true),
      () => undefined,
    )
  function connected(): Promise<void> | undefined {
    if (everReady || client.ready) return undefined
    if (client.ended) return Promise.reject(new Error('connection is closed'))
    return client.nextReady()
  }

  /** Bounds a call by timeoutMs (waiting for the connection included); a call failing after it is still caught. */
  function bounded<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new TollgateError(ErrorCode.StoreTimeout, `redis store did not answer within ${timeoutMs} ms`, {
            field: 'timeoutMs',
            value: timeoutMs,
          }),
        )
      }, timeoutMs)
      timer.unref?.()
      const waiting = connected()
      ;(waiting ? waiting.then(work) : work()).then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        (error) => {
          clearTimeout(timer)
          reject(unavailable(error))
        },
      )
    })
  }

  /** EVALSHA; on NOSCRIPT (restart, failover, a new book) EVAL once, which also loads it. No other retry. */
  async function run(
    s: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(s.sha, keys, args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return await client.eval(s.source, keys, args)
    }
  }

  // One compiled script per book; books change only when tier limits change at runtime.
  const scripts = new Map<number, Script>()
  function scriptFor(book: PolicyBook): Script {
    let s = scripts.get(book.version)
    if (!s) {
      s = decisionScript(book)
      if (scripts.size >= 8) scripts.delete(scripts.keys().next().value!)
      scripts.set(book.version, s)
      // Loaded ahead, so the first decision rarely pays for compiling it (NOSCRIPT → EVAL still covers it).
      if (client.ready && !isCluster) client.loadScript(s.source).catch(() => undefined)
    }
    return s
  }

  /** The chain's levels as the script reads them: book level number, and where its assignment comes from. */
  function chainArgs(
    present: readonly number[],
    local: ReadonlySet<number>,
    external: ReadonlyMap<number, string | null>,
  ): (string | number)[] {
    const args: (string | number)[] = [present.length]
    for (const i of present) args.push(i + 1, local.has(i) ? '' : `x${external.get(i) ?? ''}`)
    return args
  }

  const batchers = new Map<number, Batcher>()
  function batcherFor(key: string): Batcher {
    const slot = isCluster ? calculateSlot(key) : 0
    let batcher = batchers.get(slot)
    if (!batcher) {
      batcher = new Batcher({ send: run, timeoutMs, recordMs, nowArg, slack, connected })
      batchers.set(slot, batcher)
    }
    return batcher
  }

  function job(
    op: 'd' | 'p' | 'r',
    request: DecideRequest | RefundRequest,
    present: readonly number[],
    group: readonly number[],
    keys: readonly string[],
    external: ReadonlyMap<number, string | null>,
    charged: readonly string[] = [],
  ): Job {
    const scriptKeys: string[] = []
    const blocking = request.book.block?.levels
    for (const i of group) {
      scriptKeys.push(keys[i]!, entryKey(keys[i]!))
      if (blocking?.[i]) scriptKeys.push(refusalKey(keys[i]!))
    }
    const decidedAt = 'decidedAt' in request ? request.decidedAt : ''
    const forced = request.tier === undefined ? '' : escapeValue(request.tier)
    const args = [
      op,
      request.cost,
      forced,
      decidedAt,
      ...chainArgs(present, new Set(group), external),
      ...charged,
    ]
    return {
      script: scriptFor(request.book),
      keys: scriptKeys,
      args,
      charges: op === 'd' && request.cost > 0,
    }
  }

  async function runGroup(
    op: 'd' | 'p' | 'r',
    request: DecideRequest | RefundRequest,
    present: readonly number[],
    group: readonly number[],
    keys: readonly string[],
    external: ReadonlyMap<number, string | null>,
    charged: readonly string[] = [],
  ): Promise<GroupReply> {
    const decision = job(op, request, present, group, keys, external, charged)
    const submitted: Job =
      op === 'd' && request.cost > 0
        ? {
            ...decision,
            // A late answer to a decision the fallback answered: give back exactly what it charged.
            undo: (late) => {
              const ids = group.map((_, j) => String(late[4 + 3 * j]))
              const refund = { ...request, decidedAt: Number(late[0]), policyIds: [] }
              return job('r', refund, present, group, keys, external, ids)
            },
          }
        : decision
    let reply: Awaited<ReturnType<Batcher['submit']>>
    try {
      reply = await batcherFor(keys[group[0]!]!).submit(submitted)
    } catch (error) {
      throw unavailable(error)
    }
    if (reply === 'cancelled') throw new Error('the call was cancelled')
    if (op === 'r') return { now: 0, allowed: true, tier: undefined, levels: [] }
    if (reply.length !== 3 + 3 * group.length)
      throw new Error(`unexpected script reply ${describeValue(reply)}`)
    const levels = group.map((index, j) => ({
      index,
      debt: Number(reply[3 + 3 * j]),
      id: String(reply[4 + 3 * j]),
      custom: Number(reply[5 + 3 * j]) === 1,
    }))
    const tier = String(reply[2])
    return {
      now: Number(reply[0]),
      allowed: Number(reply[1]) === 1,
      tier: tier === '' ? undefined : unescapeValue(tier),
      levels,
    }
  }

  /** In a Cluster, a chain over several slots reads the assignments of every level first (they name the tier). */
  async function assignments(
    request: DecideRequest | RefundRequest,
    present: readonly number[],
    keys: readonly string[],
    groups: readonly number[][],
  ): Promise<Map<number, string | null>> {
    const external = new Map<number, string | null>()
    if (groups.length < 2 || request.book.tiers.size === 0 || request.tier !== undefined) return external
    const values = await bounded(() => Promise.all(present.map((i) => client.hget(entryKey(keys[i]!), 'a'))))
    for (const [n, i] of present.entries()) external.set(i, values[n] ?? null)
    return external
  }

  function toResult(request: DecideRequest, replies: GroupReply[], allowed: boolean): DecideResult {
    const first = replies[0]!
    const byIndex = new Map<number, GroupReply['levels'][number]>()
    for (const r of replies) for (const level of r.levels) byIndex.set(level.index, level)
    const levels: LevelResult[] = []
    const charge = allowed && request.cost > 0
    for (let i = 0; i < request.keys.length; i++) {
      const level = byIndex.get(i)
      if (!level || level.id === '') continue
      const policy = policyFromId(level.id)
      if (!policy) throw new Error(`unreadable policy id ${describeValue(level.id)}`)
      const assessment = assessDebt(policy, level.debt, first.now, request.cost)
      const {
        allowed: fits,
        remaining,
        resetAfterMs,
        retryAfterMs,
        delayMs,
        blocked,
      } = settle(assessment, charge).result
      levels.push({
        levelIndex: i,
        level: request.book.levels[i]!,
        key: request.keys[i]!,
        policy,
        limit: policy.capacity,
        custom: level.custom,
        allowed: fits,
        remaining,
        resetAfterMs,
        retryAfterMs,
        delayMs,
        ...(blocked && { blocked }),
      })
    }
    return { allowed, now: first.now, tier: first.tier, levels }
  }

  async function decide(request: DecideRequest): Promise<DecideResult> {
    const present: number[] = []
    const keys: string[] = []
    request.keys.forEach((key, i) => {
      if (key === undefined) return
      present.push(i)
      keys[i] = keyOf(request.book.levels[i]!, key)
    })
    const groups = isCluster ? slotGroups(keys, present) : [present]
    if (groups.length === 1) {
      const reply = await runGroup('d', request, present, present, keys, new Map())
      return toResult(request, [reply], reply.allowed)
    }
    const external = await assignments(request, present, keys, groups)
    // Slot group by slot group: a refusal stops charging; earlier groups get their charge back.
    const replies: GroupReply[] = []
    let refusedAt = -1
    for (let g = 0; g < groups.length && refusedAt < 0; g++) {
      const reply = await runGroup('d', request, present, groups[g]!, keys, external)
      replies.push(reply)
      if (!reply.allowed) refusedAt = g
    }
    if (refusedAt >= 0) {
      const decidedAt = replies[0]!.now
      await Promise.all([
        ...groups.slice(0, refusedAt).map((group, g) => {
          if (request.cost === 0) return undefined
          const ids = replies[g]!.levels.map((l) => l.id)
          return runGroup('r', { ...request, decidedAt, policyIds: [] }, present, group, keys, external, ids)
        }),
        ...groups.slice(refusedAt + 1).map(async (group) => {
          replies.push(await runGroup('p', request, present, group, keys, external))
        }),
      ])
    }
    return toResult(request, replies, refusedAt < 0)
  }

  async function refund(request: RefundRequest): Promise<void> {
    const present: number[] = []
    const keys: string[] = []
    request.keys.forEach((key, i) => {
      if (key === undefined || request.policyIds[i] === undefined) return
      present.push(i)
      keys[i] = keyOf(request.book.levels[i]!, key)
    })
    if (present.length === 0) return
    const groups = isCluster ? slotGroups(keys, present) : [present]
    const external = await assignments(request, present, keys, groups)
    await Promise.all(
      groups.map((group) =>
        runGroup(
          'r',
          request,
          present,
          group,
          keys,
          external,
          group.map((i) => request.policyIds[i]!),
        ),
      ),
    )
  }

  const registry = new RedisRegistry(client, prefix, checkMs, keyOf, bounded, run, clock)

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
      return (await bounded(() => client.del(bucket, refusalKey(bucket)))) > 0
    },
    ready: () => bounded(async () => undefined),
    registry,
    async close() {
      await registry.close()
    },
  }
}
