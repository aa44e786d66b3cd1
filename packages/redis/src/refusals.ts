import {
  assessInto,
  type BucketState,
  type Clock,
  type DecideRequest,
  type DecideResult,
  type LevelResult,
  newAssessment,
  newLevelResult,
  settleInto,
  stateFromDebt,
} from '@tollgate/core/store'
import { LRUCache } from 'lru-cache'
import type { Decided } from './calls.js'

/**
 * Exact local refusals. A refusal with `retryAfterMs = X` proves that the same chain at the same cost cannot
 * pass before X: tokens only come back with time, and other servers only take them. So until then the same
 * request is refused here and Redis is not asked. Its figures are core's maths on each level's debt as Redis
 * returned it, aged by the time elapsed: what Redis would answer if no other server had charged meanwhile.
 *
 * Why it never admits what Redis would refuse: it only ever refuses. Why it refuses only what Redis would
 * refuse, with the exceptions stated in the README:
 * - Time. Redis decided at its ms `t_r` ≥ its clock when the call was sent, and GCRA refuses every ms below
 *   `t_r + X`. Measured on this process's monotonic clock from the send, a request `e` ms later is answered
 *   here only while `e · (1 + 10⁻³) < X − 1`: one ms for Redis's flooring of TIME, 1000 ppm for the two clocks'
 *   rates. Under a test clock (the script's `now` is that clock) the bound is exact: `⌊clock⌋ < t + X`.
 * - Changes. A registry change to a tenant of the chain (createBucket, setTier, …) drops the entries holding
 *   it; a tier change, a new policy book or a missed-message reload drops every entry. A reply that comes back
 *   after any change since its call was sent is not remembered.
 * - Refunds and resets made here drop the entries holding the bucket. A refund or a reset made by another
 *   server is not seen: until then this server may refuse what Redis would admit (never the reverse) for at
 *   most the refusal's X.
 * - Blocking repeat offenders (`block`): Redis counts each blocking level's refusals, so a refusal is answered
 *   here only once every refusing blocking level is blocked already (a block counts nothing). A refusal can
 *   also write: the one that blocks charges the bucket into debt. So a refusal of a blocking level drops the
 *   entries holding its bucket, as a charge does (another request's entry would show the debt before).
 * Memory: at most `max` entries (LRU), each the request's key and its result.
 */
export class LocalRefusals {
  private readonly entries: LRUCache<string, Entry>
  /** Bucket id → keys of the entries that hold it, to drop them on a change. */
  private readonly byBucket = new Map<string, Set<string>>()
  /** Decisions answered here so far. */
  answered = 0
  /** Bumped by every change: a reply to a call sent before it is not remembered. */
  private generation = 0
  /** The request answered last, its key and entry (while the entry is held). */
  private last: { request: DecideRequest; key: string; entry: Entry } | undefined
  /** The request answer last found no entry for. */
  private missed: DecideRequest | undefined
  /** One assessment at a time (answer runs in one turn). */
  private readonly scratch = newAssessment()

  constructor(
    max: number,
    private readonly testClock: Clock | undefined,
  ) {
    this.entries = new LRUCache<string, Entry>({
      max,
      dispose: (entry, key) => {
        entry.held = false
        this.unindex(entry, key)
      },
    })
  }

  /** What a call sent now carries, to be handed to `remember` with its reply. */
  ticket(): Ticket {
    return { at: this.now(), generation: this.generation }
  }

  /** A refusal answered here, or undefined: ask Redis. */
  answer(request: DecideRequest): DecideResult | undefined {
    // The limiter asks answerNow, then (on a miss) decide with the same request in the same turn: once is enough.
    if (request === this.missed) {
      this.missed = undefined
      return undefined
    }
    if (this.entries.size === 0) return undefined
    // The tenant answered last, asked again (one tenant far over its limit is most of a reject-heavy load):
    // found by comparing the request, without building its key and hashing it.
    const last = this.last
    let key: string
    let entry: Entry | undefined
    if (last?.entry.held && sameRequest(last.request, request)) {
      key = last.key
      entry = last.entry
    } else {
      key = requestKey(request)
      entry = this.entries.get(key)
      if (!entry) {
        this.missed = request
        return undefined
      }
    }
    const elapsed = this.now() - entry.at
    if (!(this.testClock ? elapsed < entry.retryAfterMs : elapsed * DRIFT < entry.retryAfterMs - 1)) {
      this.entries.delete(key)
      this.missed = request
      return undefined
    }
    const now = entry.now + Math.floor(elapsed)
    const held = entry.levels
    // Stryker disable next-line ArrayDeclaration: pre-sizing only; the loop writes every index
    const levels: LevelResult[] = new Array(held.length)
    let allowed = true
    for (let i = 0; i < held.length; i++) {
      const { level, state } = held[i]!
      // The level as Redis answered it, with its figures as they are now (a block may have ended since),
      // written into one object: rest and spread copies of the level showed in a reject-heavy profile.
      const figures = newLevelResult(level.levelIndex, level.level, level.key, level.policy, level.custom)
      settleInto(assessInto(this.scratch, state, level.policy, now, request.cost), false, figures)
      if (!figures.allowed) allowed = false
      levels[i] = figures
    }
    // Never reached while the bound holds; should it be, Redis decides.
    if (allowed) return undefined
    this.last = { request, key, entry }
    this.answered++
    return { allowed: false, now, tier: entry.tier, levels }
  }

  remember(request: DecideRequest, decided: Decided, ticket: Ticket): void {
    const { result, debts } = decided
    if (result.allowed || ticket.generation !== this.generation) return
    // With `block`, Redis counts each blocking level's refusals: a refusal may skip Redis only when no level
    // would count it, every refusing blocking level being blocked already (a block counts none).
    const rule = request.book.block
    if (rule && request.cost > 0) {
      for (const l of result.levels) if (!l.allowed && !l.blocked && rule.levels[l.levelIndex]) return
    }
    let retryAfterMs = 0
    for (const level of result.levels)
      if (level.retryAfterMs > retryAfterMs) retryAfterMs = level.retryAfterMs
    // A blocked level counts refusals again the moment its block ends, which may come before the retry
    // time: answered here only until then. A block writes the debt limit − per + forMs · tokens, which drains
    // to limit − per exactly at its end (nothing charges or credits a blocked bucket meanwhile), so the time
    // left follows from the debt. A block shorter than one token may have kept a larger debt: not held.
    if (rule && request.cost > 0) {
      for (const [i, l] of result.levels.entries()) {
        if (!l.blocked || !rule.levels[l.levelIndex]) continue
        const { capacity, tokens, per } = l.policy
        if (rule.forMs * tokens < per) return
        const blockLeftMs = (debts[i]! - (capacity * per - per)) / tokens
        if (blockLeftMs < retryAfterMs) retryAfterMs = blockLeftMs
      }
    }
    if (!(retryAfterMs > 1)) return
    const key = requestKey(request)
    const buckets: string[] = []
    const levels = result.levels.map((level, i) => {
      buckets.push(bucketOf(level.level, level.key))
      const origin = level.policy.tokens === 0 ? 0 : result.now
      return { level, state: stateFromDebt(debts[i]!, level.policy, origin) }
    })
    this.entries.set(key, {
      held: true,
      at: ticket.at,
      now: result.now,
      tier: result.tier,
      retryAfterMs,
      levels,
      buckets,
    })
    for (const bucket of buckets) {
      const keys = this.byBucket.get(bucket)
      if (keys) keys.add(key)
      else this.byBucket.set(bucket, new Set([key]))
    }
  }

  /** A change to one tenant's bucket or registry entries. */
  dropBucket(level: string, key: string): void {
    this.generation++
    this.forget(level, key)
  }

  /**
   * A charge made here: the refusals holding the bucket stay right but their figures would lag, so they go.
   * (A refusal whose call ran concurrently with the charge may still be remembered with the debt before it:
   * its figures then lag by that charge, its decision does not.)
   */
  charged(result: DecideResult): void {
    if (this.entries.size === 0) return
    for (const level of result.levels) this.forget(level.level, level.key)
  }

  /**
   * A refusal from Redis under `block`: each blocking level that refused may have been blocked by it (its
   * state written), so the refusals here holding that bucket go, as after a charge.
   */
  refused(request: DecideRequest, result: DecideResult): void {
    const rule = request.book.block
    if (!rule || request.cost === 0 || this.entries.size === 0) return
    for (const level of result.levels)
      if (!level.allowed && rule.levels[level.levelIndex]) this.forget(level.level, level.key)
  }

  private forget(level: string, key: string): void {
    const keys = this.byBucket.get(bucketOf(level, key))
    if (keys) for (const k of [...keys]) this.entries.delete(k)
  }

  /** A change that may concern any tenant. */
  dropAll(): void {
    this.generation++
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }

  private now(): number {
    return this.testClock ? Math.floor(this.testClock()) : performance.now()
  }

  private unindex(entry: Entry, key: string): void {
    for (const bucket of entry.buckets) {
      const keys = this.byBucket.get(bucket)
      if (!keys) continue
      keys.delete(key)
      if (keys.size === 0) this.byBucket.delete(bucket)
    }
  }
}

export interface Ticket {
  readonly at: number
  readonly generation: number
}

interface Entry {
  /** Still in the cache (false once dropped, evicted or replaced). */
  held: boolean
  /** This process's clock when the call was sent. */
  readonly at: number
  /** Redis's clock at the decision. */
  readonly now: number
  readonly tier: string | undefined
  /** How long it holds: the chain's wait (the longest of its levels'), or a blocked level's block if sooner. */
  readonly retryAfterMs: number
  /** Each level as Redis decided it, and its state then. */
  readonly levels: readonly { level: LevelResult; state: BucketState }[]
  readonly buckets: readonly string[]
}

/** 1000 ppm: how far apart the rates of this process's clock and Redis's may be. */
const DRIFT = 1.001

function bucketOf(level: string, key: string): string {
  return `${level}\0${key}`
}

/** Whether two requests have one requestKey (one book, cost, tier and keys). */
function sameRequest(a: DecideRequest, b: DecideRequest): boolean {
  if (a.book !== b.book || a.cost !== b.cost || a.tier !== b.tier || a.keys.length !== b.keys.length)
    return false
  for (let i = 0; i < a.keys.length; i++) if (a.keys[i] !== b.keys[i]) return false
  return true
}

/** Limiter name, book version, forced tier, cost and every level's key; lengths first, so no two meet. */
function requestKey(request: DecideRequest): string {
  const { tier, book } = request
  const ns = book.namespace
  let key = `${ns.length}:${ns}:${book.version}:${request.cost}:${tier === undefined ? '-' : `${tier.length}:${tier}`}`
  for (const k of request.keys) key += k === undefined ? '|-' : `|${k.length}:${k}`
  return key
}
