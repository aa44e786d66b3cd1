/// <reference path="./cluster-key-slot.d.ts" />
import {
  type Clock,
  type ConsumeOp,
  type ConsumeResult,
  describeValue,
  ErrorCode,
  invalid,
  type RegistryChange,
  type RegistryKind,
  type RegistryStore,
  type Store,
  settle,
  TollgateError,
} from '@tollgate/core'
import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import { bucketKey, type HashTag, registryChannel, registryKey } from './keys.js'
import {
  decideSource,
  refundSource,
  registryDeleteSource,
  registryPutSource,
  type Script,
  script,
} from './scripts.js'

export interface RedisStoreOptions {
  /** An ioredis `Redis` or `Cluster` created with `enableOfflineQueue: false`. The store never closes it. */
  client: Redis | Cluster
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
  /** ms between full registry refresh notifications (the safety net behind pub/sub). Default 5000. */
  registryRefreshMs?: number
  /**
   * TESTS ONLY. Decisions normally take time from Redis (`TIME` inside the script), so app servers'
   * clocks never matter. With `clock`, the script receives `now` from this function instead, and keys
   * expire 10 minutes after the test clock says their bucket is full (real time does not follow it).
   */
  clock?: Clock
}

/** Keys written under a test clock outlive their computed expiry by this much (real time does not follow the test clock). */
const testClockSlackMs = 600_000

const decideScript = script(decideSource)
const refundScript = script(refundSource)
const putScript = script(registryPutSource)
const deleteScript = script(registryDeleteSource)

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

function integers(reply: unknown, length: number): number[] {
  if (!Array.isArray(reply) || reply.length !== length || !reply.every((n) => typeof n === 'number')) {
    throw new Error(`unexpected script reply ${describeValue(reply)}`)
  }
  return reply as number[]
}

/** Indexes of the ops grouped by hash slot, groups in order of first appearance. */
function slotGroups(keys: readonly string[]): number[][] {
  const bySlot = new Map<number, number[]>()
  keys.forEach((key, i) => {
    const slot = calculateSlot(key)
    const group = bySlot.get(slot)
    if (group) group.push(i)
    else bySlot.set(slot, [i])
  })
  return [...bySlot.values()]
}

function policyArgs(op: ConsumeOp): string[] {
  return [String(op.cost), String(op.policy.capacity), String(op.policy.tokens), String(op.policy.per)]
}

/**
 * A Store in Redis or Redis Cluster: one Lua script decides a whole chain atomically on Redis's clock.
 * See the package README for the key layout, the Cluster error bound and failure behaviour.
 */
export function redisStore(options: RedisStoreOptions): Store {
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  const { client } = options
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
    throw optionError('client', client, 'an ioredis Redis or Cluster')
  }
  const offlineQueue = client.options?.enableOfflineQueue
  if (offlineQueue !== false) {
    throw new TollgateError(
      ErrorCode.InvalidOption,
      'client.options.enableOfflineQueue must be false: a queued decision replayed after an outage counts twice ' +
        'and waits forever meanwhile. Create the client with new Redis({ ..., enableOfflineQueue: false }) ' +
        '(or new Cluster(nodes, { enableOfflineQueue: false })).',
      { field: 'client.options.enableOfflineQueue', value: offlineQueue },
    )
  }
  const prefix = options.prefix ?? 'tollgate:'
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw optionError('prefix', prefix, 'a string without { or } (hash tags are placed by the store)')
  }
  const timeoutMs = options.timeoutMs ?? 50
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw optionError('timeoutMs', timeoutMs, 'a finite number of ms above 0')
  }
  const refreshMs = options.registryRefreshMs ?? 5000
  if (typeof refreshMs !== 'number' || !Number.isFinite(refreshMs) || refreshMs <= 0) {
    throw optionError('registryRefreshMs', refreshMs, 'a finite number of ms above 0')
  }
  const { clock, hashTag } = options
  if (clock !== undefined && typeof clock !== 'function') throw optionError('clock', clock, 'a function')
  if (hashTag !== undefined && typeof hashTag !== 'function')
    throw optionError('hashTag', hashTag, 'a function')
  const isCluster = (client as { isCluster?: boolean }).isCluster === true
  const slack = String(clock ? testClockSlackMs : 0)
  const nowArg = () => (clock ? String(Math.floor(clock())) : '')

  /** Bounds a call by timeoutMs; a call that fails after its timeout is still caught. */
  function bounded<T>(work: Promise<T>): Promise<T> {
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
      work.then(
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

  /** EVALSHA; on NOSCRIPT (restart, failover) EVAL once, which also loads it. No other error is retried. */
  async function run(s: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await client.evalsha(s.sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return await client.eval(s.source, keys.length, ...keys, ...args)
    }
  }

  async function decideGroup(
    ops: readonly ConsumeOp[],
    keys: readonly string[],
    group: readonly number[],
    mode: 'charge' | 'assess',
    debts: number[],
  ): Promise<{ now: number; allowed: boolean }> {
    const reply = integers(
      await run(
        decideScript,
        group.map((i) => keys[i]!),
        [nowArg(), mode, slack, ...group.flatMap((i) => policyArgs(ops[i]!))],
      ),
      2 + group.length,
    )
    group.forEach((i, j) => {
      debts[i] = reply[2 + j]!
    })
    return { now: reply[0]!, allowed: reply[1] === 1 }
  }

  async function decide(ops: readonly ConsumeOp[]): Promise<ConsumeResult> {
    const keys = ops.map((op) => bucketKey(prefix, op.level, op.key, hashTag))
    const groups = isCluster ? slotGroups(keys) : [ops.map((_, i) => i)]
    const debts: number[] = []
    let now: number | undefined
    let refusedAt = -1
    // Slot group by slot group (one group on a single node): a refusal stops charging further groups.
    for (let g = 0; g < groups.length && refusedAt < 0; g++) {
      const outcome = await decideGroup(ops, keys, groups[g]!, 'charge', debts)
      now ??= outcome.now
      if (!outcome.allowed) refusedAt = g
    }
    if (refusedAt >= 0 && groups.length > 1) {
      // Earlier groups were charged: give it back. Later groups are only looked at, for their figures.
      await Promise.all([
        ...groups.slice(0, refusedAt).map(async (group) => {
          const charged = group.filter((i) => ops[i]!.cost > 0)
          if (charged.length === 0) return
          await run(
            refundScript,
            charged.map((i) => keys[i]!),
            [nowArg(), slack, ...charged.flatMap((i) => policyArgs(ops[i]!))],
          )
        }),
        ...groups.slice(refusedAt + 1).map((group) => decideGroup(ops, keys, group, 'assess', debts)),
      ])
    }
    const allowed = refusedAt < 0
    const at = now!
    const results = ops.map((op, i) => {
      const { policy, cost } = op
      const T = policy.tokens === 0 ? 1 : policy.per
      const debt = debts[i]!
      const fits = debt + (cost === 0 ? T : cost * T) <= policy.capacity * T
      const assessment = { policy, cost, fits, debt, origin: at, converted: false }
      return settle(assessment, allowed && cost > 0).result
    })
    return { allowed, now: at, results }
  }

  const registry = new RedisRegistry(client, prefix, refreshMs, bounded, run)

  return {
    name: 'redis',
    async consume(ops) {
      if (ops.length === 0)
        return { allowed: true, now: Math.floor(clock ? clock() : Date.now()), results: [] }
      return bounded(decide(ops))
    },
    async reset(level, key) {
      return (await bounded(client.del(bucketKey(prefix, level, key, hashTag)))) > 0
    },
    registry,
    async close() {
      await registry.close()
    },
  }
}

type Bounded = <T>(work: Promise<T>) => Promise<T>
type Run = (s: Script, keys: readonly string[], args: readonly string[]) => Promise<unknown>

/**
 * Tiers, assignments and custom buckets in one Redis hash per kind (all under the `{registry}` tag).
 * Writes publish on `<prefix>registry`; a duplicated connection listens, and a periodic "reload
 * everything" notification covers messages missed while it was disconnected.
 */
class RedisRegistry implements RegistryStore {
  private readonly listeners = new Set<(change?: RegistryChange) => void>()
  private subscriber: Redis | Cluster | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly channel: string

  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
    private readonly refreshMs: number,
    private readonly bounded: Bounded,
    private readonly run: Run,
  ) {
    this.channel = registryChannel(prefix)
  }

  async getMany(kind: RegistryKind, ids: readonly string[]): Promise<(string | undefined)[]> {
    if (ids.length === 0) return []
    const values = await this.bounded(this.client.hmget(registryKey(this.prefix, kind), ...ids))
    return values.map((value) => value ?? undefined)
  }

  async list(kind: RegistryKind): Promise<[string, string][]> {
    return Object.entries(await this.bounded(this.client.hgetall(registryKey(this.prefix, kind))))
  }

  async put(
    kind: RegistryKind,
    id: string,
    value: string,
    condition?: 'absent' | 'present',
  ): Promise<boolean> {
    const message = JSON.stringify({ kind, id })
    const reply = await this.bounded(
      this.run(
        putScript,
        [registryKey(this.prefix, kind)],
        [id, value, condition ?? '', this.channel, message],
      ),
    )
    return reply === 1
  }

  async delete(kind: RegistryKind, id: string): Promise<boolean> {
    const message = JSON.stringify({ kind, id })
    const reply = await this.bounded(
      this.run(deleteScript, [registryKey(this.prefix, kind)], [id, this.channel, message]),
    )
    return reply === 1
  }

  subscribe(listener: (change?: RegistryChange) => void): () => void {
    this.listeners.add(listener)
    this.start()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) void this.stop()
    }
  }

  async close(): Promise<void> {
    this.listeners.clear()
    await this.stop()
  }

  private notify(change?: RegistryChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change)
      } catch {
        // One failing listener must not starve the others.
      }
    }
  }

  private start(): void {
    if (this.subscriber) return
    // The subscriber may queue: SUBSCRIBE replayed after a reconnect is harmless, unlike a decision.
    const subscriber = this.client.isCluster
      ? (this.client as Cluster).duplicate([], { enableOfflineQueue: true })
      : (this.client as Redis).duplicate({ enableOfflineQueue: true })
    this.subscriber = subscriber
    let readyBefore = false
    subscriber.on('error', () => {
      // Outages are reported by the decision path; the periodic refresh covers what was missed.
    })
    subscriber.on('ready', () => {
      // After a reconnect, changes may have been published while nobody listened.
      if (readyBefore) this.notify()
      readyBefore = true
    })
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return
      this.notify(parseChange(message))
    })
    subscriber.subscribe(this.channel).then(
      // Changes made before the subscription was active were not heard: reload once it is.
      () => this.notify(),
      () => {
        // Retried by ioredis on reconnect (autoResubscribe); the refresh timer covers the gap.
      },
    )
    this.timer = setInterval(() => this.notify(), this.refreshMs)
    this.timer.unref?.()
  }

  private async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    const subscriber = this.subscriber
    this.subscriber = undefined
    if (!subscriber) return
    try {
      await this.bounded(subscriber.quit())
    } catch {
      // Quit could not be sent in time: drop the connection instead.
    } finally {
      subscriber.disconnect()
    }
  }
}

const kinds: readonly string[] = ['tier', 'assignment', 'bucket']

/** A change message, or undefined ("reload everything") for anything this version cannot read. */
function parseChange(message: string): RegistryChange | undefined {
  try {
    const parsed = JSON.parse(message) as { kind?: unknown; id?: unknown }
    if (typeof parsed.id === 'string' && typeof parsed.kind === 'string' && kinds.includes(parsed.kind)) {
      return { kind: parsed.kind as RegistryKind, id: parsed.id }
    }
  } catch {
    // fall through
  }
  return undefined
}
