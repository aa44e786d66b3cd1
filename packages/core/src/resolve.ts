import type { PolicyBook } from './book.js'
import type { Policy } from './policy.js'
import { type Versions, valueAt } from './versions.js'

/** What the registry holds for one (level, key): its tier assignment and its custom bucket, with histories. */
export interface TenantEntries {
  readonly assignment?: Versions<string>
  readonly bucket?: Versions<Policy>
}

/** The policy of one level at one moment, and whether it is the tenant's own (createBucket). */
export interface ResolvedPolicy {
  readonly policy: Policy
  readonly custom: boolean
}

/**
 * The chain's tier at `t`: the forced tier (per route), else the assignment of the first level (in chain
 * order) that has one naming a known tier, else the book's default. `entries[i]` is undefined where level i
 * has no key or the registry holds nothing for it.
 */
export function tierAt(
  book: PolicyBook,
  entries: readonly (TenantEntries | undefined)[],
  forcedTier: string | undefined,
  t: number,
): string | undefined {
  if (forcedTier !== undefined) return forcedTier
  // Stryker disable next-line ConditionalExpression: a fast path: with no tiers no assignment is known and the book has no default tier
  if (book.tiers.size === 0) return undefined
  // Stryker disable next-line EqualityOperator: entries[length] is undefined, which has no assignment
  for (let i = 0; i < entries.length; i++) {
    const assigned = valueAt(entries[i]?.assignment, t)
    if (assigned !== null && book.tiers.has(assigned)) return assigned
  }
  return book.defaultTier
}

/** Level i's policy at `t` under `tier`: the tenant's custom bucket, else the tier's, else the base policy. */
export function policyAt(
  book: PolicyBook,
  levelIndex: number,
  entries: TenantEntries | undefined,
  tier: string | undefined,
  t: number,
): ResolvedPolicy | undefined {
  const custom = valueAt(entries?.bucket, t)
  if (custom !== null) return resolved(custom, true)
  const tierPolicy = tier === undefined ? null : valueAt(book.tiers.get(tier)?.[levelIndex], t)
  if (tierPolicy !== null) return resolved(tierPolicy, false)
  const base = book.base[levelIndex]
  return base === undefined ? undefined : resolved(base, false)
}

// One answer object per policy and kind, so resolving allocates nothing on the hot path; the last few
// answers are looked up by identity first (a chain's levels ask the same handful of policies every time).
const asShared = new WeakMap<Policy, ResolvedPolicy>()
const asCustom = new WeakMap<Policy, ResolvedPolicy>()
const recent: ResolvedPolicy[] = []
let recentNext = 0
function resolved(policy: Policy, custom: boolean): ResolvedPolicy {
  for (let i = 0; i < recent.length; i++) {
    const r = recent[i]!
    if (r.policy === policy && r.custom === custom) return r
  }
  const answer = cachedAnswer(policy, custom)
  recent[recentNext] = answer
  recentNext = (recentNext + 1) % 4
  return answer
}

function cachedAnswer(policy: Policy, custom: boolean): ResolvedPolicy {
  const cache = custom ? asCustom : asShared
  let answer = cache.get(policy)
  if (!answer) {
    answer = Object.freeze({ policy, custom })
    cache.set(policy, answer)
  }
  return answer
}

const runtimeLevels = new WeakMap<PolicyBook, readonly boolean[]>()
// The book of the last question: the same book answers every decision until the tiers change.
let lastBook: PolicyBook | undefined
let lastLevels: readonly boolean[] = []

/** Whether anything could have changed level i's policy at runtime: false in the common case. */
export function mayHaveChanged(
  book: PolicyBook,
  levelIndex: number,
  entries: readonly (TenantEntries | undefined)[],
): boolean {
  if (entries.length > 0) return true
  if (book === lastBook) return lastLevels[levelIndex]!
  let levels = runtimeLevels.get(book)
  if (!levels) {
    levels = book.levels.map((_, i) =>
      [...book.tiers.values()].some((byLevel) => (byLevel[i] ?? []).some((v) => v.since > 0)),
    )
    runtimeLevels.set(book, levels)
  }
  lastBook = book
  lastLevels = levels
  return levels[levelIndex]!
}

function collect(into: number[], versions: Versions<unknown> | undefined, after: number, upTo: number): void {
  if (versions === undefined) return
  for (const { since } of versions) if (since > after && since <= upTo) into.push(since)
}

/**
 * The moments in (after, upTo] at which level i's policy may have changed: changes of its custom bucket,
 * of any level's assignment (the tier comes from the first assigned level), and of its tiers' limits.
 * Ascending, without repeats. Empty in the common case (nothing changed since the bucket was written).
 */
export function changeMoments(
  book: PolicyBook,
  levelIndex: number,
  entries: readonly (TenantEntries | undefined)[],
  forcedTier: string | undefined,
  after: number,
  upTo: number,
): number[] {
  const moments: number[] = []
  collect(moments, entries[levelIndex]?.bucket, after, upTo)
  if (forcedTier === undefined) for (const e of entries) collect(moments, e?.assignment, after, upTo)
  if (forcedTier !== undefined) collect(moments, book.tiers.get(forcedTier)?.[levelIndex], after, upTo)
  else for (const tier of book.tiers.values()) collect(moments, tier[levelIndex], after, upTo)
  // Stryker disable next-line EqualityOperator: one moment is already sorted and unique
  if (moments.length > 1) {
    moments.sort((a, b) => a - b)
    let n = 1
    for (let i = 1; i < moments.length; i++) if (moments[i] !== moments[n - 1]) moments[n++] = moments[i]!
    moments.length = n
  }
  return moments
}

/** The newest moment of change among what governs level i: a state written now has seen every change up to it. */
export function latestChange(
  book: PolicyBook,
  levelIndex: number,
  entries: readonly (TenantEntries | undefined)[],
  forcedTier: string | undefined,
  upTo: number,
): number {
  const all = changeMoments(book, levelIndex, entries, forcedTier, 0, upTo)
  return all.length === 0 ? 0 : all[all.length - 1]!
}
