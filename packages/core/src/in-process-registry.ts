import type { BucketState } from './algorithm.js'
import { stateTtlMs } from './algorithm.js'
import { bucketId } from './ids.js'
import { type Policy, policyFromId } from './policy.js'
import type { TenantEntries } from './resolve.js'
import type { RegistryChange, RegistryStore, TierEntry } from './store.js'
import { appendVersion, latest, type Version } from './versions.js'

/** ms clock; stores and the limiter take one so tests can drive time by hand. */
export type Clock = () => number

const timeOrigin = performance.timeOrigin

/** A monotonic ms clock anchored at the wall clock when the process started. */
export const monotonicClock: Clock = () => Math.floor(timeOrigin + performance.now())

/** True when a state's bucket is full again at `now` under its own policy. */
export function isExpired(state: BucketState, now: number): boolean {
  return stateTtlMs(state, now) <= 0
}

interface MutableEntries {
  assignment?: Version<string>[]
  bucket?: Version<Policy>[]
}

const maxMoments = 10_000

/** A registry held in this process, stamped with the store's clock; listeners hear every change at once. */
export class InProcessRegistry implements RegistryStore {
  private tenants = new Map<string, MutableEntries>()
  private tierVersions = new Map<string, TierEntry>()
  /** Moments of the most recent changes, ascending, for sweeps that must know a bucket saw none. */
  private moments: number[] = []
  private readonly listeners = new Set<(change?: RegistryChange) => void>()

  constructor(private readonly clock: Clock = monotonicClock) {}

  /** The entries a decision reads, synchronously; undefined in the common case of none. */
  entriesNow(level: string, key: string): TenantEntries | undefined {
    return this.tenants.size === 0 ? undefined : this.tenants.get(bucketId(level, key))
  }

  async read(level: string, key: string): Promise<TenantEntries | undefined> {
    return this.entriesNow(level, key)
  }

  // Typed by the contract: the parameters are RegistryStore.write's.
  readonly write: RegistryStore['write'] = async (kind, level, key, value, condition) => {
    const id = bucketId(level, key)
    const entries = this.tenants.get(id) ?? {}
    const current = kind === 'assignment' ? latest(entries.assignment) : latest(entries.bucket)
    if (condition === 'absent' && current !== null) return false
    if (condition === 'present' && current === null) return false
    const now = Math.floor(this.clock())
    if (kind === 'assignment') entries.assignment = appendVersion(entries.assignment, now, value)
    else {
      const policy = value === null ? null : policyFromId(value)
      if (policy === undefined) throw new Error(`not a policy id: ${value}`)
      entries.bucket = appendVersion(entries.bucket, now, policy)
    }
    this.tenants.set(id, entries)
    this.noteMoment(now)
    this.emit({ kind, level, key })
    return true
  }

  async tiers(): Promise<TierEntry[]> {
    return this.tiersNow()
  }

  tiersNow(): TierEntry[] {
    return [...this.tierVersions.values()]
  }

  async writeTier(tier: string, level: string, policyId: string): Promise<void> {
    const id = bucketId(tier, level)
    const now = Math.floor(this.clock())
    const versions = appendVersion(this.tierVersions.get(id)?.versions, now, policyId)
    this.noteMoment(now)
    this.tierVersions.set(id, { tier, level, versions })
    this.emit({ kind: 'tier' })
  }

  /** False when some change may have come in (after, upTo]: a state there may not be what it seems alone. */
  quietBetween(after: number, upTo: number): boolean {
    if (this.moments.length >= maxMoments && after < this.moments[0]!) return false
    for (let i = this.moments.length - 1; i >= 0 && this.moments[i]! > after; i--) {
      if (this.moments[i]! <= upTo) return false
    }
    return true
  }

  private noteMoment(now: number): void {
    if (this.moments.length >= maxMoments) this.moments.shift()
    this.moments.push(now)
  }

  subscribe(listener: (change?: RegistryChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Everything, for snapshots. */
  snapshot(): { tenants: [string, TenantEntries][]; tiers: TierEntry[] } {
    return { tenants: [...this.tenants], tiers: [...this.tierVersions.values()] }
  }

  /** Replaces everything (snapshot import) and tells listeners to reload. */
  restore(snapshot: { tenants: [string, TenantEntries][]; tiers: TierEntry[] }): void {
    this.tenants = new Map(snapshot.tenants.map(([id, e]) => [id, { ...e } as MutableEntries]))
    this.tierVersions = new Map(snapshot.tiers.map((t) => [bucketId(t.tier, t.level), t]))
    const all = [
      ...snapshot.tenants.flatMap(([, e]) => [...(e.assignment ?? []), ...(e.bucket ?? [])]),
      ...snapshot.tiers.flatMap((t) => t.versions),
    ].map((v) => v.since)
    this.moments = all.sort((a, b) => a - b).slice(-maxMoments)
    this.emit(undefined)
  }

  private emit(change: RegistryChange | undefined): void {
    for (const listener of this.listeners) {
      try {
        listener(change)
      } catch {
        // One failing listener must not starve the others or fail the write.
      }
    }
  }
}
