import { type Duration, parseDuration } from './duration.js'
import { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'

export type Algorithm = 'token-bucket' | 'leaky-bucket'
export type LeakyMode = 'reject' | 'delay'

/** How a user writes a policy. */
export interface PolicyInput {
  /** Default `'token-bucket'`. */
  algorithm?: Algorithm
  /** Leaky bucket only: `'reject'` (default) refuses overflow; `'delay'` admits with a wait while the queue has room. */
  mode?: LeakyMode
  /** Burst size (token bucket) or queue size (leaky bucket): whole tokens, 0 or more. */
  capacity: number
  /** Tokens per interval (`{ tokens: 10, per: '1s' }`) or a number of tokens per second (`0.3`). 0 never refills. */
  refill: { tokens: number; per: Duration } | number
}

/**
 * A validated policy. The rate is kept as an exact fraction: `tokens` whole tokens every `per` ms,
 * reduced by their greatest common divisor, so 0.3/s is 3 per 10000 ms and 1/h is 1 per 3600000 ms.
 * Algorithms count time in sub-units of 1/tokens ms, in which one token costs exactly `per` sub-units:
 * every quantity is an integer, so nothing drifts however long a bucket lives.
 */
export interface Policy {
  readonly algorithm: Algorithm
  readonly mode: LeakyMode
  readonly capacity: number
  /** Whole tokens per `per` ms; 0 means the bucket never refills. */
  readonly tokens: number
  /** Interval in whole ms (1 when tokens is 0). */
  readonly per: number
  /** Stable text form, e.g. `tb:10:1:100` — equal policies have equal ids. */
  readonly id: string
}

/** Sub-unit products must stay exact in IEEE doubles (JavaScript and Redis Lua alike). */
const maxExact = Number.MAX_SAFE_INTEGER
export const MAX_CAPACITY = 1_000_000_000
/** Largest denominator tried when turning a fractional rate into a fraction. */
const maxRateDenominator = 1e12

export const DEFAULT_POLICY_INPUT: PolicyInput = { capacity: 5, refill: { tokens: 1, per: '1s' } }

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}

/** Best fraction n/d for x (continued fractions) with d ≤ maxDen; undefined when not exact to 1e-12. */
function toFraction(x: number, maxDen: number): [number, number] | undefined {
  let [h0, h1, k0, k1] = [0, 1, 1, 0]
  let y = x
  for (let i = 0; i < 64; i++) {
    const a = Math.floor(y)
    const h2 = a * h1 + h0
    const k2 = a * k1 + k0
    if (k2 > maxDen || h2 > maxExact) break
    ;[h0, h1, k0, k1] = [h1, h2, k1, k2]
    const rest = y - a
    if (Math.abs(h1 / k1 - x) <= Math.abs(x) * 1e-12 || rest === 0) break
    y = 1 / rest
  }
  if (k1 === 0 || Math.abs(h1 / k1 - x) > Math.abs(x) * 1e-12) return undefined
  return [h1, k1]
}

function policyError(field: string, value: unknown, expectation: string): TollgateError {
  return invalid(ErrorCode.InvalidPolicy, field, value, expectation)
}

/** Validates a policy once, when it is defined. Throws ERR_TOLLGATE_INVALID_POLICY naming the field. */
export function normalizePolicy(input: unknown, field = 'policy'): Policy {
  if (isPolicy(input)) return input
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw policyError(field, input, 'an object like { capacity: 10, refill: { tokens: 10, per: "1s" } }')
  }
  const raw = input as Record<string, unknown>
  const algorithm = raw.algorithm ?? 'token-bucket'
  if (algorithm !== 'token-bucket' && algorithm !== 'leaky-bucket') {
    throw policyError(`${field}.algorithm`, algorithm, "'token-bucket' or 'leaky-bucket'")
  }
  const mode = raw.mode ?? 'reject'
  if (mode !== 'reject' && mode !== 'delay') throw policyError(`${field}.mode`, mode, "'reject' or 'delay'")
  if (mode === 'delay' && algorithm !== 'leaky-bucket') {
    throw policyError(`${field}.mode`, mode, "'reject' unless algorithm is 'leaky-bucket'")
  }
  const capacity = raw.capacity
  if (
    typeof capacity !== 'number' ||
    !Number.isInteger(capacity) ||
    capacity < 0 ||
    capacity > MAX_CAPACITY
  ) {
    throw policyError(`${field}.capacity`, capacity, `a whole number from 0 to ${MAX_CAPACITY}`)
  }
  let tokensRaw: unknown
  let perMs: number
  if (typeof raw.refill === 'number') {
    tokensRaw = raw.refill
    perMs = 1000
  } else if (typeof raw.refill === 'object' && raw.refill !== null) {
    const refill = raw.refill as Record<string, unknown>
    tokensRaw = refill.tokens
    try {
      perMs = parseDuration(refill.per, `${field}.refill.per`)
    } catch (error) {
      throw new TollgateError(ErrorCode.InvalidPolicy, (error as Error).message, {
        field: `${field}.refill.per`,
        value: refill.per,
      })
    }
  } else {
    throw policyError(
      `${field}.refill`,
      raw.refill,
      "a number per second or { tokens, per } like { tokens: 10, per: '1s' }",
    )
  }
  const tokensField = typeof raw.refill === 'number' ? `${field}.refill` : `${field}.refill.tokens`
  if (typeof tokensRaw !== 'number' || !Number.isFinite(tokensRaw) || tokensRaw < 0) {
    throw policyError(tokensField, tokensRaw, 'a finite number of tokens, 0 or more')
  }
  let tokens: number
  let per: number
  if (tokensRaw === 0) {
    tokens = 0
    per = 1
  } else if (Number.isInteger(tokensRaw) && Number.isInteger(perMs)) {
    const divisor = gcd(tokensRaw, perMs)
    tokens = tokensRaw / divisor
    per = perMs / divisor
  } else {
    const fraction = toFraction(tokensRaw / perMs, maxRateDenominator)
    // A positive rate too small to write as a fraction (it would round to 0) must not turn into "never refills".
    if (!fraction || fraction[0] === 0) {
      throw policyError(
        tokensField,
        tokensRaw,
        `a rate expressible as a fraction (got ${describeValue(tokensRaw)} per ${perMs} ms)`,
      )
    }
    ;[tokens, per] = fraction
  }
  // Bounds that keep every sub-unit quantity an exact integer (see Policy).
  if (capacity * per > maxExact || (capacity + 1) * per > maxExact) {
    throw policyError(
      `${field}.capacity`,
      capacity,
      `small enough that capacity × interval stays exact (interval ${per} ms per token)`,
    )
  }
  if (tokens > 1e9) throw policyError(tokensField, tokensRaw, 'at most 1e9 tokens per millisecond')
  const prefix = algorithm === 'token-bucket' ? 'tb' : mode === 'delay' ? 'lbd' : 'lb'
  const policy: Policy = Object.freeze({
    algorithm,
    mode,
    capacity,
    tokens,
    per,
    id: `${prefix}:${capacity}:${tokens}:${per}`,
  })
  validated.add(policy)
  return policy
}

const validated = new WeakSet<object>()

/** True for a policy that normalizePolicy returned (so it needs no second validation). */
export function isPolicy(value: unknown): value is Policy {
  return typeof value === 'object' && value !== null && validated.has(value)
}

/** Tokens per second, for display and headers. */
export function ratePerSecond(policy: Policy): number {
  return policy.tokens === 0 ? 0 : (policy.tokens * 1000) / policy.per
}

/** Seconds to refill a whole bucket (the `w` of RateLimit-Policy); undefined when the bucket never refills. */
export function windowSeconds(policy: Policy): number | undefined {
  if (policy.tokens === 0) return undefined
  return Math.max(1, Math.ceil((policy.capacity * policy.per) / policy.tokens / 1000))
}

/** Turns a policy back into the input form (for storage and display). */
export function policyToInput(policy: Policy): PolicyInput {
  const base: PolicyInput = { capacity: policy.capacity, refill: { tokens: policy.tokens, per: policy.per } }
  if (policy.algorithm === 'leaky-bucket') return { algorithm: policy.algorithm, mode: policy.mode, ...base }
  return base
}

const parsedIds = new Map<string, Policy>()

/** The policy whose `id` this is (the registry stores ids); undefined for text no policy has as its id. */
export function policyFromId(id: string): Policy | undefined {
  const known = parsedIds.get(id)
  if (known) return known
  const match = /^(tb|lb|lbd):(\d+):(\d+):(\d+)$/.exec(id)
  if (!match) return undefined
  const [, prefix, capacity, tokens, per] = match
  let policy: Policy
  try {
    policy = normalizePolicy({
      algorithm: prefix === 'tb' ? 'token-bucket' : 'leaky-bucket',
      mode: prefix === 'lbd' ? 'delay' : 'reject',
      capacity: Number(capacity),
      refill: Number(tokens) === 0 ? 0 : { tokens: Number(tokens), per: Number(per) },
    })
  } catch {
    return undefined
  }
  if (policy.id !== id) return undefined
  if (parsedIds.size >= 10_000) parsedIds.clear()
  parsedIds.set(id, policy)
  return policy
}
