import {
  type BucketState,
  type Clock,
  ErrorCode,
  InProcessStore,
  invalid,
  isExpired,
  monotonicClock,
  type NamespacedTierEntry,
  policyFromId,
  splitNamespacedId,
  type TenantEntries,
  TollgateError,
} from '@tollgate/core/store'

export interface MemoryStoreOptions {
  /** Most buckets kept; the least recently used goes first. Default 1,000,000 (see the README for heap per key). */
  maxKeys?: number
  /** ms clock; default monotonic. Tests pass a manual clock. */
  clock?: Clock
  /** Called for every bucket dropped to make room (not for expiry, which loses nothing). A throw is ignored. */
  onEvict?: (bucketId: string) => void
}

export interface MemoryStoreStats {
  /** Buckets held now (full ones count until touched or purged). */
  readonly size: number
  readonly maxKeys: number
  /** Buckets dropped to make room since the store was made. Each such tenant starts again with a full bucket. */
  readonly evictions: number
}

/** A registry entry in a snapshot: policies by id. */
export interface SnapshotEntries {
  readonly assignment?: { since: number; value: string | null }[]
  readonly bucket?: { since: number; value: string | null }[]
}

/** What export() writes and import() reads: plain JSON. */
export interface MemorySnapshot {
  readonly format: 'tollgate-memory'
  readonly version: 2
  /** The store's clock when written. */
  readonly now: number
  readonly states: [id: string, state: BucketState][]
  /** Ids as `namespacedId` makes them; tier changes of a named limiter carry its `namespace`. */
  readonly registry: { tenants: [id: string, entries: SnapshotEntries][]; tiers: NamespacedTierEntry[] }
}

export const DEFAULT_MAX_KEYS = 1_000_000

function badSnapshot(message: string, field: string, value: unknown): TollgateError {
  return new TollgateError(ErrorCode.InvalidSnapshot, message, { field, value })
}

/**
 * The in-process Store: one JavaScript turn per decision makes every chain atomic. Bounded by `maxKeys`
 * (lru-cache); a state whose bucket is full again reads as absent, so dropping it changes no decision.
 * Not shared between processes: use @tollgate/redis for a fleet.
 */
export class MemoryStore extends InProcessStore {
  constructor(options: MemoryStoreOptions = {}) {
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw invalid(ErrorCode.InvalidOption, 'maxKeys', maxKeys, 'a whole number ≥ 1')
    }
    const clock = options.clock ?? monotonicClock
    if (typeof clock !== 'function')
      throw invalid(ErrorCode.InvalidOption, 'clock', clock, 'a function returning ms')
    super({ maxKeys, clock, name: 'memory', onEvict: options.onEvict })
  }

  /**
   * Drops every bucket that is full again (they are dropped lazily, when touched, otherwise). A bucket a
   * registry change reached before it filled is kept: under its new policy it may not be full yet.
   */
  purgeStale(): number {
    const now = Math.floor(this.clock())
    let purged = 0
    for (const [id, state] of this.states.entries()) {
      if (isExpired(state, now) && this.registry.quietBetween(state.epoch - 1, fullAt(state))) {
        this.states.delete(id)
        purged++
      }
    }
    return purged
  }

  /** A JSON-safe snapshot of every live bucket and the registry, for persistence across restarts. */
  export(): MemorySnapshot {
    const states: [string, BucketState][] = []
    for (const [id, state] of this.states.entries()) states.push([id, { ...state }])
    const { tenants, tiers } = this.registry.snapshot()
    return {
      format: 'tollgate-memory',
      version: 2,
      now: Math.floor(this.clock()),
      states,
      registry: {
        tenants: tenants.map(([id, e]) => [
          id,
          {
            assignment: e.assignment?.map((v) => ({ ...v })),
            bucket: e.bucket?.map((v) => ({ since: v.since, value: v.value?.id ?? null })),
          },
        ]),
        tiers,
      },
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
      snapshot.version !== 2 ||
      !Array.isArray(snapshot.states) ||
      !Number.isFinite(snapshot.now)
    ) {
      throw badSnapshot(
        'import() takes a snapshot written by export() (format tollgate-memory, version 2)',
        'snapshot',
        typeof snapshot,
      )
    }
    const states: [string, BucketState][] = []
    for (const entry of snapshot.states) {
      const [id, s] = Array.isArray(entry) ? entry : []
      const fields = s ? [s.tat, s.frac, s.capacity, s.tokens, s.per, s.epoch ?? 0] : []
      if (
        typeof id !== 'string' ||
        !splitNamespacedId(id) ||
        fields.length !== 6 ||
        !fields.every((n) => Number.isSafeInteger(n))
      ) {
        throw badSnapshot(`snapshot state ${JSON.stringify(id)} is malformed`, 'snapshot.states', id)
      }
      states.push([
        id,
        {
          tat: s!.tat,
          frac: s!.frac,
          capacity: s!.capacity,
          tokens: s!.tokens,
          per: s!.per,
          epoch: s!.epoch ?? 0,
        },
      ])
    }
    const tenants: [string, TenantEntries][] = []
    for (const [id, e] of snapshot.registry?.tenants ?? []) {
      const bucket = e.bucket?.map((v) => {
        const policy = v.value === null ? null : policyFromId(v.value)
        if (policy === undefined)
          throw badSnapshot(`snapshot bucket ${JSON.stringify(id)} is malformed`, 'snapshot.registry', id)
        return { since: v.since, value: policy }
      })
      tenants.push([id, { assignment: e.assignment, bucket }])
    }
    this.states.clear()
    // export() lists each level's buckets most recently used first: set the oldest first to keep that order.
    for (let i = states.length - 1; i >= 0; i--) this.states.set(states[i]![0], states[i]![1])
    this.registry.restore({ tenants, tiers: snapshot.registry?.tiers ?? [] })
  }
}

/** The moment a refilling state's bucket is full again under its own policy. */
function fullAt(state: BucketState): number {
  return state.tat + (state.frac > 0 ? 1 : 0)
}

export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
