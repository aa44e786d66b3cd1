import type { Policy } from './policy.js'
import type { LevelResult } from './store.js'

/**
 * The generic cell rate algorithm (GCRA) over integer time.
 *
 * A bucket's state is its theoretical arrival time (TAT): the instant at which the bucket would be full
 * again. It is kept as whole milliseconds `tat` plus `frac` sub-units, where one millisecond is `tokens`
 * sub-units and one token is `per` sub-units (see Policy). With k = tokens and T = per:
 *
 *   debt   = max(0, (tat − now)·k + frac)         sub-units still owed; 0 means full
 *   limit  = capacity·T                           the most debt a bucket may hold
 *   a request of cost c fits   ⇔  debt + c·T ≤ limit
 *   after it, tat·k + frac = now·k + debt + c·T   (split back into whole ms and a remainder < k)
 *   remaining   = ⌊(limit − debt′)/T⌋             whole tokens left
 *   resetAfter  = ⌈debt′/k⌉ ms                    until full again (the key's expiry)
 *   retryAfter  = ⌈(debt + c·T − limit)/k⌉ ms     until the refused request would fit
 *
 * Every figure is an integer below 2^53, so the admitted total over any horizon is exactly
 * capacity + rate × elapsed, rounded down: nothing drifts at 0.3/s or 1/h.
 *
 * A bucket with rate 0 never refills: its clock is frozen at 0 and k = T = 1, so `tat` counts tokens spent.
 * The leaky bucket is the same meter seen from the other side (level = debt): in `reject` mode it admits
 * exactly what the token bucket admits; in `delay` mode an admitted request also waits ⌈debt/k⌉ ms, the time
 * for the requests ahead of it to drain, which spaces requests at the rate (nginx `limit_req` without `nodelay`).
 */
export interface BucketState {
  /** Whole ms of the theoretical arrival time (rate 0: tokens spent). */
  tat: number
  /** Sub-units past `tat`, 0 ≤ frac < tokens. */
  frac: number
  /** The policy this state was written under: capacity, tokens, per. A state read under another policy is converted. */
  capacity: number
  tokens: number
  per: number
  /** When it was written (store-clock ms): registry changes from then on apply at their own moments. */
  epoch: number
}

/** One bucket's figures for one decision. */
export interface BucketResult {
  /** This bucket had room for the cost (for cost 0: for one token). */
  allowed: boolean
  /** Whole tokens left after this decision. */
  remaining: number
  /** ms until the bucket is full again; Infinity when it never refills. */
  resetAfterMs: number
  /** ms until a refused cost would fit; 0 when allowed; Infinity when it never can. */
  retryAfterMs: number
  /** leaky-bucket delay mode: ms the request should be held before it passes; otherwise 0. */
  delayMs: number
  /** Set (true) when refused because the bucket is blocked: it owes more than a full bucket holds (block.ts). */
  blocked?: boolean
}

/** The outcome of looking at one bucket, before the chain decides whether to charge it. */
export interface Assessment {
  readonly policy: Policy
  readonly cost: number
  readonly fits: boolean
  /** Sub-units owed before this request (after conversion to the current policy). */
  readonly debt: number
  /** The time origin of this policy: `now`, or 0 for a frozen (rate 0) bucket. */
  readonly origin: number
  /** A stored state had to be converted to the current policy (written only if the bucket is charged). */
  readonly converted: boolean
}

// k (sub-units per ms) and T (sub-units per token) of a policy; rate 0 is frozen: k = T = 1. Two functions,
// not one returning { k, T }: these run per level of every decision, and an object each time is garbage.
const kOf = (policy: Policy): number => (policy.tokens === 0 ? 1 : policy.tokens)
// Stryker disable next-line ConditionalExpression: a rate-0 policy has per 1 (normalizePolicy), so policy.per is already 1
const tOf = (policy: Policy): number => (policy.tokens === 0 ? 1 : policy.per)

/** Sub-units a state owes at `now`, under the policy it was written with. */
function debtUnderOwnPolicy(state: BucketState, now: number): number {
  const frozen = state.tokens === 0
  const k = frozen ? 1 : state.tokens
  const origin = frozen ? 0 : now
  return Math.max(0, (state.tat - origin) * k + state.frac)
}

export function sameScale(state: BucketState, policy: Policy): boolean {
  return state.capacity === policy.capacity && state.tokens === policy.tokens && state.per === policy.per
}

/**
 * A state written under another policy keeps its history: the tokens it had stay, clamped to the new
 * capacity (no free refill), and are re-expressed as debt under the new policy, rounded up (never a gift).
 * `now` is the moment of the change: a registry change converts at its own moment (see advance.ts); a policy
 * changed in code (a deploy) converts when the bucket is next charged.
 */
export function convertDebt(state: BucketState, policy: Policy, now: number): number {
  const oldDebt = debtUnderOwnPolicy(state, now)
  // A full bucket is the same as no bucket (full buckets expire): it is full under the new policy too.
  if (oldDebt === 0) return 0
  // Stryker disable next-line ConditionalExpression: a rate-0 policy has per 1 (normalizePolicy), so state.per is already 1
  const oldT = state.tokens === 0 ? 1 : state.per
  const T = tOf(policy)
  // In old sub-units: held = the tokens it has × oldT, missing = what the new capacity lacks of them × oldT.
  const held = state.capacity * oldT - oldDebt
  // Stryker disable next-line EqualityOperator: at held = 0 the division below gives capacity × T as well
  if (held <= 0) return policy.capacity * T
  const missing = policy.capacity * oldT - held
  // Stryker disable next-line EqualityOperator: at missing = 0 the division below gives 0 as well
  if (missing <= 0) return 0
  // debt = ⌈missing·T / oldT⌉, in integers: as floating point, 16.9919 tokens of an hour came out 1 ms long.
  return ceilMulDiv(missing, T, oldT)
}

/**
 * ⌈a·b / c⌉ for whole a, b ≥ 0 and c ≥ 1, exact while a and b·c are below 2^53: a = q·c + r, so
 * a·b/c = q·b + r·b/c with r·b < b·c. Flooring a floating-point quotient of such integers gives their integer
 * quotient: the next integer is at least 1/c away, more than half a unit in the last place of a/c (< 2/c).
 * Beyond that (two intervals of days each) it is floating point, rounded up.
 */
export function ceilMulDiv(a: number, b: number, c: number): number {
  // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: past 2^53 neither way is exact, and 2M random cases there found them equal: no test can tell
  if (b * c > Number.MAX_SAFE_INTEGER) return Math.ceil((a * b) / c)
  const q = Math.floor(a / c)
  const rb = (a - q * c) * b
  const q2 = Math.floor(rb / c)
  return q * b + q2 + (rb - q2 * c > 0 ? 1 : 0)
}

export function assess(
  state: BucketState | undefined,
  policy: Policy,
  now: number,
  cost: number,
): Assessment {
  return assessInto(newAssessment(), state, policy, now, cost)
}

/** An Assessment to fill (a store's scratch, reused decision after decision). */
export type AssessmentScratch = { -readonly [K in keyof Assessment]: Assessment[K] }

// Stryker disable next-line ObjectLiteral,BooleanLiteral: a scratch: assessInto writes every field before any is read
export const newAssessment = (): AssessmentScratch => ({
  policy: undefined as unknown as Policy,
  cost: 0,
  // Stryker disable next-line BooleanLiteral: as above
  fits: false,
  debt: 0,
  origin: 0,
  // Stryker disable next-line BooleanLiteral: as above
  converted: false,
})

/** assess, written into `into` (no allocation on the hot path); returns `into`. */
export function assessInto(
  into: AssessmentScratch,
  state: BucketState | undefined,
  policy: Policy,
  now: number,
  cost: number,
): AssessmentScratch {
  const origin = policy.tokens === 0 ? 0 : now
  let debt = 0
  let converted = false
  if (state) {
    if (sameScale(state, policy)) debt = Math.max(0, (state.tat - origin) * kOf(policy) + state.frac)
    else {
      debt = convertDebt(state, policy, now)
      converted = true
    }
  }
  return assessDebtInto(into, policy, debt, now, cost, converted)
}

/**
 * The assessment of a bucket owing `debt` sub-units at `now` (already under `policy`): for stores that
 * compute the debt themselves (the Redis script) and leave the rest of the maths here.
 */
export function assessDebt(
  policy: Policy,
  debt: number,
  now: number,
  cost: number,
  converted = false,
): Assessment {
  return assessDebtInto(newAssessment(), policy, debt, now, cost, converted)
}

/** assessDebt, written into `into` (a store's scratch); returns `into`. */
export function assessDebtInto(
  into: AssessmentScratch,
  policy: Policy,
  debt: number,
  now: number,
  cost: number,
  converted: boolean,
): AssessmentScratch {
  const T = tOf(policy)
  // A peek (cost 0) asks whether one token is there, so capacity 0 refuses even a peek.
  const probe = cost === 0 ? T : cost * T
  into.policy = policy
  into.cost = cost
  into.fits = debt + probe <= policy.capacity * T
  into.debt = debt
  into.origin = policy.tokens === 0 ? 0 : now
  into.converted = converted
  return into
}

/** Figures and the state to write, given whether the chain charges this bucket. */
export function settle(
  a: Assessment,
  charge: boolean,
): { result: BucketResult; state: BucketState | undefined } {
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: settleInto writes every field before any is read
  const result: BucketResult = { allowed: false, remaining: 0, resetAfterMs: 0, retryAfterMs: 0, delayMs: 0 }
  const debt = settleInto(a, charge, result)
  // Stryker disable next-line EqualityOperator: a charge always owes more than 0 (a cost-0 check does not charge)
  return { result, state: debt < 0 ? undefined : stateFromDebt(debt, a.policy, a.origin) }
}

/**
 * settle's figures, written into `into` (a store's own result object: no allocation on the hot path).
 * Returns the debt to write when the chain charges the bucket, else -1.
 */
export function settleInto(a: Assessment, charge: boolean, into: BucketResult): number {
  const { policy } = a
  const k = kOf(policy)
  const T = tOf(policy)
  const frozen = policy.tokens === 0
  const limit = policy.capacity * T
  const debt = charge ? a.debt + a.cost * T : a.debt
  let retryAfterMs = 0
  if (!a.fits) {
    const probe = a.cost === 0 ? T : a.cost * T
    retryAfterMs =
      frozen || probe > limit ? Number.POSITIVE_INFINITY : Math.ceil((a.debt + probe - limit) / k)
  }
  into.allowed = a.fits
  into.remaining = Math.max(0, Math.floor((limit - debt) / T))
  into.resetAfterMs = debt === 0 ? 0 : frozen ? Number.POSITIVE_INFINITY : Math.ceil(debt / k)
  into.retryAfterMs = retryAfterMs
  into.delayMs = charge && policy.mode === 'delay' && !frozen ? Math.ceil(a.debt / k) : 0
  // Only a block (block.ts) makes a bucket owe more than a full one holds.
  if (a.debt > limit) into.blocked = true
  // Only a charge writes: a look (a peek, a refusal, getBucket) never changes what a later decision sees.
  return charge ? debt : -1
}

/** The state owing `debt` sub-units under `policy`, counted from `origin` (now, or 0 when frozen). */
export function stateFromDebt(debt: number, policy: Policy, origin: number, epoch = 0): BucketState {
  const k = policy.tokens === 0 ? 1 : policy.tokens
  return {
    tat: origin + Math.floor(debt / k),
    frac: debt % k,
    capacity: policy.capacity,
    tokens: policy.tokens,
    per: policy.per,
    epoch,
  }
}

/** One bucket on its own: charge it when the cost fits. */
export function decide(
  state: BucketState | undefined,
  policy: Policy,
  now: number,
  cost: number,
): { result: BucketResult; state: BucketState | undefined } {
  const a = assess(state, policy, now, cost)
  return settle(a, a.fits && cost > 0)
}

/** ms after which a written state may be dropped: the bucket is full again by then. Infinity for rate 0. */
export function stateTtlMs(state: BucketState, now: number): number {
  if (state.tokens === 0) return Number.POSITIVE_INFINITY
  return Math.max(0, state.tat - now + (state.frac > 0 ? 1 : 0))
}

/**
 * A level's result with every field in place from the start (one object shape for the engine), its figures
 * zero until settleInto writes them.
 */
export function newLevelResult(
  levelIndex: number,
  level: string,
  key: string,
  policy: Policy,
  custom: boolean,
): LevelResult {
  return {
    levelIndex,
    level,
    key,
    policy,
    limit: policy.capacity,
    custom,
    // Stryker disable next-line BooleanLiteral: every caller has settleInto write it before it is read
    allowed: false,
    remaining: 0,
    resetAfterMs: 0,
    retryAfterMs: 0,
    delayMs: 0,
  }
}
