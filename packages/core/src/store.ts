import type { BucketResult } from './algorithm.js'
import type { PolicyBook } from './book.js'
import type { Policy } from './policy.js'
import type { TenantEntries } from './resolve.js'
import type { Versions } from './versions.js'

/** One decision as the limiter hands it to a store: the store resolves the policies itself. */
export interface DecideRequest {
  readonly book: PolicyBook
  /** Per level of `book.levels`: the bucket's key, or undefined where the chain has none. */
  readonly keys: readonly (string | undefined)[]
  /** Whole tokens ≥ 0; 0 only looks. */
  readonly cost: number
  /** A tier forced by the caller (per route), instead of assignments. */
  readonly tier?: string
}

/** One level's figures, with the policy the store resolved for it (a Decision's level as it is). */
export interface LevelResult extends BucketResult {
  readonly levelIndex: number
  readonly level: string
  readonly key: string
  readonly policy: Policy
  /** The policy's capacity. */
  readonly limit: number
  /** The policy is the tenant's own bucket (createBucket). */
  readonly custom: boolean
}

export interface DecideResult {
  /** Every level had room and every level was charged; otherwise none was. */
  readonly allowed: boolean
  /** The store's clock (ms) at the decision: Redis's TIME for a shared store. */
  readonly now: number
  /** The tier the chain was decided under. */
  readonly tier: string | undefined
  /** One per level in force, in chain order (levels with no key or no policy are left out). */
  readonly levels: readonly LevelResult[]
}

/** Gives back what an admitted decision charged. */
export interface RefundRequest {
  readonly book: PolicyBook
  readonly keys: readonly (string | undefined)[]
  readonly tier?: string
  readonly cost: number
  /** The decision's `now`: a level whose policy changed after it is not credited. */
  readonly decidedAt: number
  /** Per level index: the policy id it was charged under (undefined where it was not charged). */
  readonly policyIds: readonly (string | undefined)[]
}

export type EntryKind = 'assignment' | 'bucket'

/** A tier's policy at one level over time, as the registry holds it (values are policy ids). */
export interface TierEntry {
  readonly tier: string
  readonly level: string
  readonly versions: Versions<string>
}

export interface RegistryChange {
  readonly kind: 'tier' | EntryKind
  /** The limiter name (namespace) it concerns; undefined when unknown (every limiter reloads). */
  readonly namespace?: string
  /** For assignments and buckets: the tenant. */
  readonly level?: string
  readonly key?: string
}

/**
 * Where tier changes, tier assignments and per-tenant buckets live, so every server sharing a store shares
 * them. Every write is a new version stamped with the store's clock: a change takes effect at that moment.
 * Per-tenant entries live beside the tenant's bucket state, so a decision reads them in the same step.
 * Every entry belongs to one limiter name (`namespace`, the book's): limiters never see each other's.
 */
export interface RegistryStore {
  /** One tenant's entries, histories included; undefined when there are none. */
  read(namespace: string, level: string, key: string): Promise<TenantEntries | undefined>
  /**
   * Records `value` (a tier name, a policy id; null removes) as of now. The condition applies to the current
   * value: 'absent' (create) or 'present' (update, delete). Resolves false when it fails.
   */
  write(
    namespace: string,
    kind: EntryKind,
    level: string,
    key: string,
    value: string | null,
    condition?: 'absent' | 'present',
  ): Promise<boolean>
  /** Every runtime tier change of one namespace. */
  tiers(namespace: string): Promise<TierEntry[]>
  /** Optional: the same, synchronously, for registries held in this process. */
  tiersNow?(namespace: string): TierEntry[]
  /** Records a tier's new policy at one level as of now. */
  writeTier(namespace: string, tier: string, level: string, policyId: string): Promise<void>
  /**
   * Hears every change made anywhere, in any namespace (a listener called with no change means "anything may
   * have changed"). A store that can miss messages must make up for it itself (a version check, a reload
   * after reconnecting).
   */
  subscribe(listener: (change?: RegistryChange) => void): () => void
}

/**
 * One server's place in the fleet sharing a store, for `expectedServers: 'auto'`. The store counts the fleet
 * on its own (a heartbeat on its own timer, its own clock); the limiter only reads the last count.
 */
export interface FleetMembership {
  /** Servers counted last, this one included; undefined until the first count. Synchronous, no I/O. */
  size(): number | undefined
  /** This server stops being counted (the store stops its heartbeat once no membership is left). */
  leave(): void
}

/**
 * The Store contract. `decide` reads a chain's states and registry entries, resolves each level's policy
 * (advancing states through registry changes at their moments), and charges every level or none — atomically.
 * It must settle within the store's own timeout: core has no timers, so a store that can hang bounds itself.
 *
 * Several limiters may share a store: every bucket and registry entry belongs to one limiter name, the
 * request book's `namespace` (or the `namespace` argument), and a store keys them apart. The default name
 * (`DEFAULT_LIMITER_NAME`) should keep the store's layout from before names, so its data keeps working.
 */
export interface Store {
  readonly name: string
  /**
   * What the store's state lives in, when several store objects share it (one Redis client and prefix): a
   * limiter name is claimed once per keyspace in a process. Default: the store object itself.
   */
  readonly keyspace?: object
  decide(request: DecideRequest): Promise<DecideResult>
  /**
   * Optional: the same decision made synchronously, for stores that decide in this process. The limiter
   * prefers it, saving a promise per decision; it must never do I/O.
   */
  decideNow?(request: DecideRequest): DecideResult
  /**
   * Optional, for stores that decide elsewhere but can answer some decisions here (a shared store's
   * remembered refusals): that answer synchronously, or undefined to ask `decide`. No I/O; the limiter asks
   * it first while the circuit is closed, so an answer it gives never waits on a Promise.
   */
  answerNow?(request: DecideRequest): DecideResult | undefined
  /** Gives back `cost` on every level charged under an unchanged policy, never above capacity, atomically. */
  refund(request: RefundRequest): Promise<void>
  /** Forgets a bucket's state (it is full again). Resolves whether there was any. */
  reset(namespace: string, level: string, key: string): Promise<boolean>
  readonly registry: RegistryStore
  /** Resolves once the store can take decisions (a client still connecting is not a failing store). */
  ready?(): Promise<void>
  /**
   * Optional, for stores that need the event loop to turn (sockets): resolves on its next turn. While the
   * circuit is open the limiter waits for it before each fallback decision, so a caller that loops on
   * `check()` (answered at once by the fallback) cannot starve the I/O the probe that closes it needs.
   */
  pace?(): Promise<void>
  /**
   * Optional: counts this server into the fleet sharing the store, until `leave()`, so the `local` fallback
   * can divide limits by the fleet's size (`expectedServers: 'auto'`). A shared store without it cannot be
   * used with 'auto'; a store in one process is a fleet of one.
   */
  joinFleet?(): FleetMembership
  close?(): Promise<void>
}
