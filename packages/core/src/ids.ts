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
