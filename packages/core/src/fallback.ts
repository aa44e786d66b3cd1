import { LRUCache } from 'lru-cache'
import type { PolicyBook } from './book.js'
import { BucketTable, emptyState } from './bucket-table.js'
import { type ChainEntry, evaluateChain } from './chain.js'
import type { StoreErrorMode } from './events.js'
import { bucketId } from './ids.js'
import { isExpired } from './in-process.js'
import { normalizePolicy, type Policy } from './policy.js'
import { policyAt, type ResolvedPolicy } from './resolve.js'
import type { DecideRequest, DecideResult, LevelResult } from './store.js'

/** What a shared store last said of a tenant: its chain's tier and its custom bucket, if any. */
interface Seen {
  readonly tier: string | undefined
  readonly custom: Policy | undefined
}

const rememberedTenants = 100_000
/**
 * Bounded by count without `max`, which makes lru-cache allocate its arrays for all 100,000 entries up front:
 * a limiter falls back at the worst moment (a store outage), so its first local decision must be cheap.
 */
const grown = { maxSize: rememberedTenants, sizeCalculation: () => 1 }

/**
 * Decides while the shared store is failing, by `onStoreError`:
 * - `open` admits, `closed` refuses (with a retry-after of the breaker's cooldown);
 * - `local` decides with in-process buckets whose limits are the shared ones divided by the server count
 *   (`expectedServers`, or the fleet size the store last counted), so together the servers admit no more
 *   than the shared limit. A bucket kept while the count changes is converted like any changed policy. A tenant keeps the tier and custom bucket
 *   the store last reported for it (bounded: the most recent 100,000 tenants); a tenant never seen gets the
 *   default tier, or the forced one.
 * It never writes to the shared store, so nothing decided here can put another tier's policy there.
 */
/** The fallback decides under the newest policies the book holds: the moment after every change it knows. */
const LATEST = Number.MAX_SAFE_INTEGER

export class Fallback {
  // Made on first use: lru-cache sizes its arrays for `max` up front, and most limiters never fall back.
  private seenCache: LRUCache<string, Seen> | undefined
  private bucketsCache: BucketTable | undefined
  private get seen(): LRUCache<string, Seen> {
    this.seenCache ??= new LRUCache<string, Seen>(grown)
    return this.seenCache
  }
  /** The local buckets: the in-process store's own table (compact, bounded, flood-safe), made on first use. */
  private get buckets(): BucketTable {
    this.bucketsCache ??= new BucketTable(rememberedTenants)
    return this.bucketsCache
  }
  /** Shares of policies (by id) for `sharesOf` servers. */
  private readonly shares = new Map<string, Policy>()
  private sharesOf = 1

  constructor(
    readonly mode: StoreErrorMode,
    /** How many servers share the limits now: a whole number ≥ 1, read at every local decision. */
    private readonly servers: () => number,
    /** Per level: its fixed key (a `global` level); such a bucket is every tenant's, so it names no tier. */
    private readonly fixedKeys: readonly (string | undefined)[] = [],
  ) {}

  /** Notes what a shared decision resolved, for the tenants whose terms differ from the default. */
  remember(book: PolicyBook, result: DecideResult): void {
    const notable = result.tier !== book.defaultTier
    for (const level of result.levels) {
      if (level.key === this.fixedKeys[level.levelIndex]) continue
      const id = bucketId(book.levels[level.levelIndex]!, level.key)
      if (notable || level.custom)
        this.seen.set(id, { tier: result.tier, custom: level.custom ? level.policy : undefined })
      else if (this.seenCache && this.seenCache.size > 0) this.seenCache.delete(id)
    }
  }

  decide(
    request: DecideRequest,
    now: number,
    retryAfterMs: number,
  ): DecideResult & { degraded: StoreErrorMode } {
    const { book, keys, cost } = request
    const seen: (Seen | undefined)[] = keys.map((key, i) =>
      key === undefined || key === this.fixedKeys[i]
        ? undefined
        : this.seen.get(bucketId(book.levels[i]!, key)),
    )
    const tier = request.tier ?? seen.find((s) => s?.tier !== undefined)?.tier ?? book.defaultTier
    const resolved: { index: number; key: string; r: ResolvedPolicy }[] = []
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const custom = seen[i]?.custom
      const r = custom ? { policy: custom, custom: true } : policyAt(book, i, undefined, tier, LATEST)
      if (r) resolved.push({ index: i, key, r })
    }
    if (this.mode !== 'local') {
      const admit = this.mode === 'open'
      const levels = resolved.map(
        ({ index, key, r }): LevelResult => ({
          levelIndex: index,
          level: book.levels[index]!,
          key,
          ...r,
          limit: r.policy.capacity,
          allowed: admit,
          remaining: admit ? r.policy.capacity : 0,
          resetAfterMs: admit ? 0 : retryAfterMs,
          retryAfterMs: admit ? 0 : retryAfterMs,
          delayMs: 0,
        }),
      )
      return { allowed: admit, now, tier, levels, degraded: this.mode }
    }
    const buckets = this.buckets
    const tables = buckets.tablesOf(book.namespace, book.levels)
    const entries: ChainEntry[] = resolved.map(({ index, key, r }) => {
      const slot = buckets.find(tables[index]!, key)
      const state = slot < 0 ? undefined : buckets.read(slot, emptyState())
      return {
        state: state === undefined || isExpired(state, now) ? undefined : state,
        policy: this.share(r.policy),
        cost,
      }
    })
    const outcome = evaluateChain(entries, now)
    const levels = resolved.map(({ index, key, r }, j): LevelResult => {
      const next = outcome.states[j]
      if (next) buckets.put(tables[index]!, key, next)
      const policy = entries[j]!.policy
      const level = book.levels[index]!
      return { levelIndex: index, level, key, ...r, policy, limit: policy.capacity, ...outcome.results[j]! }
    })
    return { allowed: outcome.allowed, now, tier, levels, degraded: 'local' }
  }

  /** One server's share of a shared policy: ⌊capacity/n⌋ and rate/n. */
  private share(policy: Policy): Policy {
    const n = this.servers()
    if (n === 1) return policy
    if (n !== this.sharesOf) {
      this.shares.clear()
      this.sharesOf = n
    }
    let local = this.shares.get(policy.id)
    if (!local) {
      local = normalizePolicy({
        algorithm: policy.algorithm,
        mode: policy.mode,
        capacity: Math.floor(policy.capacity / n),
        refill: policy.tokens === 0 ? 0 : { tokens: policy.tokens, per: policy.per * n },
      })
      this.shares.set(policy.id, local)
    }
    return local
  }
}
