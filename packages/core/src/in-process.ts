import { LRUCache } from 'lru-cache'
import { advance } from './advance.js'
import {
  type AssessmentScratch,
  assess,
  assessInto,
  type BucketState,
  newAssessment,
  newLevelResult,
  settleInto,
  stateTtlMs,
} from './algorithm.js'
import { blockRefusals, type RefusalLog } from './block.js'
import { BucketTable, emptyState, type LevelTable } from './bucket-table.js'
import { namespacedId } from './ids.js'
import { type Clock, InProcessRegistry, monotonicClock } from './in-process-registry.js'
import { latestChange, policyAt, type TenantEntries, tierAt } from './resolve.js'
import type {
  DecideRequest,
  DecideResult,
  FleetMembership,
  LevelResult,
  RefundRequest,
  Store,
} from './store.js'

export {
  type Clock,
  InProcessRegistry,
  monotonicClock,
  type NamespacedTierEntry,
} from './in-process-registry.js'

/** True when a state's bucket is full again at `now` under its own policy. */
export function isExpired(state: BucketState, now: number): boolean {
  return stateTtlMs(state, now) <= 0
}

export interface InProcessStoreOptions {
  /** Most buckets kept; the least recently used goes first. */
  maxKeys: number
  clock?: Clock
  name?: string
  /** Called for every bucket dropped to make room (not for a full bucket, which loses nothing). */
  onEvict?: (bucketId: string) => void
}

const soleServer: FleetMembership = { size: () => 1, leave: () => undefined }
const noEntries: readonly (TenantEntries | undefined)[] = []

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * A Store whose chains are atomic because JavaScript runs one thing at a time: the whole chain is read,
 * decided and written in one synchronous turn. Bounded by its BucketTable, whose eviction stays O(1) under a
 * key flood; a state whose bucket is full again reads as absent, so no TTL bookkeeping is needed.
 */
export class InProcessStore implements Store {
  readonly name: string
  readonly registry: InProcessRegistry
  readonly maxKeys: number
  protected readonly states: BucketTable
  protected readonly clock: Clock
  private readonly onEvict: ((bucketId: string) => void) | undefined
  private refusalLogs: LRUCache<string, RefusalLog> | undefined
  // A decision's per-level scratch, reused: a decision runs in one synchronous turn and calls no user code
  // before it is done with them (onEvict is told afterwards).
  private readonly scratchStates: BucketState[] = []
  private readonly assessments: AssessmentScratch[] = []
  private readonly slots: number[] = []
  private readonly tablesAt: LevelTable[] = []
  private readonly keysAt: string[] = []

  /** Moments of recent refusals per bucket, for `block` (made on first use; bounded like the buckets). */
  private get refusals(): LRUCache<string, RefusalLog> {
    this.refusalLogs ??= new LRUCache<string, RefusalLog>({ max: this.maxKeys })
    return this.refusalLogs
  }

  constructor(options: InProcessStoreOptions) {
    this.clock = options.clock ?? monotonicClock
    this.registry = new InProcessRegistry(this.clock)
    this.name = options.name ?? 'in-process'
    this.maxKeys = options.maxKeys
    this.onEvict = options.onEvict
    this.states = new BucketTable(options.maxKeys, options.onEvict !== undefined)
  }

  /** Buckets held (full ones count until touched), the bound, and buckets dropped to make room so far. */
  stats(): { readonly size: number; readonly maxKeys: number; readonly evictions: number } {
    return { size: this.states.size, maxKeys: this.maxKeys, evictions: this.states.evictions }
  }

  /** Tells onEvict of the buckets dropped to make room, once the decision that dropped them is done. */
  private tellEvicted(): void {
    const ids = this.states.takeEvicted()
    if (ids === undefined) return
    for (const id of ids) {
      try {
        this.onEvict?.(id)
      } catch {
        // A user callback is told, never trusted: it cannot change a decision.
      }
    }
  }

  /** The store's now, the chain's registry entries and the tier they name at that moment. */
  private situation(request: DecideRequest | RefundRequest) {
    const now = Math.floor(this.clock())
    const entries = this.entriesOf(request.book, request.keys)
    return { now, entries, tier: tierAt(request.book, entries, request.tier, now) }
  }

  async decide(request: DecideRequest): Promise<DecideResult> {
    return this.decideNow(request)
  }

  /** The synchronous decision: one pass to read and assess, one to charge; no object beyond the results. */
  decideNow(request: DecideRequest): DecideResult {
    // situation(), inline: one object fewer per decision.
    const now = Math.floor(this.clock())
    const { book, keys, cost } = request
    const forced = request.tier
    const entries = this.entriesOf(book, keys)
    const tier = tierAt(book, entries, forced, now)
    const { assessments, slots, tablesAt, keysAt, scratchStates } = this
    const tables = this.states.tablesOf(book.namespace, book.levels)
    // Sized once (trimmed below when a level has no key or no policy): pushes would grow it twice.
    // Stryker disable next-line ArrayDeclaration: pre-sizing only; the loop writes every index it keeps
    const levels: LevelResult[] = new Array(keys.length)
    let allowed = true
    let n = 0
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const r = policyAt(book, i, entries[i], tier, now)
      if (r === undefined) continue
      const table = tables[i]!
      const slot = this.states.find(table, key)
      let state: BucketState | undefined
      if (slot >= 0) {
        while (scratchStates.length <= n) scratchStates.push(emptyState())
        state = this.current(this.states.read(slot, scratchStates[n]!), book, i, entries, forced, now)
      }
      while (assessments.length <= n) assessments.push(newAssessment())
      const a = assessInto(assessments[n]!, state, r.policy, now, cost)
      if (!a.fits) allowed = false
      slots[n] = slot
      tablesAt[n] = table
      keysAt[n] = key
      levels[n] = newLevelResult(i, book.levels[i]!, key, r.policy, r.custom)
      n++
    }
    if (n < levels.length) levels.length = n
    const charge = allowed && cost > 0
    // A refused charge counts towards blocking repeat offenders (block.ts); a block is a state to write.
    const blocks =
      book.block && !allowed && cost > 0
        ? blockRefusals(book.block, assessments, levels, this.idsOf(book, levels), this.refusals, now)
        : undefined
    // Held buckets first, new ones after: making room for a new bucket may evict a slot read above.
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < n; j++) {
        const slot = slots[j]!
        if (slot >= 0 === (pass === 1)) continue
        const a = assessments[j]!
        const debt = settleInto(a, charge, levels[j] as Mutable<LevelResult>)
        if (debt >= 0) this.states.writeDebt(slot, tablesAt[j]!, keysAt[j]!, debt, a.policy, a.origin, now)
        else {
          const block = blocks?.[j]
          if (block) this.states.put(tablesAt[j]!, keysAt[j]!, { ...block, epoch: now })
        }
      }
    }
    this.tellEvicted()
    return { allowed, now, tier, levels }
  }

  async refund(request: RefundRequest): Promise<void> {
    this.refundNow(request)
  }

  /** Gives `cost` back on each level still under the policy it was charged under; never above capacity. */
  refundNow(request: RefundRequest): void {
    const { now, entries, tier } = this.situation(request)
    const { book, keys, cost } = request
    const forced = request.tier
    const tables = this.states.tablesOf(book.namespace, book.levels)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      const chargedUnder = request.policyIds[i]
      if (key === undefined || chargedUnder === undefined) continue
      const r = policyAt(book, i, entries[i], tier, now)
      // A policy changed since the decision is never credited: the refund would be a gift under new terms.
      if (r === undefined || r.policy.id !== chargedUnder) continue
      if (latestChange(book, i, entries, forced, now) > request.decidedAt) continue
      const table = tables[i]!
      const slot = this.states.find(table, key)
      const state =
        slot < 0
          ? undefined
          : this.current(this.states.read(slot, emptyState()), book, i, entries, forced, now)
      if (state === undefined) continue
      const a = assess(state, r.policy, now, 0)
      const T = r.policy.tokens === 0 ? 1 : r.policy.per
      // A blocked bucket (block.ts) is never credited: a refund would shorten the block.
      if (a.debt > r.policy.capacity * T) continue
      const debt = Math.max(0, a.debt - cost * T)
      if (debt === 0) this.states.remove(table, key)
      else this.states.writeDebt(slot, table, key, debt, r.policy, a.origin, now)
    }
  }

  async reset(namespace: string, level: string, key: string): Promise<boolean> {
    const id = namespacedId(namespace, level, key)
    this.refusalLogs?.delete(id)
    return this.states.delete(id)
  }

  /** A store in one process is shared by no other server: a fleet of one. */
  joinFleet(): FleetMembership {
    return soleServer
  }

  /** A stored state at `now`, through every registry change since it was written; undefined when full. */
  private current(
    stored: BucketState,
    book: DecideRequest['book'],
    levelIndex: number,
    entries: readonly (TenantEntries | undefined)[],
    forced: string | undefined,
    now: number,
  ): BucketState | undefined {
    const state = advance(stored, book, levelIndex, entries, forced, now)
    return state === undefined || isExpired(state, now) ? undefined : state
  }

  /** The ids of a refused chain's buckets, for the refusal logs of `block` (made only when blocking is on). */
  private idsOf(book: DecideRequest['book'], levels: readonly LevelResult[]): string[] {
    return levels.map((l) => namespacedId(book.namespace, l.level, l.key))
  }

  private entriesOf(book: DecideRequest['book'], keys: readonly (string | undefined)[]) {
    let entries: (TenantEntries | undefined)[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const e = this.registry.entriesNow(book.namespace, book.levels[i]!, key)
      if (e === undefined) continue
      entries ??= new Array(keys.length)
      entries[i] = e
    }
    return entries ?? noEntries
  }
}
