import type { BucketResult } from './algorithm.js'
import type { Policy } from './policy.js'

/** One bucket of a chain, as the limiter hands it to a store. */
export interface ConsumeOp {
  readonly level: string
  readonly key: string
  readonly policy: Policy
  /** Whole tokens ≥ 0; 0 peeks. */
  readonly cost: number
}

export interface ConsumeResult {
  /** Every bucket had room and every bucket was charged; otherwise none was. */
  readonly allowed: boolean
  /** The store's clock (ms) at the decision: Redis's TIME for a shared store. */
  readonly now: number
  /** One per op, in order. */
  readonly results: readonly BucketResult[]
}

export type RegistryKind = 'tier' | 'assignment' | 'bucket'

export interface RegistryChange {
  readonly kind: RegistryKind
  readonly id: string
}

/**
 * Where tiers, tier assignments and per-tenant buckets live, so every server sharing a store shares them.
 * Values are JSON text written by core. A change made anywhere must reach `subscribe` listeners
 * (a listener called with no change means "anything may have changed": reload).
 */
export interface RegistryStore {
  getMany(kind: RegistryKind, ids: readonly string[]): Promise<(string | undefined)[]>
  /**
   * Optional: a synchronous read of the entry for (level, key), whose id is `${level}\u0000${key}`, for
   * registries held in this process (the limiter then keeps no cache).
   */
  getNow?(kind: RegistryKind, level: string, key: string): string | undefined
  list(kind: RegistryKind): Promise<[id: string, value: string][]>
  /** Writes unless the condition fails: 'absent' (create), 'present' (update). Resolves false when it fails. */
  put(kind: RegistryKind, id: string, value: string, condition?: 'absent' | 'present'): Promise<boolean>
  /** Resolves false when there was nothing to delete. */
  delete(kind: RegistryKind, id: string): Promise<boolean>
  subscribe(listener: (change?: RegistryChange) => void): () => void
}

/**
 * The Store contract. `consume` applies a whole chain atomically (all charged or none) and must settle
 * within the store's own timeout: core has no timers, so a store that can hang must bound itself.
 */
export interface Store {
  readonly name: string
  consume(ops: readonly ConsumeOp[]): Promise<ConsumeResult>
  /**
   * Optional: the same decision made synchronously, for stores that decide in this process. The limiter
   * prefers it, saving a promise per decision; it must never do I/O.
   */
  consumeNow?(ops: readonly ConsumeOp[]): ConsumeResult
  /** Forgets a bucket's state (it is full again). Resolves whether there was any. */
  reset(level: string, key: string): Promise<boolean>
  readonly registry: RegistryStore
  close?(): Promise<void>
}
