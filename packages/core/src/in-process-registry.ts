import { namespacedId } from './ids.js'
import { DEFAULT_LIMITER_NAME as DEFAULT } from './names.js'
import { type Policy, policyFromId } from './policy.js'
import type { TenantEntries } from './resolve.js'
import type { RegistryChange, RegistryStore, TierEntry } from './store.js'
import { appendVersion, latest, type Version } from './versions.js'

/** ms clock; stores and the limiter take one so tests can drive time by hand. */
export type Clock = () => number

// Kept: Node's global `performance` is a getter, paid on every read.
const perf = performance
const timeOrigin = perf.timeOrigin

/** A monotonic ms clock anchored at the wall clock when the process started. */
export const monotonicClock: Clock = () => Math.floor(timeOrigin + perf.now())

interface MutableEntries {
  assignment?: Version<string>[]
  bucket?: Version<Policy>[]
}

/** A tier change with the limiter name it belongs to (absent: the default name), as snapshots hold it. */
export type NamespacedTierEntry = TierEntry & { readonly namespace?: string }

const maxMoments = 10_000

/** A registry held in this process, stamped with the store's clock; listeners hear every change at once. */
export class InProcessRegistry implements RegistryStore {
  /** Keyed by namespacedId(namespace, level, key). */
  private tenants = new Map<string, MutableEntries>()
  /** Keyed by namespacedId(namespace, tier, level). */
  private tierVersions = new Map<string, NamespacedTierEntry>()
  /** Moments of the most recent changes, ascending, for sweeps that must know a bucket saw none. */
  private moments: number[] = []
  private readonly listeners = new Set<(change?: RegistryChange) => void>()

  constructor(private readonly clock: Clock = monotonicClock) {}

  /** The entries a decision reads, synchronously; undefined in the common case of none. */
  entriesNow(namespace: string, level: string, key: string): TenantEntries | undefined {
    return this.tenants.size === 0 ? undefined : this.tenants.get(namespacedId(namespace, level, key))
  }

  async read(namespace: string, level: string, key: string): Promise<TenantEntries | undefined> {
    return this.entriesNow(namespace, level, key)
  }

  // Typed by the contract: the parameters are RegistryStore.write's.
  readonly write: RegistryStore['write'] = async (namespace, kind, level, key, value, condition) => {
    const id = namespacedId(namespace, level, key)
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
    this.emit({ kind, namespace, level, key })
    return true
  }

  async tiers(namespace: string): Promise<TierEntry[]> {
    return this.tiersNow(namespace)
  }

  tiersNow(namespace: string): TierEntry[] {
    const entries: TierEntry[] = []
    for (const entry of this.tierVersions.values()) {
      if (namespaceOf(entry) === namespace)
        entries.push({ tier: entry.tier, level: entry.level, versions: entry.versions })
    }
    return entries
  }

  async writeTier(namespace: string, tier: string, level: string, policyId: string): Promise<void> {
    const id = namespacedId(namespace, tier, level)
    const now = Math.floor(this.clock())
    const versions = appendVersion(this.tierVersions.get(id)?.versions, now, policyId)
    this.noteMoment(now)
    this.tierVersions.set(id, withNamespace({ tier, level, versions }, namespace))
    this.emit({ kind: 'tier', namespace })
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

  /** Everything, for snapshots: tenants by namespacedId, tier changes with their namespace. */
  snapshot(): { tenants: [string, TenantEntries][]; tiers: NamespacedTierEntry[] } {
    return { tenants: [...this.tenants], tiers: [...this.tierVersions.values()] }
  }

  /** Replaces everything (snapshot import) and tells listeners to reload. */
  restore(snapshot: { tenants: [string, TenantEntries][]; tiers: NamespacedTierEntry[] }): void {
    this.tenants = new Map(snapshot.tenants.map(([id, e]) => [id, { ...e } as MutableEntries]))
    this.tierVersions = new Map(snapshot.tiers.map((t) => [namespacedId(namespaceOf(t), t.tier, t.level), t]))
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

function namespaceOf(entry: NamespacedTierEntry): string {
  return entry.namespace ?? DEFAULT
}

/** The default name is left out, so snapshots of one limiter read as before names. */
function withNamespace(entry: TierEntry, namespace: string): NamespacedTierEntry {
  return namespace === DEFAULT ? entry : { ...entry, namespace }
}
