import type { BucketResult, Policy, PolicyBook, Store } from '@tollgate/core/store'
import { makeBook } from '@tollgate/core/store'

/** One bucket with an explicit policy, for tests that drive a store below the limiter. */
export interface TestOp {
  readonly level: string
  readonly key: string
  readonly policy: Policy
  readonly cost: number
}

const books = new Map<string, PolicyBook>()

/** A book whose levels are the ops' levels with the ops' policies as base policies (cached: one script each). */
function bookFor(ops: readonly TestOp[]): PolicyBook {
  const id = ops.map((op) => `${op.level}\u0000${op.policy.id}`).join('\u0001')
  let book = books.get(id)
  if (!book) {
    book = makeBook({
      levels: ops.map((op) => op.level),
      base: ops.map((op) => op.policy),
      tiers: new Map(),
      defaultTier: undefined,
    })
    books.set(id, book)
  }
  return book
}

/** Decides a chain of explicit ops on a store (all with one cost), as the limiter would with base policies. */
export async function consumeOps(
  store: Store,
  ops: readonly TestOp[],
): Promise<{ allowed: boolean; now: number; results: BucketResult[] }> {
  const cost = ops[0]?.cost ?? 0
  if (ops.some((op) => op.cost !== cost)) throw new Error('consumeOps: every op of a chain has one cost')
  const result = await store.decide({ book: bookFor(ops), keys: ops.map((op) => op.key), cost })
  return {
    allowed: result.allowed,
    now: result.now,
    results: result.levels.map(({ allowed, remaining, resetAfterMs, retryAfterMs, delayMs }) => ({
      allowed,
      remaining,
      resetAfterMs,
      retryAfterMs,
      delayMs,
    })),
  }
}
