import { type BucketState, stateTtlMs } from './algorithm.js'
import { type ChainEntry, evaluateChain } from './chain.js'
import type { ConsumeOp, ConsumeResult, RegistryChange, RegistryKind, RegistryStore, Store } from './store.js'

/** ms clock; stores and the limiter take one so tests can drive time by hand. */
export type Clock = () => number

/** A monotonic ms clock anchored at the wall clock when the process started. */
export const monotonicClock: Clock = () => Math.floor(performance.timeOrigin + performance.now())

/** Where an in-process store keeps bucket states. `ttlMs` is when the bucket is full again (Infinity: never). */
export interface StateCache {
  get(key: string): BucketState | undefined
  set(key: string, state: BucketState, ttlMs: number): void
  delete(key: string): boolean
}

/**
 * A bounded Map in least-recently-used order with lazy expiry: enough for the limiter's own
 * fallback buckets. @tollgate/memory plugs lru-cache in instead and adds eviction reports and snapshots.
 */
export function boundedMapCache(maxKeys: number, clock: Clock): StateCache {
  const entries = new Map<string, { state: BucketState; expiresAt: number }>()
  return {
    get(key) {
      const entry = entries.get(key)
      if (!entry) return undefined
      if (entry.expiresAt <= clock()) {
        entries.delete(key)
        return undefined
      }
      entries.delete(key)
      entries.set(key, entry)
      return entry.state
    },
    set(key, state, ttlMs) {
      entries.delete(key)
      entries.set(key, { state, expiresAt: clock() + ttlMs })
      if (entries.size > maxKeys) entries.delete(entries.keys().next().value as string)
    },
    delete: (key) => entries.delete(key),
  }
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
    const ids = ops.map((op) => bucketId(op.level, op.key))
    const entries: ChainEntry[] = ops.map((op, i) => ({
      state: this.cache.get(ids[i]!),
      policy: op.policy,
      cost: op.cost,
    }))
    const outcome = evaluateChain(entries, now)
    outcome.states.forEach((state, i) => {
      if (state) this.cache.set(ids[i]!, state, stateTtlMs(state, now))
    })
    return { allowed: outcome.allowed, now, results: outcome.results }
  }

  async reset(level: string, key: string): Promise<boolean> {
    return this.cache.delete(bucketId(level, key))
  }
}
