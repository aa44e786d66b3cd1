import { type BucketState, convertDebt, sameScale, stateFromDebt } from './algorithm.js'
import type { PolicyBook } from './book.js'
import { changeMoments, mayHaveChanged, policyAt, type TenantEntries, tierAt } from './resolve.js'

/**
 * Brings a stored state through every registry change made since it was written, each at its own moment:
 * at a change, the tokens held then count under the old policy, clamped to the new capacity, and the new
 * rate applies from then on (convertDebt at that moment). Returns undefined once the bucket is full: a full
 * bucket is full under any policy, so later changes cannot matter.
 *
 * Pure: the same state, registry and `now` always give the same result, so a read that does not write
 * changes no later decision. Redis runs the same steps in Lua (packages/redis/src/scripts.ts).
 */
export function advance(
  state: BucketState | undefined,
  book: PolicyBook,
  levelIndex: number,
  entries: readonly (TenantEntries | undefined)[],
  forcedTier: string | undefined,
  now: number,
): BucketState | undefined {
  if (state === undefined || !mayHaveChanged(book, levelIndex, entries)) return state
  // Changes at the very ms of the write count too: one made just after it must not be missed, and one made
  // just before it already resolves to the state's own policy (nothing to convert).
  const moments = changeMoments(book, levelIndex, entries, forcedTier, state.epoch - 1, now)
  let current: BucketState = state
  for (const moment of moments) {
    const resolved = policyAt(
      book,
      levelIndex,
      entries[levelIndex],
      tierAt(book, entries, forcedTier, moment),
      moment,
    )
    if (resolved === undefined || sameScale(current, resolved.policy)) continue
    const debt = convertDebt(current, resolved.policy, moment)
    if (debt === 0) return undefined
    current = stateFromDebt(debt, resolved.policy, resolved.policy.tokens === 0 ? 0 : moment, moment)
  }
  return current
}
