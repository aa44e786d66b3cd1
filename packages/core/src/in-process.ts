import { type BucketState, stateTtlMs } from './algorithm.js'
import { type ChainEntry, evaluateChain } from './chain.js'
import type { ConsumeOp, ConsumeResult, RegistryChange, RegistryKind, RegistryStore, Store } from './store.js'

/** ms clock; stores and the limiter take one so tests can drive time by hand. */
export type Clock = () => number

const timeOrigin = performance.timeOrigin

/** A monotonic ms clock anchored at the wall clock when the process started. */
export const monotonicClock: Clock = () => Math.floor(timeOrigin + performance.now())

/**
 * Where an in-process store keeps bucket states. Expiry needs no timer and no clock here: a state
 * whose bucket is full again is the same as no state, and the store treats it so when read.
 */
export interface StateCache {
  get(key: string): BucketState | undefined
  set(key: string, state: BucketState): void
  delete(key: string): boolean
}

/**
 * A bounded Map in least-recently-used order: enough for the limiter's own fallback buckets.
 * @tollgate/memory plugs lru-cache in instead and adds eviction reports, purging and snapshots.
 */
export function boundedMapCache(maxKeys: number): StateCache {
  const entries = new Map<string, BucketState>()
  return {
    get(key) {
      const state = entries.get(key)
      if (state === undefined) return undefined
      entries.delete(key)
      entries.set(key, state)
      return state
    },
    set(key, state) {
      entries.delete(key)
      entries.set(key, state)
      if (entries.size > maxKeys) entries.delete(entries.keys().next().value as string)
    },
    delete: (key) => entries.delete(key),
  }
}

/** True when a state's bucket is full again at `now`: it can be forgotten (it expires). */
export function isExpired(state: BucketState, now: number): boolean {
  return stateTtlMs(state, now) <= 0
}

/** The in-process bucket key: level and key joined by a character neither may contain ambiguously. */
export function bucketId(level: string, key: string): string {
  return `${level}\u0000${key}`
}

/** A registry held in this process; listeners hear every change at once. */
export class InProcessRegistry implements RegistryStore {
  private readonly data: Record<RegistryKind, Map<string, string>> = {
    tier: new Map(),
    assignment: new Map(),
    bucket: new Map(),
  }
  private readonly listeners = new Set<(change?: RegistryChange) => void>()

  getNow(kind: RegistryKind, level: string, key: string): string | undefined {
    const map = this.data[kind]
    // Most registries hold no entry of a kind: answer without building the id.
    return map.size === 0 ? undefined : map.get(bucketId(level, key))
  }

  async getMany(kind: RegistryKind, ids: readonly string[]): Promise<(string | undefined)[]> {
    const map = this.data[kind]
    return ids.map((id) => map.get(id))
  }

  async list(kind: RegistryKind): Promise<[string, string][]> {
    return [...this.data[kind]]
  }

  async put(
    kind: RegistryKind,
    id: string,
    value: string,
    condition?: 'absent' | 'present',
  ): Promise<boolean> {
    const map = this.data[kind]
    if (condition === 'absent' && map.has(id)) return false
    if (condition === 'present' && !map.has(id)) return false
    map.set(id, value)
    this.emit({ kind, id })
    return true
  }

  async delete(kind: RegistryKind, id: string): Promise<boolean> {
    const deleted = this.data[kind].delete(id)
    if (deleted) this.emit({ kind, id })
    return deleted
  }

  subscribe(listener: (change?: RegistryChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Everything, for snapshots. */
  entries(): Record<RegistryKind, [string, string][]> {
    return { tier: [...this.data.tier], assignment: [...this.data.assignment], bucket: [...this.data.bucket] }
  }

  /** Replaces everything (snapshot import) and tells listeners to reload. */
  replace(entries: Partial<Record<RegistryKind, [string, string][]>>): void {
    for (const kind of ['tier', 'assignment', 'bucket'] as const)
      this.data[kind] = new Map(entries[kind] ?? [])
    this.emit(undefined)
  }

  private emit(change: RegistryChange | undefined): void {
    for (const listener of this.listeners) listener(change)
  }
}

export interface InProcessStoreOptions {
  cache: StateCache
  clock?: Clock
  registry?: InProcessRegistry
  name?: string
}

/**
 * A Store whose chains are atomic because JavaScript runs one thing at a time: the whole chain is read,
 * decided and written in one synchronous turn.
 */
export class InProcessStore implements Store {
  readonly name: string
  readonly registry: InProcessRegistry
  protected readonly cache: StateCache
  protected readonly clock: Clock

  constructor(options: InProcessStoreOptions) {
    this.cache = options.cache
    this.clock = options.clock ?? monotonicClock
    this.registry = options.registry ?? new InProcessRegistry()
    this.name = options.name ?? 'in-process'
  }

  async consume(ops: readonly ConsumeOp[]): Promise<ConsumeResult> {
    return this.consumeNow(ops)
  }

  /** The synchronous decision, for callers that want to skip a promise. */
  consumeNow(ops: readonly ConsumeOp[]): ConsumeResult {
    const now = Math.floor(this.clock())
    const n = ops.length
    const ids: string[] = new Array(n)
    const held: (BucketState | undefined)[] = new Array(n)
    const entries: ChainEntry[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const op = ops[i]!
      const id = bucketId(op.level, op.key)
      ids[i] = id
      // A full bucket reads as absent; its entry is overwritten on the next charge or swept by a purge.
      const state = this.cache.get(id)
      held[i] = state
      entries[i] = {
        state: state !== undefined && isExpired(state, now) ? undefined : state,
        policy: op.policy,
        cost: op.cost,
      }
    }
    const outcome = evaluateChain(entries, now)
    for (let i = 0; i < n; i++) {
      const next = outcome.states[i]
      if (next === undefined) continue
      // The get above already made this entry the most recent: updating the held object in place spares a set.
      const previous = held[i]
      if (previous === undefined) this.cache.set(ids[i]!, next)
      else {
        previous.tat = next.tat
        previous.frac = next.frac
        previous.capacity = next.capacity
        previous.tokens = next.tokens
        previous.per = next.per
      }
    }
    return { allowed: outcome.allowed, now, results: outcome.results }
  }

  async reset(level: string, key: string): Promise<boolean> {
    return this.cache.delete(bucketId(level, key))
  }
}
