import { type Assessment, assess, type BucketResult, type BucketState, settle } from './algorithm.js'
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
  const n = entries.length
  // Stryker disable next-line ArrayDeclaration: pre-sizing only; the loop writes every index
  const assessments: Assessment[] = new Array(n)
  let allowed = true
  for (let i = 0; i < n; i++) {
    const entry = entries[i]!
    const a = assess(entry.state, entry.policy, now, entry.cost)
    assessments[i] = a
    if (!a.fits) allowed = false
  }
  // Stryker disable next-line ArrayDeclaration: pre-sizing only; the loop writes every index
  const results: BucketResult[] = new Array(n)
  // Stryker disable next-line ArrayDeclaration: pre-sizing only; the loop writes every index
  const states: (BucketState | undefined)[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const a = assessments[i]!
    const settled = settle(a, allowed && a.cost > 0)
    results[i] = settled.result
    states[i] = settled.state
  }
  return { allowed, results, states }
}
