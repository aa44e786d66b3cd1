import { createHash } from 'node:crypto'
import { DEFAULT_LIMITER_NAME } from '@tollgate/core/store'

/**
 * Key layout (prefix defaults to `tollgate:`), for the limiter named `default` (createLimiter's default,
 * the layout from before names, so data written then keeps working):
 *
 *   bucket state      <prefix>{<level>:<key>}                  one slot per bucket (default)
 *                     <prefix>{<tag>}<level>:<key>             with the hashTag option: buckets of one tag share a slot
 *   tenant registry   <prefix>{<level>:<key>}:reg              beside its bucket (same slot): fields a, b
 *                     <prefix>{<tag>}<level>:<key>:reg
 *   refusal log       <prefix>{<level>:<key>}:refused          with `block`: recent refusals' ms (`t1,t2`), or
 *                                                              `b<ms>` while a block lasts; expires by itself
 *   call record       <first bucket of the call>:call:<id>     a script call's reply until it is answered (batch.ts)
 *   tier changes      <prefix>{registry}:tiers                 hash: <tier>=<level> → history
 *   tier version      <prefix>{registry}:version               bumped by every tier change, of any limiter
 *   pub/sub channel   <prefix>registry                         messages carry the limiter's name (ns)
 *   fleet heartbeats  <prefix>{fleet}:servers                  sorted set: server → its last beat (Redis ms)
 *
 * Any other limiter name leads the bucket name, before a `#`: `<prefix>{<name>#<level>:<key>}` (with hashTag
 * `<prefix>{<tag>}<name>#<level>:<key>`, the tag unchanged, so a chain still shares its slot); its tier
 * changes are in `<prefix>{registry}:tiers:<name>`. Escaping leaves a `#` only at the start of a hashed part,
 * so a `#` after the first character of a bucket name always ends a limiter name: no two limiters' names meet.
 *
 * A bucket name holds exactly one `:` (parts are escaped), so `…:reg` or `…:refused` can never be another bucket's key.
 *
 * Levels, keys and tags are escaped so that no user input can open or close a hash tag or fake a separator:
 * `%`, `{`, `}`, `:` and `#` become %XX, lone UTF-16 surrogates (which UTF-8 would fold into one U+FFFD) become
 * %uXXXX. A part longer than 128 characters after escaping is replaced by `#` + its SHA-256 (base64url),
 * so a 10 kB key costs a 44-byte name.
 */
const escapable = /[%{}:#]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
// Most parts hold nothing to escape: this plain test says so in a fifth of the time the replace takes.
const mayNeedEscaping = /[%{}:#\uD800-\uDFFF]/
const maxPartLength = 128

export function encodePart(part: string): string {
  const escaped = !mayNeedEscaping.test(part)
    ? part
    : part.replace(escapable, (c) =>
        c.length === 1 && c.charCodeAt(0) >= 0xd800
          ? `%u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
          : `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
      )
  if (escaped.length <= maxPartLength) return escaped
  return `#${createHash('sha256').update(escaped).digest('base64url')}`
}

/** Chooses which buckets share a Redis Cluster slot: buckets whose tags are equal do. */
export type HashTag = (level: string, key: string) => string

export function bucketKey(
  prefix: string,
  namespace: string,
  level: string,
  key: string,
  hashTag: HashTag | undefined,
): string {
  const bucket = `${encodePart(level)}:${encodePart(key)}`
  const name = namespace === DEFAULT_LIMITER_NAME ? bucket : `${encodePart(namespace)}#${bucket}`
  if (!hashTag) return `${prefix}{${name}}`
  // An empty tag `{}` would hash the whole key: '%' is never produced by escaping, so it is a safe stand-in.
  const tag = encodePart(hashTag(level, key)) || '%'
  return `${prefix}{${tag}}${name}`
}

/** The hash of a tenant's registry entries, in its bucket's slot. */
export function entryKey(bucket: string): string {
  return `${bucket}:reg`
}

/** The moments of a bucket's recent refusals (createLimiter's `block`), in its slot; expires after the span. */
export function refusalKey(bucket: string): string {
  return `${bucket}:refused`
}

export function tierHashKey(prefix: string, namespace: string): string {
  const key = `${prefix}{registry}:tiers`
  return namespace === DEFAULT_LIMITER_NAME ? key : `${key}:${encodePart(namespace)}`
}

export function tierVersionKey(prefix: string): string {
  return `${prefix}{registry}:version`
}

/** The registry of releases before changes applied at their moments: one hash per kind, ids not escaped. */
export function legacyRegistryKeys(prefix: string): string[] {
  return ['tier', 'assignment', 'bucket'].map((kind) => `${prefix}{registry}:${kind}`)
}

/** Where stores counting their fleet (`expectedServers: 'auto'`) stamp their heartbeats. */
export function fleetKey(prefix: string): string {
  return `${prefix}{fleet}:servers`
}

export function registryChannel(prefix: string): string {
  return `${prefix}registry`
}

const keyspaces = new WeakMap<object, Map<string, object>>()

/** One object per (client, prefix): stores made on them share every key, so a limiter name is claimed once. */
export function keyspaceOf(client: object, prefix: string): object {
  const byPrefix = keyspaces.get(client) ?? new Map<string, object>()
  keyspaces.set(client, byPrefix)
  const keyspace = byPrefix.get(prefix) ?? {}
  byPrefix.set(prefix, keyspace)
  return keyspace
}
