import type { Assessment, BucketState } from './algorithm.js'
import { stateFromDebt } from './algorithm.js'
import { type Duration, parseDuration } from './duration.js'
import { ErrorCode, invalid } from './errors.js'
import { unknownLevel } from './subject.js'

/**
 * Blocking repeat offenders (fastify-rate-limit's `ban`, rate-limiter-flexible's `blockDuration`).
 *
 * A refusal counts at a level named in `block.levels` when that level itself refused a charge it could pass
 * later (not a peek, not a cost above capacity, not a bucket that never refills, not during a block).
 * The store keeps, per bucket, the moments of its last `after − 1` counted refusals: the `after`-th refusal
 * with the earlier ones inside `within` (t − tᵢ < within) blocks the bucket, and the log becomes the block's
 * end (now + `for`), so no refusal before it counts, however the bucket's figures look in its last token.
 *
 * The block is the bucket's own GCRA state charged into debt, so the store needs no "blocked until" entry
 * and an admitted decision reads nothing new. With k, T as in algorithm.ts, limit = capacity·T, B = `for`:
 *
 *   debt′ = max(debt, limit − T + min(B·k, 2^53 − 1 − limit))
 *
 * A normal bucket never owes more than `limit` (a charge must fit; a policy change clamps), so while
 * debt > limit the bucket is blocked, and every figure follows from GCRA unchanged: a cost of 1 fits again
 * exactly when debt = limit − T, B ms later (retryAfter = ⌈(debt′ + T − limit)/k⌉ = B), `RateLimit: r=0;t=`
 * counts down the block, and the key expires when the bucket is full again. `blocked` (debt > limit) is
 * true for all of the block but its last token's interval, where the bucket looks merely empty. The min() keeps the debt below 2^53 (exact in a double; the Lua
 * script does the same operations in the same order) and shortens only absurd blocks (1e9 tokens/ms for years).
 * A policy change of the level (updateBucket, a tier change) converts the state and so ends the block; a
 * refund never credits a blocked bucket; `reset` forgets it.
 */
export interface BlockOption {
  /** Refusals that block: 1 blocks at the first refusal. Whole number from 1 to 1000. */
  after: number
  /** The refusals must fall within this span (from the first counted to the one that blocks). Needed when after > 1. */
  within?: Duration
  /** How long the bucket then refuses outright. */
  for: Duration
  /** The levels that block (their buckets' keys are the offenders). Default: the chain's first level. */
  levels?: readonly string[]
}

/** A validated block rule, as a PolicyBook carries it to stores. */
export interface BlockRule {
  readonly after: number
  readonly withinMs: number
  readonly forMs: number
  /** Per level index: whether that level blocks. */
  readonly levels: readonly boolean[]
}

export const MAX_BLOCK_AFTER = 1000
/** A year: any longer is a ban list, not a rate limit. */
export const MAX_BLOCK_MS = 365 * 86_400_000
const maxExact = Number.MAX_SAFE_INTEGER

function wholeMs(value: unknown, field: string): number {
  const ms = parseDuration(value, field)
  if (!Number.isInteger(ms) || ms > MAX_BLOCK_MS) {
    throw invalid(
      ErrorCode.InvalidDuration,
      field,
      value,
      `a whole number of ms up to ${MAX_BLOCK_MS} (a year)`,
    )
  }
  return ms
}

const blockKeys = new Set(['after', 'within', 'for', 'levels'])

/** Validates createLimiter's `block` option against the chain's level names. */
export function parseBlock(option: unknown, levelNames: readonly string[]): BlockRule | undefined {
  if (option === undefined) return undefined
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw invalid(
      ErrorCode.InvalidOption,
      'block',
      option,
      "an object like { after: 5, within: '1m', for: '15m' }",
    )
  }
  const raw = option as Record<string, unknown>
  for (const name of Object.keys(raw)) {
    if (!blockKeys.has(name)) {
      throw invalid(
        ErrorCode.InvalidOption,
        `block.${name}`,
        raw[name],
        'left out (known: after, within, for, levels)',
      )
    }
  }
  const after = raw.after
  if (typeof after !== 'number' || !Number.isInteger(after) || after < 1 || after > MAX_BLOCK_AFTER) {
    throw invalid(
      ErrorCode.InvalidOption,
      'block.after',
      after,
      `a whole number of refusals from 1 to ${MAX_BLOCK_AFTER}`,
    )
  }
  const withinMs = after === 1 && raw.within === undefined ? 0 : wholeMs(raw.within, 'block.within')
  const forMs = wholeMs(raw.for, 'block.for')
  const names = raw.levels ?? [levelNames[0]]
  if (!Array.isArray(names) || names.length === 0) {
    throw invalid(ErrorCode.InvalidOption, 'block.levels', names, 'a non-empty array of level names')
  }
  const levels = levelNames.map(() => false)
  for (const name of names) {
    const index = typeof name === 'string' ? levelNames.indexOf(name) : -1
    if (index < 0) throw unknownLevel(levelNames, 'block.levels', name)
    levels[index] = true
  }
  return Object.freeze({ after, withinMs, forMs, levels: Object.freeze(levels) })
}

/** Whether a refused assessment counts towards a block (see the header). */
export function countsAsRefusal(a: Assessment): boolean {
  const { policy } = a
  if (a.fits || a.cost === 0 || policy.tokens === 0) return false
  const limit = policy.capacity * policy.per
  return a.cost * policy.per <= limit && a.debt <= limit
}

/** The debt of a bucket blocked now (see the header). */
export function blockedDebt(a: Assessment, rule: BlockRule): number {
  const { policy } = a
  const limit = policy.capacity * policy.per
  return Math.max(a.debt, limit - policy.per + Math.min(rule.forMs * policy.tokens, maxExact - limit))
}

/** A bucket's refusal log: the moments of recent counted refusals (ascending), or the end of its block. */
export type RefusalLog = { readonly times: readonly number[] } | { readonly blockedUntil: number }

/**
 * A refusal at `now` (one that counts by its figures) against the bucket's log: what to keep, and whether it
 * blocks. Undefined: it does not count (a block is running). Entries at or before now − within are dropped.
 */
export function noteRefusal(
  log: RefusalLog | undefined,
  now: number,
  rule: BlockRule,
): { blocks: boolean; log: RefusalLog } | undefined {
  if (log && 'blockedUntil' in log) {
    if (now < log.blockedUntil) return undefined
    log = undefined
  }
  const recent = log ? log.times.filter((t) => t > now - rule.withinMs) : []
  if (recent.length + 1 >= rule.after) return { blocks: true, log: { blockedUntil: now + rule.forMs } }
  recent.push(now)
  return { blocks: false, log: { times: recent } }
}

/** Where a store in this process keeps refusal logs, by bucket id. */
export interface RefusalLogs {
  get(id: string): RefusalLog | undefined
  set(id: string, log: RefusalLog): void
  delete(id: string): void
}

/**
 * After a refused chain in a store in this process: counts the refusals of the blocking levels and blocks
 * where the rule says. Returns, per assessment, the state to write (a blocked bucket), or undefined.
 */
export function blockRefusals(
  rule: BlockRule,
  assessments: Assessment[],
  levels: readonly { readonly levelIndex: number }[],
  ids: readonly string[],
  logs: RefusalLogs,
  now: number,
): (BucketState | undefined)[] {
  const writes: (BucketState | undefined)[] = []
  // One entry per level result; a store's scratch `assessments` and `ids` may run longer.
  for (let j = 0; j < levels.length; j++) {
    const a = assessments[j]!
    if (!rule.levels[levels[j]!.levelIndex] || !countsAsRefusal(a)) continue
    const noted = noteRefusal(logs.get(ids[j]!), now, rule)
    if (!noted) continue
    logs.set(ids[j]!, noted.log)
    if (!noted.blocks) continue
    const debt = blockedDebt(a, rule)
    assessments[j] = { ...a, debt }
    writes[j] = stateFromDebt(debt, a.policy, now, now)
  }
  return writes
}
