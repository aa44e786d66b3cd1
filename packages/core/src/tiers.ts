import { makeBook, type PolicyBook } from './book.js'
import type { LimiterConfig } from './options.js'
import { type Policy, policyFromId } from './policy.js'
import type { RegistryStore, TierEntry } from './store.js'
import type { Version, Versions } from './versions.js'

/**
 * The limiter's tier definitions, cached whole (they are few and small): the configured policies plus every
 * runtime change the registry holds, each with its moment. Reloaded when the registry says tiers changed;
 * until a reload lands, decisions use the book they have (the change still applies at its own moment).
 */
export class TierBook {
  private book: PolicyBook
  private loaded = false
  private loading: Promise<void> | undefined
  private generation = 0
  private signature = '[]'

  constructor(
    private readonly config: LimiterConfig,
    private readonly registry: RegistryStore,
  ) {
    this.book = this.build([])
    if (registry.tiersNow) {
      this.apply(registry.tiersNow(config.name))
      this.loaded = true
    }
  }

  get current(): PolicyBook {
    return this.book
  }

  /** The tiers have never been read from the store: a decision must not assume there were no changes. */
  get needsLoad(): boolean {
    return !this.loaded
  }

  /**
   * Reads the registry's tier changes; concurrent calls share one read. `fresh`: the read must start after
   * this call (a change this process just wrote must be in it), so one already in flight does not count.
   */
  load(fresh = false): Promise<void> {
    if (this.registry.tiersNow) {
      this.apply(this.registry.tiersNow(this.config.name))
      this.loaded = true
      return Promise.resolve()
    }
    if (fresh && this.loading) {
      const after = this.loading.catch(() => undefined).then(() => this.load())
      return after
    }
    this.loading ??= this.read().finally(() => {
      this.loading = undefined
    })
    return this.loading
  }

  /** Something changed: read again (in the background; a failure is retried on the next notice or decision). */
  invalidate(): void {
    this.generation++
    if (this.registry.tiersNow) {
      // A registry in this process answers at once: the change is in the very next decision.
      this.apply(this.registry.tiersNow(this.config.name))
      this.loaded = true
      return
    }
    this.load().catch(() => {
      this.loaded = false
    })
  }

  private async read(): Promise<void> {
    const startedAt = this.generation
    this.apply(await this.registry.tiers(this.config.name))
    // A change heard while this read was in flight may not be in it: read again.
    if (startedAt !== this.generation) return this.read()
    this.loaded = true
  }

  private apply(entries: readonly TierEntry[]): void {
    const runtime: [tier: string, levelIndex: number, versions: Versions<Policy>][] = []
    for (const entry of entries) {
      const levelIndex = this.config.levelNames.indexOf(entry.level)
      if (levelIndex < 0 || !this.config.tiers.has(entry.tier)) continue
      const versions: Version<Policy>[] = []
      for (const v of entry.versions) {
        // A version this build cannot read is left out; the configured policy then stands in.
        const policy = v.value === null ? null : policyFromId(v.value)
        if (policy !== undefined) versions.push({ since: v.since, value: policy })
      }
      runtime.push([entry.tier, levelIndex, versions])
    }
    // Unchanged definitions keep their book, so stores keep what they derived from it (a loaded script).
    const signature = JSON.stringify(
      runtime.map(([tier, level, versions]) => [tier, level, versions.map((v) => [v.since, v.value?.id])]),
    )
    if (signature === this.signature) return
    this.signature = signature
    this.book = this.build(runtime)
  }

  private build(runtime: [string, number, Versions<Policy>][]): PolicyBook {
    const tiers = new Map<string, (Versions<Policy> | undefined)[]>()
    for (const [tier, byLevel] of this.config.tiers) {
      tiers.set(
        tier,
        byLevel.map((policy) => (policy === undefined ? undefined : [{ since: 0, value: policy }])),
      )
    }
    for (const [tier, levelIndex, versions] of runtime) {
      const byLevel = tiers.get(tier)!
      byLevel[levelIndex] = [...(byLevel[levelIndex] ?? []), ...versions]
    }
    return makeBook({
      namespace: this.config.name,
      levels: this.config.levelNames,
      base: this.config.base,
      tiers,
      defaultTier: this.config.defaultTier,
      block: this.config.block,
    })
  }
}
