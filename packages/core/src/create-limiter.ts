import { adminMethods } from './admin.js'
import { Breaker, type BreakerAdmission, type BreakerTransition } from './breaker.js'
import { type Decision, summarize } from './decision.js'
import { ErrorCode, invalid, TollgateError } from './errors.js'
import type { LimiterEvent, LimiterListener, StoreErrorMode } from './events.js'
import { Fallback } from './fallback.js'
import { InProcessStore } from './in-process.js'
import { type CheckOptions, type Limiter, parseCost } from './limiter.js'
import { claimName } from './names.js'
import { type LimiterOptions, parseLimiterOptions, unknownTier } from './options.js'
import type { DecideRequest, DecideResult, Store } from './store.js'
import { type Subject, subjectKeys } from './subject.js'
import { TierBook } from './tiers.js'

// Kept: Node's global `performance` is a getter, paid on every read.
const perf = performance

type Outcome = DecideResult & { readonly degraded?: StoreErrorMode }

function isStoreFailure(error: unknown): boolean {
  return (
    !(error instanceof TollgateError) ||
    error.code === ErrorCode.StoreTimeout ||
    error.code === ErrorCode.StoreUnavailable
  )
}

/**
 * How many servers the `local` fallback divides limits by: a fixed number, or with 'auto' the fleet size the
 * store last counted (1 until it has counted; anything but a whole number ≥ 1 from a store counts as 1).
 */
function serverCount(expected: number | 'auto', store: Store): { count: () => number; leave: () => void } {
  if (expected !== 'auto') return { count: () => expected, leave: () => undefined }
  if (typeof store.joinFleet !== 'function') {
    throw invalid(
      ErrorCode.InvalidOption,
      'expectedServers',
      expected,
      `a whole number ≥ 1: store ${JSON.stringify(store.name)} cannot count its fleet (it has no joinFleet)`,
    )
  }
  const membership = store.joinFleet()
  let left = false
  return {
    count: () => {
      const size = membership.size()
      return size !== undefined && Number.isInteger(size) && size >= 1 ? size : 1
    },
    leave: () => {
      if (!left) membership.leave()
      left = true
    },
  }
}

/**
 * Creates a limiter: the one object adapters ask and administrators change. The store decides (it reads
 * the tenant's registry entries beside its buckets); the limiter parses input, keeps the tier definitions,
 * and decides by `onStoreError` while the store fails.
 */
export function createLimiter(options: LimiterOptions = {}): Limiter {
  const config = parseLimiterOptions(options)
  const { clock, levels, levelNames } = config
  const store: Store =
    options.store ?? new InProcessStore({ maxKeys: 100_000, clock, name: 'default-in-process' })
  if (typeof store !== 'object' || store === null || typeof store.decide !== 'function' || !store.registry) {
    throw invalid(
      ErrorCode.InvalidOption,
      'store',
      store,
      'a Store (memoryStore(), redisStore({ client }), ...)',
    )
  }
  // A decision holds a bucket per level at once: a store bounded below that evicts the chain's own buckets
  // while it decides, and the lower levels never bind.
  const bound = (store as { readonly maxKeys?: unknown }).maxKeys
  if (typeof bound === 'number' && bound < levels.length) {
    throw invalid(
      ErrorCode.InvalidOption,
      'maxKeys',
      bound,
      `a whole number ≥ ${levels.length}: a decision of this limiter holds one bucket per level (${levelNames.join(', ')})`,
    )
  }
  // Before anything that would need undoing: a store that cannot count its fleet is refused here.
  const servers = serverCount(config.expectedServers, store)

  // Two limiters with one name on one store would drain each other's buckets: the second is refused here.
  const releaseName = claimName(store.keyspace ?? store, config.name)

  const listeners = new Set<LimiterListener>()
  if (options.onEvent) listeners.add(options.onEvent)
  const emit = (event: LimiterEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event)
      } catch {
        // A failing listener must not change a decision.
      }
    }
  }

  const tierBook = new TierBook(config, store.registry)
  const unsubscribe = store.registry.subscribe((change) => {
    // Another limiter's changes are not this one's (a change of unknown namespace may be anyone's).
    if (change?.namespace !== undefined && change.namespace !== config.name) return
    if (change === undefined || change.kind === 'tier') tierBook.invalidate()
    emit({ type: 'registry-change', kind: change?.kind, id: change?.key })
  })
  const breaker = new Breaker(config.breakerFailures, config.breakerCooldownMs)
  const fallback = new Fallback(
    config.mode,
    servers.count,
    levels.map((l) => l.fixedKey),
  )
  /** Decisions already given back: a second refund of one decision gives nothing. */
  const refunded = new WeakSet<Decision>()
  /** Decisions made under a tier the caller forced (per route): a refund must resolve under it too. */
  const forcedTiers = new WeakMap<Decision, string>()

  const report = (transitions: readonly BreakerTransition[], error?: unknown): void => {
    for (const t of transitions) {
      if (t.type === 'degraded') emit({ type: 'degraded', mode: config.mode, error })
      else if (t.type === 'recovered') emit({ type: 'recovered', downMs: t.downMs })
      else emit({ type: 'breaker', state: t.state })
    }
  }
  const failed = (request: DecideRequest, admission: BreakerAdmission, error: unknown): Outcome => {
    if (!isStoreFailure(error)) throw error
    const now = Math.floor(clock())
    report(breaker.failure(now, admission), error)
    emit({ type: 'store-error', error, mode: config.mode })
    return fallback.decide(request, now, breaker.retryAfterMs(now))
  }
  const succeeded = (result: DecideResult, admission: BreakerAdmission): Outcome => {
    if (breaker.failing() || admission === 'probe') report(breaker.success(Math.floor(clock()), admission))
    // A store in this process cannot be down; a shared one's answers are what `local` falls back on.
    if (config.mode === 'local' && !store.decideNow) fallback.remember(tierBook.current, result)
    return result
  }

  /** Asks the store unless the circuit is open; a failure is decided by `onStoreError` instead. */
  function decide(request: DecideRequest): Outcome | Promise<Outcome> {
    let admission: BreakerAdmission = 'call'
    // Closed, the common case: no clock read and no object to learn that the store is asked.
    if (!breaker.closed()) {
      const admitted = breaker.admit(Math.floor(clock()))
      admission = admitted.admission
      if (admitted.transitions.length) report(admitted.transitions)
      if (admission === 'fallback') {
        const answer = (): Outcome => {
          const now = Math.floor(clock())
          return fallback.decide(request, now, breaker.retryAfterMs(now))
        }
        return store.pace ? store.pace().then(answer) : answer()
      }
    }
    if (store.decideNow && !tierBook.needsLoad) {
      try {
        return succeeded(store.decideNow(request), admission)
      } catch (error) {
        return failed(request, admission, error)
      }
    }
    // A decision the store can answer without I/O (Redis's remembered refusals): no Promise to wait on. Not
    // for a probe, which must ask the store itself.
    if (store.answerNow && admission === 'call' && !tierBook.needsLoad) {
      const known = store.answerNow(request)
      if (known !== undefined) return succeeded(known, admission)
    }
    const load = tierBook.needsLoad ? tierBook.load() : undefined
    // Tier definitions never read from the store yet: a decision must not assume nobody changed them.
    const asked = load
      ? load.then(() => store.decide({ ...request, book: tierBook.current }))
      : store.decide(request)
    return asked.then(
      (result) => succeeded(result, admission),
      (error: unknown) => failed(request, admission, error),
    )
  }

  // A store's level results are the decision's levels as they are: no second object per level.
  const toDecision = (outcome: Outcome, cost: number): Decision =>
    summarize(outcome.levels, outcome.allowed, cost, outcome.tier, outcome.now, outcome.degraded)

  const decided = (outcome: Outcome, cost: number, tier: string | undefined, started: number): Decision => {
    const decision = toDecision(outcome, cost)
    if (tier !== undefined) forcedTiers.set(decision, tier)
    if (listeners.size) emit({ type: 'decision', decision, storeMs: perf.now() - started })
    return decision
  }

  /** A decision in this turn when the store is in process; otherwise the Promise of one. */
  function checkNow(subject: Subject, checkOptions?: CheckOptions): Decision | Promise<Decision> {
    const cost = checkOptions?.cost === undefined ? 1 : parseCost(checkOptions.cost)
    const keys = subjectKeys(levels, subject)
    const tier = checkOptions?.tier
    if (tier !== undefined && !config.tiers.has(tier)) throw unknownTier(config.tiers.keys(), 'tier', tier)
    const request: DecideRequest = { book: tierBook.current, keys, cost, tier }
    const started = listeners.size ? perf.now() : 0
    const pending = decide(request)
    return 'then' in pending
      ? Promise.resolve(pending).then((outcome) => decided(outcome, cost, tier, started))
      : decided(pending, cost, tier, started)
  }

  const limiter: Limiter = {
    name: config.name,
    levels: levelNames,
    get tierNames() {
      return [...config.tiers.keys()]
    },

    check(subject: Subject, checkOptions?: CheckOptions) {
      try {
        const decision = checkNow(subject, checkOptions)
        return decision instanceof Promise ? decision : Promise.resolve(decision)
      } catch (error) {
        return Promise.reject(error)
      }
    },

    checkNow,

    async refund(decision) {
      // A decision carries all a refund needs: its levels' keys and policies, its tier, cost and moment.
      if (!decision.allowed || decision.degraded || decision.cost === 0 || refunded.has(decision)) return
      refunded.add(decision)
      const keys: (string | undefined)[] = levelNames.map(() => undefined)
      const policyIds: (string | undefined)[] = levelNames.map(() => undefined)
      for (const level of decision.levels) {
        const index = levelNames.indexOf(level.level)
        if (index < 0) continue
        keys[index] = level.key
        policyIds[index] = level.policy.id
      }
      await store.refund({
        book: tierBook.current,
        keys,
        tier: forcedTiers.get(decision),
        cost: decision.cost,
        decidedAt: decision.now,
        policyIds,
      })
    },

    ...adminMethods(config, store, tierBook),

    on(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async close() {
      releaseName()
      unsubscribe()
      servers.leave()
      listeners.clear()
    },
  }
  // Hidden from spreads and wrappers: the HTTP gate uses it only while `check` is still this limiter's own.
  Object.defineProperty(limiter, CHECK_NOW, { value: { check: limiter.check, now: checkNow } })
  return limiter
}

const CHECK_NOW = Symbol('tollgate.checkNow')
type CheckNow = (subject: Subject, options?: CheckOptions) => Decision | Promise<Decision>

/** The limiter's check without a Promise for in-process answers, or undefined when check is not createLimiter's. */
export function checkNowOf(limiter: Limiter): CheckNow | undefined {
  const own = (limiter as { [CHECK_NOW]?: { check: unknown; now: CheckNow } })[CHECK_NOW]
  return own !== undefined && own.check === limiter.check ? own.now : undefined
}
