import { describeValue, ErrorCode, TollgateError } from './errors.js'

/**
 * The name of a limiter that is given none. Stores keep its buckets and registry entries in the layout of the
 * releases before names, so data written by them keeps working.
 */
export const DEFAULT_LIMITER_NAME = 'default'

/** Names claimed per keyspace (a store, or what several store objects share: one Redis client and prefix). */
const claims = new WeakMap<object, Map<string, object>>()

/**
 * Claims `name` in `keyspace` for one limiter, or throws ERR_TOLLGATE_DUPLICATE_NAME when a limiter that was
 * not closed holds it: two limiters with one name on one store would drain each other's buckets. Returns the
 * release, which `close()` calls.
 */
export function claimName(keyspace: object, name: string): () => void {
  let names = claims.get(keyspace)
  if (!names) {
    names = new Map()
    claims.set(keyspace, names)
  }
  if (names.has(name)) {
    throw new TollgateError(
      ErrorCode.DuplicateName,
      `name ${describeValue(name)} is already taken by another limiter on this store: two limiters with one ` +
        'name share every bucket. Give each limiter its own name (createLimiter({ name })), or close() the ' +
        'other first',
      { field: 'name', value: name },
    )
  }
  const owner = {}
  names.set(name, owner)
  const held = names
  return () => {
    if (held.get(name) === owner) held.delete(name)
  }
}
