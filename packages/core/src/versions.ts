/**
 * A registry entry's history: the values it took, each from the moment (`since`, on the store's clock) it
 * was written. A change takes effect at that moment however late a bucket it governs is next touched, so
 * a decision needs the values between the bucket's last write and now, not only the latest one.
 *
 * Histories are bounded: an entry keeps its last MAX_VERSIONS versions. A bucket left untouched across more
 * changes of one entry than that forgets the oldest ones: it converts at the oldest kept version, from the
 * policy it was written under, as if the forgotten changes had not happened (documented in the README).
 */
export interface Version<T> {
  /** Store-clock ms from which `value` holds; 0 for a value configured in code (always held). */
  readonly since: number
  /** null: the entry was removed at `since` (an assignment taken away, a custom bucket deleted). */
  readonly value: T | null
}

export type Versions<T> = readonly Version<T>[]

export const MAX_VERSIONS = 16

/** The value in force at `t`: the latest version with since ≤ t; null before the first one. */
export function valueAt<T>(versions: Versions<T> | undefined, t: number): T | null {
  if (versions === undefined) return null
  for (let i = versions.length - 1; i >= 0; i--) {
    const version = versions[i]!
    if (version.since <= t) return version.value
  }
  return null
}

/** The newest value, whatever its moment. */
export function latest<T>(versions: Versions<T> | undefined): T | null {
  return versions === undefined || versions.length === 0 ? null : versions[versions.length - 1]!.value
}

/** The newest moment of change, 0 when there is none. */
export function latestSince(versions: Versions<unknown> | undefined): number {
  return versions === undefined || versions.length === 0 ? 0 : versions[versions.length - 1]!.since
}

/**
 * The history with one more version. A version at or before the newest one's moment replaces it (two changes
 * in one ms: the later wins); the oldest versions past MAX_VERSIONS are dropped.
 */
export function appendVersion<T>(
  versions: Versions<T> | undefined,
  since: number,
  value: T | null,
): Version<T>[] {
  const next = versions ? versions.slice() : []
  while (next.length > 0 && next[next.length - 1]!.since >= since) next.pop()
  next.push({ since, value })
  return next.length > MAX_VERSIONS ? next.slice(next.length - MAX_VERSIONS) : next
}
