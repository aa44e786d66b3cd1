/**
 * A reference token bucket written independently of core's GCRA: the number of tokens as an exact
 * rational (BigInt numerator / denominator), refilled by elapsed × rate and capped. The conformance
 * suite compares every store against it decision by decision.
 */
export interface ModelPolicy {
  capacity: number
  /** tokens per `per` ms; tokens 0 never refills. */
  tokens: number
  per: number
}

interface Rational {
  n: bigint
  d: bigint
}

const big = BigInt
const min = (a: Rational, b: Rational): Rational => (a.n * b.d <= b.n * a.d ? a : b)
const add = (a: Rational, b: Rational): Rational => ({ n: a.n * b.d + b.n * a.d, d: a.d * b.d })
const sub = (a: Rational, b: Rational): Rational => ({ n: a.n * b.d - b.n * a.d, d: a.d * b.d })
const mul = (a: Rational, b: Rational): Rational => ({ n: a.n * b.n, d: a.d * b.d })
const whole = (x: number | bigint): Rational => ({ n: big(x), d: 1n })
const ge = (a: Rational, b: Rational): boolean => a.n * b.d >= b.n * a.d
function floorOf(a: Rational): number {
  const q = a.n / a.d
  return Number(a.n < 0n && q * a.d !== a.n ? q - 1n : q)
}
function ceilOf(a: Rational): number {
  return -floorOf({ n: -a.n, d: a.d })
}

export interface ModelResult {
  allowed: boolean
  remaining: number
  retryAfterMs: number
  resetAfterMs: number
}

export class ModelBucket {
  private level: Rational
  private at: number
  private policy: ModelPolicy

  constructor(policy: ModelPolicy, now: number) {
    this.policy = policy
    this.level = whole(policy.capacity)
    this.at = now
  }

  private refill(now: number): void {
    const { tokens, per, capacity } = this.policy
    if (tokens > 0 && now > this.at) {
      this.level = min(add(this.level, { n: big(now - this.at) * big(tokens), d: big(per) }), whole(capacity))
    }
    this.at = Math.max(this.at, now)
  }

  /** Refills under the old policy, then keeps the tokens (clamped) under the new one; a full bucket stays full. */
  private adopt(policy: ModelPolicy): void {
    const old = this.policy
    if (old.capacity === policy.capacity && old.tokens === policy.tokens && old.per === policy.per) return
    const full = ge(this.level, whole(old.capacity))
    this.policy = policy
    if (full) {
      this.level = whole(policy.capacity)
      return
    }
    const kept = min(this.level, whole(policy.capacity))
    // The new policy counts in sub-units of 1/per token (1 for a bucket that never refills): round the debt up.
    const unit = policy.tokens === 0 ? 1 : policy.per
    const debtUnits = ceilOf(mul(sub(whole(policy.capacity), kept), whole(unit)))
    this.level = sub(whole(policy.capacity), { n: big(debtUnits), d: big(unit) })
  }

  /** A copy, to decide on without keeping the result (a look, a refusal). */
  clone(): ModelBucket {
    const copy = new ModelBucket(this.policy, this.at)
    copy.level = this.level
    return copy
  }

  /** A registry change at `at`: the tokens held then stay (clamped); the new rate applies from then on. */
  changeTo(policy: ModelPolicy, at: number): void {
    this.refill(at)
    this.adopt(policy)
  }

  wouldFit(policy: ModelPolicy, now: number, cost: number): boolean {
    this.refill(now)
    this.adopt(policy)
    return ge(this.level, whole(cost === 0 ? 1 : cost))
  }

  /** Call after wouldFit at the same `now`: charges when `charge`, then reports. */
  settle(cost: number, charge: boolean): ModelResult {
    const need = cost === 0 ? 1 : cost
    const allowed = ge(this.level, whole(need))
    if (charge) this.level = sub(this.level, whole(cost))
    const { tokens, per, capacity } = this.policy
    const remaining = Math.max(0, floorOf(this.level))
    const missingToFull = sub(whole(capacity), this.level)
    const resetAfterMs =
      missingToFull.n === 0n
        ? 0
        : tokens === 0
          ? Number.POSITIVE_INFINITY
          : ceilOf(mul(missingToFull, { n: big(per), d: big(tokens) }))
    let retryAfterMs = 0
    if (!allowed) {
      retryAfterMs =
        tokens === 0 || need > capacity
          ? Number.POSITIVE_INFINITY
          : ceilOf(mul(sub(whole(need), this.level), { n: big(per), d: big(tokens) }))
    }
    return { allowed, remaining, retryAfterMs, resetAfterMs }
  }
}
