import { DEFAULT_LIMITER_NAME } from './names.js'

/**
 * The one id format for a (level, key) pair in process: joined by a NUL, which no level name may contain
 * (levels are validated), so no two pairs share an id whatever the keys hold.
 */
export function bucketId(level: string, key: string): string {
  return `${level}\u0000${key}`
}

export function splitBucketId(id: string): [level: string, key: string] {
  const at = id.indexOf('\u0000')
  return [id.slice(0, at), id.slice(at + 1)]
}

/**
 * A bucket's id in a store shared by limiters: the default limiter's as `bucketId` (the layout before names),
 * a named one's led by a NUL and its name (no name or level holds a NUL, and no default id starts with one).
 */
export function namespacedId(namespace: string, level: string, key: string): string {
  return namespace === DEFAULT_LIMITER_NAME
    ? `${level}\u0000${key}`
    : `\u0000${namespace}\u0000${level}\u0000${key}`
}

/** The (namespace, level, key) of a `namespacedId`; undefined for a string no namespacedId makes. */
export function splitNamespacedId(id: string): [namespace: string, level: string, key: string] | undefined {
  if (!id.startsWith('\u0000')) {
    const at = id.indexOf('\u0000')
    return at < 0 ? undefined : [DEFAULT_LIMITER_NAME, id.slice(0, at), id.slice(at + 1)]
  }
  const afterName = id.indexOf('\u0000', 1)
  const afterLevel = afterName < 0 ? -1 : id.indexOf('\u0000', afterName + 1)
  if (afterLevel < 0) return undefined
  return [id.slice(1, afterName), id.slice(afterName + 1, afterLevel), id.slice(afterLevel + 1)]
}
