import {
  type BucketState,
  type Clock,
  ErrorCode,
  InProcessRegistry,
  InProcessStore,
  invalid,
  isExpired,
  monotonicClock,
  type RegistryKind,
  type StateCache,
  TollgateError,
} from '@tollgate/core'
import { LRUCache } from 'lru-cache'

export interface MemoryStoreOptions {
  /** Most buckets kept; the least recently used goes first. Default 1,000,000: about 200–270 MB of heap when full (measured: 197 B per key in bench/, 265 B in the 10M-key flood test). */
  maxKeys?: number
  /** ms clock; default monotonic. Tests pass a manual clock. */
  clock?: Clock
  /** Called for every bucket dropped to make room (not for expiry, which loses nothing). */
  onEvict?: (bucketId: string) => void
}

export interface MemoryStoreStats {
  /** Buckets held now (full ones count until touched or purged). */
  readonly size: number
  readonly maxKeys: number
  /** Buckets dropped to make room since the store was made. Each such tenant starts again with a full bucket. */
  readonly evictions: number
}

/** What export() writes and import() reads: plain JSON. */
export interface MemorySnapshot {
  readonly format: 'tollgate-memory'
  readonly version: 1
  /** The store's clock when written. */
  readonly now: number
  readonly states: [id: string, state: BucketState][]
  readonly registry: Record<RegistryKind, [string, string][]>
}

export const DEFAULT_MAX_KEYS = 1_000_000

/**
 * The in-process Store: one JavaScript turn per decision makes every chain atomic. Bounded by `maxKeys`
 * (LRU); an entry's TTL is the moment its bucket is full again, and an expired entry means a full bucket,
 * so dropping it changes no decision. Not shared between processes: use @tollgate/redis for a fleet.
 */
export class MemoryStore extends InProcessStore {
  private readonly lru: LRUCache<string, BucketState>
  private readonly counters: { evictions: number }
  readonly maxKeys: number

  constructor(options: MemoryStoreOptions = {}) {
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw invalid(ErrorCode.InvalidOption, 'maxKeys', maxKeys, 'a whole number ≥ 1')
    }
    const clock = options.clock ?? monotonicClock
    if (typeof clock !== 'function')
      throw invalid(ErrorCode.InvalidOption, 'clock', clock, 'a function returning ms')
    const onEvict = options.onEvict
    const counters = { evictions: 0 }
    // No lru-cache TTL: a state whose bucket is full again reads as absent (core drops it on access) and
    // purgeStale() sweeps the rest, so expiry costs no clock reads or bookkeeping on the hot path.
    const lru = new LRUCache<string, BucketState>({
      max: maxKeys,
      dispose: (_state, id, reason) => {
        if (reason !== 'evict') return
        counters.evictions++
        onEvict?.(id)
      },
    })
    const cache: StateCache = {
      get: (id) => lru.get(id),
      set: (id, state) => {
        lru.set(id, state)
      },
      delete: (id) => lru.delete(id),
    }
    super({ cache, clock, registry: new InProcessRegistry(), name: 'memory' })
    this.lru = lru
    this.maxKeys = maxKeys
    this.counters = counters
  }

  stats(): MemoryStoreStats {
    return { size: this.lru.size, maxKeys: this.maxKeys, evictions: this.counters.evictions }
  }

  /** Drops every bucket that is full again (they are dropped lazily, when touched, otherwise). */
  purgeStale(): number {
    const now = Math.floor(this.clock())
    let purged = 0
    for (const [id, state] of this.lru.entries()) {
      if (isExpired(state, now)) {
        this.lru.delete(id)
        purged++
      }
    }
    return purged
  }

  /** A JSON-safe snapshot of every live bucket and the registry, for persistence across restarts. */
  export(): MemorySnapshot {
    const states: [string, BucketState][] = []
    for (const [id, state] of this.lru.entries()) states.push([id, { ...state }])
    return {
      format: 'tollgate-memory',
      version: 1,
      now: Math.floor(this.clock()),
      states,
      registry: this.registry.entries(),
    }
  }

  /**
   * Loads a snapshot, replacing what is held. States keep their absolute times: the default clock is anchored
   * to the wall clock, so time spent down refills buckets exactly as if the process had stayed up.
   */
  import(snapshot: MemorySnapshot): void {
    if (
      typeof snapshot !== 'object' ||
      snapshot === null ||
      snapshot.format !== 'tollgate-memory' ||
      snapshot.version !== 1 ||
      !Array.isArray(snapshot.states) ||
      !Number.isFinite(snapshot.now)
    ) {
      throw new TollgateError(
        ErrorCode.InvalidSnapshot,
        'import() takes a snapshot written by export() (format tollgate-memory, version 1)',
        {
          field: 'snapshot',
          value: typeof snapshot,
        },
      )
    }
    const now = Math.floor(this.clock())
    const states: [string, BucketState][] = []
    for (const entry of snapshot.states) {
      const [id, s] = Array.isArray(entry) ? entry : []
      const fields = s ? [s.tat, s.frac, s.capacity, s.tokens, s.per] : []
      if (typeof id !== 'string' || fields.length !== 5 || !fields.every((n) => Number.isSafeInteger(n))) {
        throw new TollgateError(
          ErrorCode.InvalidSnapshot,
          `snapshot state ${JSON.stringify(id)} is malformed`,
          {
            field: 'snapshot.states',
            value: id,
          },
        )
      }
      states.push([id, { tat: s!.tat, frac: s!.frac, capacity: s!.capacity, tokens: s!.tokens, per: s!.per }])
    }
    this.lru.clear()
    for (const [id, state] of states) if (!isExpired(state, now)) this.cache.set(id, state)
    this.registry.replace(snapshot.registry ?? {})
  }
}

export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
