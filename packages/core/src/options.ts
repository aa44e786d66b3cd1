import { type BlockOption, type BlockRule, parseBlock } from './block.js'
import { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'
import type { LimiterListener, StoreErrorMode } from './events.js'
import { type Clock, monotonicClock } from './in-process.js'
import { DEFAULT_LIMITER_NAME } from './names.js'
import { DEFAULT_POLICY_INPUT, normalizePolicy, type Policy, type PolicyInput } from './policy.js'
import type { Store } from './store.js'
import { type Level, type LevelSpec, parseLevels, unknownLevel } from './subject.js'

/** A tier: a policy per level. Levels it leaves out fall back to `policies`. */
export type TierLimits = Readonly<Record<string, PolicyInput | Policy>>

export interface LimiterOptions {
  /** Where bucket state and the registry live. Default: an in-process store (bounded, 100k keys). */
  store?: Store
  /**
   * The limiter's namespace in its store: limiters sharing a store never touch each other's buckets or
   * registry entries, whatever their levels are called. Default `'default'` (the store's layout from before
   * names); a second limiter with the same name on one store is refused, so give each its own.
   */
  name?: string
  /** The chain, checked all-or-nothing, in order. Default `['key']`. A level named `global` has the fixed key `global`. */
  levels?: readonly LevelSpec[]
  /** One policy for every level (the simple case). */
  policy?: PolicyInput
  /** A policy per level, whatever the tier. */
  policies?: Readonly<Record<string, PolicyInput>>
  /** Named plans: per level policies that override `policies`. */
  tiers?: Readonly<Record<string, TierLimits>>
  /** The tier of subjects with no assignment. Default: the first tier. */
  defaultTier?: string
  /** ms clock for the default store, the fallback and the circuit breaker. */
  clock?: Clock
  /** What decides when the store fails: admit (`open`), refuse (`closed`), or in-process buckets (`local`, default). */
  onStoreError?: StoreErrorMode
  /**
   * `local` mode divides every limit by this many servers. Default 1. `'auto'`: by the fleet size the store
   * last counted (servers sharing it that beat within its expiry; needs a store with `joinFleet`, such as
   * redisStore), or 1 while it has never counted (a server that starts during an outage).
   */
  expectedServers?: number | 'auto'
  /** Consecutive store failures that open the circuit (default 3), and ms before a probe (default 1000). */
  breaker?: { failures?: number; cooldownMs?: number }
  /**
   * Blocks repeat offenders: a bucket refused `after` times within `within` refuses outright `for` that long
   * (Retry-After counts it down), in the store, so every server sharing it refuses too. Example:
   * `{ after: 5, within: '1m', for: '15m' }`. `levels` (default: the first) says whose buckets block.
   */
  block?: BlockOption
  onEvent?: LimiterListener
}

/** The options, checked once: what every part of the limiter reads. */
export interface LimiterConfig {
  readonly name: string
  readonly levels: readonly Level[]
  readonly levelNames: readonly string[]
  /** Per level index. */
  readonly base: readonly (Policy | undefined)[]
  /** Tier → per level index: the configured policies (runtime changes come from the registry). */
  readonly tiers: ReadonlyMap<string, readonly (Policy | undefined)[]>
  readonly defaultTier: string | undefined
  readonly clock: Clock
  readonly mode: StoreErrorMode
  readonly expectedServers: number | 'auto'
  readonly breakerFailures: number
  readonly breakerCooldownMs: number
  readonly block: BlockRule | undefined
}

const knownOptions = new Set([
  'store',
  'name',
  'levels',
  'policy',
  'policies',
  'tiers',
  'defaultTier',
  'clock',
  'onStoreError',
  'expectedServers',
  'breaker',
  'block',
  'onEvent',
])
const storeErrorModes: readonly StoreErrorMode[] = ['open', 'closed', 'local']

function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return invalid(ErrorCode.InvalidOption, field, value, expectation)
}

export function assertWholeNumber(value: unknown, field: string, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw optionError(field, value, `a whole number ≥ ${min}`)
  }
}

export function unknownTier(tiers: Iterable<string>, field: string, tier: unknown): TollgateError {
  const names = [...tiers].map((t) => JSON.stringify(t)).join(', ')
  return new TollgateError(
    ErrorCode.UnknownTier,
    `${field} must be one of ${names || '(no tiers defined)'}; got ${describeValue(tier)}`,
    { field, value: tier },
  )
}

/** Level name → index, throwing UNKNOWN_LEVEL for anything else. */
export function parseLevelIndex(levelNames: readonly string[], level: unknown, field: string): number {
  const index = typeof level === 'string' ? levelNames.indexOf(level) : -1
  if (index < 0) throw unknownLevel(levelNames, field, level)
  return index
}

/** A tier's limits by level index, validated. */
export function parseTierLimits(
  levelNames: readonly string[],
  tier: string,
  limits: unknown,
): Map<number, Policy> {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    throw invalid(ErrorCode.InvalidPolicy, `tiers.${tier}`, limits, 'an object of level → policy')
  }
  const parsed = new Map<number, Policy>()
  for (const [level, input] of Object.entries(limits)) {
    const index = parseLevelIndex(levelNames, level, `tiers.${tier}.${level}`)
    parsed.set(index, normalizePolicy(input, `tiers.${tier}.${level}`))
  }
  return parsed
}

/**
 * A level with no policy in some tier and no base policy would never be limited under that tier: refused,
 * naming the level and the tier (or `policies` when there are no tiers).
 */
function assertEveryLevelLimited(
  levelNames: readonly string[],
  base: readonly (Policy | undefined)[],
  tiers: ReadonlyMap<string, readonly (Policy | undefined)[]>,
): void {
  levelNames.forEach((level, i) => {
    if (base[i] !== undefined) return
    if (tiers.size === 0) {
      throw invalid(
        ErrorCode.InvalidPolicy,
        `policies.${level}`,
        undefined,
        `a policy: level ${JSON.stringify(level)} has none (give it one in policies, or policy for every level)`,
      )
    }
    for (const [tier, byLevel] of tiers) {
      if (byLevel[i] !== undefined) continue
      throw invalid(
        ErrorCode.InvalidPolicy,
        `tiers.${tier}.${level}`,
        undefined,
        `a policy: level ${JSON.stringify(level)} has none in tier ${JSON.stringify(tier)} and no base ` +
          `policy (give it one in the tier, or in policies.${level} for every tier)`,
      )
    }
  })
}

export function parseLimiterOptions(options: LimiterOptions): LimiterConfig {
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  for (const name of Object.keys(options)) {
    if (!knownOptions.has(name)) {
      throw optionError(
        name,
        (options as Record<string, unknown>)[name],
        `left out: createLimiter has no option ${JSON.stringify(name)} (known: ${[...knownOptions].join(', ')})`,
      )
    }
  }
  const name = options.name ?? DEFAULT_LIMITER_NAME
  if (typeof name !== 'string' || name.length === 0 || name.length > 200 || name.includes('\u0000')) {
    throw optionError('name', name, 'a non-empty string of at most 200 characters, without NUL')
  }
  const clock = options.clock ?? monotonicClock
  if (options.clock !== undefined && typeof clock !== 'function') {
    throw optionError('clock', clock, 'a function returning ms')
  }
  const levels = parseLevels(options.levels)
  const levelNames = levels.map((l) => l.name)
  const mode = options.onStoreError ?? 'local'
  if (!storeErrorModes.includes(mode)) throw optionError('onStoreError', mode, "'open', 'closed' or 'local'")
  const expectedServers = options.expectedServers ?? 1
  if (expectedServers !== 'auto' && !(Number.isInteger(expectedServers) && expectedServers >= 1)) {
    throw optionError('expectedServers', expectedServers, "'auto' or a whole number ≥ 1")
  }
  const breakerFailures = options.breaker?.failures ?? 3
  assertWholeNumber(breakerFailures, 'breaker.failures', 1)
  const breakerCooldownMs = options.breaker?.cooldownMs ?? 1000
  if (!Number.isFinite(breakerCooldownMs) || breakerCooldownMs < 0 || breakerCooldownMs > 86_400_000) {
    throw optionError('breaker.cooldownMs', breakerCooldownMs, 'a number of ms from 0 to 86400000 (a day)')
  }

  const block = parseBlock(options.block, levelNames)

  const base: (Policy | undefined)[] = levelNames.map((): Policy | undefined => undefined)
  if (options.policy !== undefined && options.policies !== undefined) {
    throw optionError('policy', options.policy, 'left out when policies is given (use one or the other)')
  }
  if (options.policy !== undefined) base.fill(normalizePolicy(options.policy, 'policy'))
  for (const [level, input] of Object.entries(options.policies ?? {})) {
    base[parseLevelIndex(levelNames, level, `policies.${level}`)] = normalizePolicy(
      input,
      `policies.${level}`,
    )
  }
  const tiers = new Map<string, (Policy | undefined)[]>()
  for (const [tier, limits] of Object.entries(options.tiers ?? {})) {
    const byLevel: (Policy | undefined)[] = levelNames.map((): Policy | undefined => undefined)
    for (const [index, policy] of parseTierLimits(levelNames, tier, limits)) byLevel[index] = policy
    tiers.set(tier, byLevel)
  }
  if (options.defaultTier !== undefined && !tiers.has(options.defaultTier)) {
    throw unknownTier(tiers.keys(), 'defaultTier', options.defaultTier)
  }
  const defaultTier = options.defaultTier ?? tiers.keys().next().value
  // With no policy anywhere, every level gets the default: capacity 5, 1 token per second.
  if (tiers.size === 0 && !base.some((p) => p !== undefined)) base.fill(normalizePolicy(DEFAULT_POLICY_INPUT))
  assertEveryLevelLimited(levelNames, base, tiers)
  return {
    name,
    levels,
    levelNames,
    base,
    tiers,
    defaultTier,
    clock,
    mode,
    expectedServers,
    breakerFailures,
    breakerCooldownMs,
    block,
  }
}
