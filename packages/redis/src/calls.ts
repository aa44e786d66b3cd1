/// <reference path="./cluster-key-slot.d.ts" />
import {
  assessDebtInto,
  type DecideRequest,
  type DecideResult,
  describeValue,
  type LevelResult,
  newAssessment,
  newLevelResult,
  type PolicyBook,
  policyFromId,
  type RefundRequest,
  settleInto,
} from '@tollgate/core/store'
import calculateSlot from 'cluster-key-slot'
import { Batcher, type Job, type JobReply } from './batch.js'
import { type Connection, type Liveness, unavailable } from './connection.js'
import { escapeValue, unescapeValue } from './history.js'
import { entryKey, refusalKey } from './keys.js'
import type { StoreConfig } from './options.js'
import { decisionScript, type Script } from './scripts.js'

/** The script's operations: decide (charge), peek (look only), refund. */
export type Op = 'd' | 'p' | 'r'

/** One chain as the script calls see it: the levels present (book indexes) and each one's Redis key. */
export interface Chain {
  readonly present: readonly number[]
  /** Indexed by level: the bucket's key. */
  readonly keys: readonly string[]
  /** Cluster, cross-slot chains: each level's assignment read ahead (the script cannot read other slots). */
  readonly external: ReadonlyMap<number, string | null>
}

export interface GroupReply {
  now: number
  allowed: boolean
  tier: string | undefined
  /** Per level of the group: debt before the decision, policy id ('' none), custom. */
  levels: { index: number; debt: number; id: string; custom: boolean }[]
}

/** Indexes grouped by hash slot, groups in order of first appearance. */
export function slotGroups(keys: readonly string[], indexes: readonly number[]): number[][] {
  const bySlot = new Map<number, number[]>()
  for (const i of indexes) {
    const slot = calculateSlot(keys[i]!)
    const group = bySlot.get(slot)
    if (group) group.push(i)
    else bySlot.set(slot, [i])
  }
  return [...bySlot.values()]
}

/**
 * Appends the chain's levels as the script reads them to `args`: book level number, and where its assignment
 * comes from.
 */
function chainArgs(args: (string | number)[], chain: Chain, group: readonly number[]): (string | number)[] {
  args.push(chain.present.length)
  // A chain has few levels: includes() on the group is cheaper than a Set made per decision.
  for (const i of chain.present) args.push(i + 1, group.includes(i) ? '' : `x${chain.external.get(i) ?? ''}`)
  return args
}

/**
 * A decision the script reads from the one argument 'D': a charge of 1 under no forced tier, whose chain has
 * every level of the book and all of them in this call's slot (so none is read ahead from another slot).
 */
function isCommonDecision(op: Op, request: DecideRequest | RefundRequest, group: readonly number[]): boolean {
  return (
    op === 'd' &&
    request.cost === 1 &&
    request.tier === undefined &&
    group.length === request.book.levels.length
  )
}

/** Turns a chain's slot groups into batched script calls, one batcher per slot, one script per book. */
export class ScriptCalls {
  // One compiled script per book; books change only when tier limits change at runtime.
  private readonly scripts = new Map<number, Script>()
  private readonly batchers = new Map<number, Batcher>()
  /** Per node ('' on a single node): when it last answered. */
  private readonly liveness = new Map<string, Liveness>()

  constructor(
    private readonly config: StoreConfig,
    private readonly connection: Connection,
  ) {}

  private scriptFor(book: PolicyBook): Script {
    let s = this.scripts.get(book.version)
    if (!s) {
      s = decisionScript(book)
      if (this.scripts.size >= 8) this.scripts.delete(this.scripts.keys().next().value!)
      this.scripts.set(book.version, s)
      // Loaded ahead (on every master of a Cluster), so the first decisions rarely pay for compiling it.
      if (this.config.client.ready) this.connection.load(s).catch(() => undefined)
    }
    return s
  }

  private batcherFor(key: string): Batcher {
    const { client, timeoutMs, rememberCallsMs, clock, expirySlackMs } = this.config
    const slot = client.isCluster ? calculateSlot(key) : 0
    let batcher = this.batchers.get(slot)
    if (!batcher) {
      const node = client.isCluster ? client.nodeOf(slot) : ''
      let liveness = this.liveness.get(node)
      if (!liveness) {
        liveness = { answeredAt: 0 }
        this.liveness.set(node, liveness)
      }
      batcher = new Batcher({
        send: this.connection.run,
        timeoutMs,
        liveness,
        recordMs: rememberCallsMs,
        nowArg: () => (clock ? String(Math.floor(clock())) : ''),
        slack: expirySlackMs,
        connected: this.connection.connected,
        whenReady: this.connection.whenReady,
        readyNow: this.connection.readyNow,
        minForget: client.isCluster ? 1 : 16,
      })
      this.batchers.set(slot, batcher)
    }
    return batcher
  }

  private job(
    op: Op,
    request: DecideRequest | RefundRequest,
    chain: Chain,
    group: readonly number[],
    charged: readonly string[],
    undo?: Job['undo'],
  ): Job {
    const scriptKeys: string[] = []
    const blocking = request.book.block?.levels
    for (const i of group) {
      scriptKeys.push(chain.keys[i]!, entryKey(chain.keys[i]!))
      // A level that blocks repeat offenders also sends its refusal log (read only on a refusal).
      if (blocking?.[i]) scriptKeys.push(refusalKey(chain.keys[i]!))
    }
    let args: (string | number)[]
    if (isCommonDecision(op, request, group)) args = ['D']
    else {
      const decidedAt = 'decidedAt' in request ? request.decidedAt : ''
      const forced = request.tier === undefined ? '' : escapeValue(request.tier)
      args = chainArgs([op, request.cost, forced, decidedAt], chain, group)
      for (const id of charged) args.push(id)
    }
    return {
      script: this.scriptFor(request.book),
      keys: scriptKeys,
      levels: group.length,
      args,
      charges: op === 'd' && request.cost > 0,
      undo,
    }
  }

  /** One slot group's script call; `charged` are the policy ids a refund gives back to. */
  group(
    op: Op,
    request: DecideRequest | RefundRequest,
    chain: Chain,
    group: readonly number[],
    charged: readonly string[] = [],
  ): Promise<GroupReply> {
    // A late answer to a decision the fallback answered: give back exactly what it charged.
    const undo =
      op === 'd' && request.cost > 0
        ? (late: JobReply) => {
            const ids = group.map((_, j) => String(late[4 + 3 * j]))
            const refund = { ...request, decidedAt: Number(late[0]), policyIds: [] }
            return this.job('r', refund, chain, group, ids)
          }
        : undefined
    // Not async: a decision's Promises are the batcher's and the one handler here (with the frames of
    // store.decide and connection.run, the async frames were about a tenth of what a decision allocated).
    let submitted: Promise<JobReply | 'cancelled'>
    try {
      const job = this.job(op, request, chain, group, charged, undo)
      submitted = this.batcherFor(chain.keys[group[0]!]!).submit(job)
    } catch (error) {
      return Promise.reject(error)
    }
    return submitted.then(
      (reply) => groupReply(op, group, reply),
      (error: unknown) => {
        throw unavailable(error)
      },
    )
  }

  /** In a Cluster, a chain over several slots reads the assignments of every level first (they name the tier). */
  async assignments(
    request: DecideRequest | RefundRequest,
    present: readonly number[],
    keys: readonly string[],
    groups: readonly number[][],
  ): Promise<Map<number, string | null>> {
    const external = new Map<number, string | null>()
    if (groups.length < 2 || request.book.tiers.size === 0 || request.tier !== undefined) return external
    const { client } = this.config
    const values = await this.connection.bounded(() =>
      Promise.all(present.map((i) => client.hget(entryKey(keys[i]!), 'a'))),
    )
    for (const [n, i] of present.entries()) external.set(i, values[n] ?? null)
    return external
  }
}

/** A group's answer from its part of the script's reply. */
function groupReply(op: Op, group: readonly number[], reply: JobReply | 'cancelled'): GroupReply {
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

/** A decision and, per level of it, the debt Redis found (what local refusals age). */
export interface Decided {
  readonly result: DecideResult
  readonly debts: readonly number[]
}

/** toResult's assessment, filled once per level (one decision at a time, in one turn). */
const scratch = newAssessment()

/** The Decision's levels from the groups' replies: core's maths on the debts Redis returned. */
export function toResult(request: DecideRequest, replies: GroupReply[], allowed: boolean): Decided {
  const first = replies[0]!
  // By level index (a chain has few levels: an array, not a Map per decision).
  const byIndex: (GroupReply['levels'][number] | undefined)[] = []
  for (const r of replies) for (const level of r.levels) byIndex[level.index] = level
  const levels: LevelResult[] = []
  const debts: number[] = []
  const charge = allowed && request.cost > 0
  for (let i = 0; i < request.keys.length; i++) {
    const level = byIndex[i]
    if (!level || level.id === '') continue
    const policy = policyFromId(level.id)
    if (!policy) throw new Error(`unreadable policy id ${describeValue(level.id)}`)
    // One object per level, its figures written into it (settle would make a result and a state to copy).
    const figures = newLevelResult(i, request.book.levels[i]!, request.keys[i]!, policy, level.custom)
    settleInto(assessDebtInto(scratch, policy, level.debt, first.now, request.cost, false), charge, figures)
    levels.push(figures)
    debts.push(level.debt)
  }
  return { result: { allowed, now: first.now, tier: first.tier, levels }, debts }
}
