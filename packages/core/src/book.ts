import type { BlockRule } from './block.js'
import { DEFAULT_LIMITER_NAME } from './names.js'
import type { Policy } from './policy.js'
import type { Versions } from './versions.js'

/**
 * Everything a store needs to know of a limiter's policies to decide on its own: the chain's levels, a base
 * policy per level, and each tier's policy per level with its history (runtime `updateLimits` adds versions).
 * Per-tenant entries (assignments, custom buckets) are not here: they live in the store beside the buckets
 * they govern, and the store reads them in the same step as the bucket state.
 *
 * A book is immutable; the limiter makes a new one (with a new `version`) when tier definitions change, so a
 * store may cache what it derives from a book (a generated script, a policy table) by `version`.
 */
export interface PolicyBook {
  /** Unique per book in this process; stores may key caches on it. */
  readonly version: number
  /** The limiter's name: a store keeps every bucket and registry entry of this book under it. */
  readonly namespace: string
  readonly levels: readonly string[]
  /** A policy per level index that applies whatever the tier (where the tier has none). */
  readonly base: readonly (Policy | undefined)[]
  /** Tier name → per level index → the tier's policy over time (configured ones hold from since 0). */
  readonly tiers: ReadonlyMap<string, readonly (Versions<Policy> | undefined)[]>
  /** The tier of chains with no assignment; undefined when the limiter has no tiers. */
  readonly defaultTier: string | undefined
  /** Blocking repeat offenders (block.ts): the store counts refusals and blocks buckets itself. */
  readonly block?: BlockRule
}

let nextBookVersion = 1

/** A new book; `namespace` defaults to the default limiter name. */
export function makeBook(
  book: Omit<PolicyBook, 'version' | 'namespace'> & { readonly namespace?: string },
): PolicyBook {
  return Object.freeze({
    ...book,
    namespace: book.namespace ?? DEFAULT_LIMITER_NAME,
    version: nextBookVersion++,
  })
}
