import { assess, type BucketResult, type BucketState, settle } from './algorithm.js'
import type { Policy } from './policy.js'

export interface ChainEntry {
  readonly state: BucketState | undefined
  readonly policy: Policy
  readonly cost: number
}

export interface ChainOutcome {
  readonly allowed: boolean
  readonly results: BucketResult[]
  /** The state to write per entry; undefined where nothing changed. */
  readonly states: (BucketState | undefined)[]
}

/**
 * All-or-nothing over a chain (user → org → global): every bucket is assessed at the same `now`;
 * if all have room every one is charged, otherwise none is. Stores call this inside whatever makes
 * them atomic (one JavaScript turn, one Lua script).
 */
export function evaluateChain(entries: readonly ChainEntry[], now: number): ChainOutcome {
  const assessments = entries.map((entry) => assess(entry.state, entry.policy, now, entry.cost))
  const allowed = assessments.every((a) => a.fits)
  const results: BucketResult[] = []
  const states: (BucketState | undefined)[] = []
  for (const a of assessments) {
    const settled = settle(a, allowed && a.cost > 0)
    results.push(settled.result)
    states.push(settled.state)
  }
  return { allowed, results, states }
}
