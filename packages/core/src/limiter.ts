import { type Decision, type LevelDecision, summarize } from './decision.js'
import { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'
import type { LimiterEvent, LimiterListener, StoreErrorMode } from './events.js'
import { boundedMapCache, type Clock, InProcessStore, monotonicClock } from './in-process.js'
import {
  DEFAULT_POLICY_INPUT,
  normalizePolicy,
  type Policy,
  type PolicyInput,
  policyToInput,
} from './policy.js'
import type { ConsumeOp, ConsumeResult, RegistryChange, RegistryKind, Store } from './store.js'

/** A chain level: a name, or a name with a fixed key used when the subject gives none (e.g. a global level). */
export type LevelSpec = string | { readonly name: string; readonly key?: string }

/** A tier: a policy per level. Levels it leaves out fall back to `policies`. */
export type TierLimits = Readonly<Record<string, PolicyInput | Policy>>

/** The chain's keys (`{ user: 'u1', org: 'acme' }`), or one key for the first level. */
export type Subject = string | Readonly<Record<string, string | undefined>>

export interface LimiterOptions {
  /** Where bucket state and the registry live. Default: an in-process store (bounded, 100k keys). */
  store?: Store
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
  /** ms clock for the default store and the circuit breaker. */
  clock?: Clock
  /** What decides when the store fails: admit (`open`), refuse (`closed`), or in-process buckets (`local`, default). */
  onStoreError?: StoreErrorMode
  /** `local` mode divides every limit by this many servers. Default 1. */
  expectedServers?: number
  /** Consecutive store failures that open the circuit (default 3), and ms before a probe (default 1000). */
  breaker?: { failures?: number; cooldownMs?: number }
  /** Registry entries (assignments, custom buckets) cached in this process. Default 100,000. */
  registryCacheSize?: number
  onEvent?: LimiterListener
}

export interface CheckOptions {
  /** Whole tokens ≥ 0; 0 peeks without charging. Default 1. */
  cost?: number
  /** Forces a tier (per-route plans), overriding assignments. */
  tier?: string
}

export interface BucketRef {
  readonly level: string
  readonly key: string
}

export interface BucketInfo {
  readonly level: string
  readonly key: string
  readonly tier: string | undefined
  /** The policy in force: a custom bucket's, else the tier's or the level's. */
  readonly policy: PolicyInput
  /** A per-tenant bucket made with createBucket. */
  readonly custom: boolean
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
}

export interface Limiter {
  check(subject: Subject, options?: CheckOptions): Promise<Decision>
  createBucket(ref: BucketRef, policy: PolicyInput): Promise<void>
  updateBucket(ref: BucketRef, policy: PolicyInput): Promise<void>
  deleteBucket(ref: BucketRef): Promise<void>
  getBucket(ref: BucketRef, options?: { tier?: string }): Promise<BucketInfo>
  /** Assigns a tier to a key at a level (a string key means the first level); `null` removes it. */
  setTier(ref: BucketRef | string, tier: string | null): Promise<void>
  getTier(ref: BucketRef | string): Promise<string | undefined>
  /** Changes a tier's limits at runtime, for the levels given. Buckets keep their history. */
  updateLimits(tier: string, limits: TierLimits): Promise<void>
  /** Listens to every event; returns the unsubscribe function. */
  on(listener: LimiterListener): () => void
  readonly levels: readonly string[]
  readonly tierNames: readonly string[]
  readonly store: Store
  close(): Promise<void>
}

interface Level {
  readonly name: string
  readonly fixedKey: string | undefined
}

const storeErrorModes: readonly StoreErrorMode[] = ['open', 'closed', 'local']

function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return invalid(ErrorCode.InvalidOption, field, value, expectation)
}

export function validateCost(cost: unknown): number {
  if (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 0) {
    throw invalid(ErrorCode.InvalidCost, 'cost', cost, 'a whole number of tokens, 0 or more')
  }
  return cost
}

function validateKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key.length === 0)
    throw invalid(ErrorCode.InvalidKey, field, key, 'a non-empty string')
  return key
}

function registryId(level: string, key: string): string {
  return `${level}\u0000${key}`
}

function splitRegistryId(id: string): [level: string, key: string] {
  const at = id.indexOf('\u0000')
  return [id.slice(0, at), id.slice(at + 1)]
}

function parseLevels(specs: readonly LevelSpec[] | undefined): Level[] {
  if (specs !== undefined && (!Array.isArray(specs) || specs.length === 0)) {
    throw optionError('levels', specs, 'a non-empty array of level names')
  }
  const levels = (specs ?? ['key']).map((spec, i): Level => {
    const name = typeof spec === 'string' ? spec : spec?.name
    if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000')) {
      throw optionError(`levels[${i}]`, spec, 'a non-empty level name')
    }
    const fixedKey = typeof spec === 'string' ? (spec === 'global' ? 'global' : undefined) : spec.key
    if (fixedKey !== undefined) validateKey(fixedKey, `levels[${i}].key`)
    return { name, fixedKey }
  })
  const names = new Set(levels.map((l) => l.name))
  if (names.size !== levels.length) throw optionError('levels', specs, 'distinct level names')
  return levels
}

/**
 * Creates a limiter: the one object adapters ask and administrators change.
 * Decisions are made by the store; the limiter resolves policies, tiers and failures around them.
 */
export function createLimiter(options: LimiterOptions = {}): Limiter {
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  const clock = options.clock ?? monotonicClock
  if (typeof clock !== 'function') throw optionError('clock', clock, 'a function returning ms')
  const levels = parseLevels(options.levels)
  const levelNames = levels.map((l) => l.name)
  const levelSet = new Set(levelNames)
  const checkLevel = (level: unknown, field: string): string => {
    if (typeof level !== 'string' || !levelSet.has(level)) {
      throw new TollgateError(
        ErrorCode.UnknownLevel,
        `${field} must be one of ${levelNames.map((n) => JSON.stringify(n)).join(', ')}; got ${describeValue(level)}`,
        { field, value: level },
      )
    }
    return level
  }

  const mode = options.onStoreError ?? 'local'
  if (!storeErrorModes.includes(mode)) throw optionError('onStoreError', mode, "'open', 'closed' or 'local'")
  const expectedServers = options.expectedServers ?? 1
  if (!Number.isInteger(expectedServers) || expectedServers < 1) {
    throw optionError('expectedServers', expectedServers, 'a whole number ≥ 1')
  }
  const breakerFailures = options.breaker?.failures ?? 3
  const breakerCooldownMs = options.breaker?.cooldownMs ?? 1000
  if (!Number.isInteger(breakerFailures) || breakerFailures < 1) {
    throw optionError('breaker.failures', breakerFailures, 'a whole number ≥ 1')
  }
  if (!Number.isFinite(breakerCooldownMs) || breakerCooldownMs < 0 || breakerCooldownMs > 86_400_000) {
    throw optionError('breaker.cooldownMs', breakerCooldownMs, 'a number of ms from 0 to 86400000 (a day)')
  }
  const cacheSize = options.registryCacheSize ?? 100_000
  if (!Number.isInteger(cacheSize) || cacheSize < 0)
    throw optionError('registryCacheSize', cacheSize, 'a whole number ≥ 0')

  // Base policies per level (any tier).
  const basePolicies = new Map<string, Policy>()
  if (options.policy !== undefined && options.policies !== undefined) {
    throw optionError('policy', options.policy, 'left out when policies is given (use one or the other)')
  }
  if (options.policy !== undefined) {
    const policy = normalizePolicy(options.policy, 'policy')
    for (const name of levelNames) basePolicies.set(name, policy)
  }
  for (const [level, input] of Object.entries(options.policies ?? {})) {
    basePolicies.set(checkLevel(level, `policies.${level}`), normalizePolicy(input, `policies.${level}`))
  }

  // Tiers from the options; the registry may override them at runtime.
  const configuredTiers = new Map<string, Map<string, Policy>>()
  for (const [tier, limits] of Object.entries(options.tiers ?? {})) {
    configuredTiers.set(tier, parseTierLimits(tier, limits))
  }
  function parseTierLimits(tier: string, limits: unknown): Map<string, Policy> {
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
      throw invalid(ErrorCode.InvalidPolicy, `tiers.${tier}`, limits, 'an object of level → policy')
    }
    const parsed = new Map<string, Policy>()
    for (const [level, input] of Object.entries(limits)) {
      parsed.set(
        checkLevel(level, `tiers.${tier}.${level}`),
        normalizePolicy(input, `tiers.${tier}.${level}`),
      )
    }
    return parsed
  }
  const usesTiers = configuredTiers.size > 0
  const defaultTier = options.defaultTier ?? configuredTiers.keys().next().value
  if (options.defaultTier !== undefined && !configuredTiers.has(options.defaultTier)) {
    throw new TollgateError(
      ErrorCode.UnknownTier,
      `defaultTier ${describeValue(options.defaultTier)} is not one of the tiers`,
      {
        field: 'defaultTier',
        value: options.defaultTier,
      },
    )
  }
  // With no policy anywhere, every level gets the default: capacity 5, 1 token per second.
  if (!usesTiers && basePolicies.size === 0) {
    const policy = normalizePolicy(DEFAULT_POLICY_INPUT)
    for (const name of levelNames) basePolicies.set(name, policy)
  }

  const store: Store =
    options.store ??
    new InProcessStore({ cache: boundedMapCache(100_000), clock, name: 'default-in-process' })
  if (typeof store !== 'object' || store === null || typeof store.consume !== 'function' || !store.registry) {
    throw optionError('store', store, 'a Store (memoryStore(), redisStore({ client }), ...)')
  }

  // ---- events
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

  // ---- registry cache: tiers in full; assignments and custom buckets per (level, key), absences included
  let tiers = configuredTiers
  let tiersLoaded: Promise<void> | undefined
  let tiersReady = false
  /** What the registry said of one key at one level; undefined = not asked yet, null = nothing there. */
  interface CachedEntry {
    assignment: string | null | undefined
    bucket: Policy | null | undefined
  }
  const cachedByLevel = levels.map(() => new Map<string, CachedEntry>())
  let cachedCount = 0
  // A registry in this process is read directly: no cache to fill, invalidate or outgrow.
  const syncRegistry = typeof store.registry.getNow === 'function' ? store.registry : undefined
  const parsedBuckets = new Map<string, Policy | null>()
  const nothingRegistered: CachedEntry = Object.freeze({ assignment: null, bucket: null }) as CachedEntry
  function readNow(levelIndex: number, key: string): CachedEntry {
    const level = levelNames[levelIndex]!
    const assignment = syncRegistry!.getNow!('assignment', level, key)
    const bucket = syncRegistry!.getNow!('bucket', level, key)
    if (assignment === undefined && bucket === undefined) return nothingRegistered
    let policy: Policy | null = null
    if (bucket !== undefined) {
      policy = parsedBuckets.get(bucket) ?? null
      if (policy === null) {
        policy = parseRegistryValue('bucket', bucket) as Policy | null
        if (parsedBuckets.size >= 10_000) parsedBuckets.clear()
        parsedBuckets.set(bucket, policy)
      }
    }
    return {
      assignment:
        assignment === undefined ? null : (parseRegistryValue('assignment', assignment) as string | null),
      bucket: policy,
    }
  }
  const cachedEntry = (levelIndex: number, key: string): CachedEntry | undefined =>
    syncRegistry ? readNow(levelIndex, key) : cachedByLevel[levelIndex]!.get(key)
  function remember(
    levelIndex: number,
    key: string,
    kind: 'assignment' | 'bucket',
    value: Policy | string | null,
  ): void {
    if (syncRegistry) return // an in-process registry is read directly, never cached
    const map = cachedByLevel[levelIndex]!
    let entry = map.get(key)
    if (!entry) {
      if (cachedCount >= cacheSize) forgetAll()
      if (cacheSize === 0) return
      entry = { assignment: undefined, bucket: undefined }
      map.set(key, entry)
      cachedCount++
    }
    if (kind === 'assignment') entry.assignment = value as string | null
    else entry.bucket = value as Policy | null
  }
  function rememberRef(
    level: string,
    key: string,
    kind: 'assignment' | 'bucket',
    value: Policy | string | null,
  ): void {
    remember(levelNames.indexOf(level), key, kind, value)
  }
  function forgetAll(): void {
    for (const map of cachedByLevel) map.clear()
    cachedCount = 0
  }

  // Bumped by every invalidation: a registry read that was in flight across one must not be cached as fresh.
  let generation = 0

  async function loadTiers(): Promise<void> {
    const startedAt = generation
    const overrides = await store.registry.list('tier')
    const next = new Map([...configuredTiers].map(([tier, limits]) => [tier, new Map(limits)]))
    for (const [id, json] of overrides) {
      const [tier, level] = id.split('\u0000') as [string, string]
      const limits = next.get(tier)
      if (!limits || !levelSet.has(level)) continue
      try {
        limits.set(level, normalizePolicy(JSON.parse(json)))
      } catch {
        // An entry this version cannot read keeps the configured limit.
      }
    }
    tiers = next
    tiersReady = startedAt === generation
  }
  function ensureTiers(): Promise<void> | undefined {
    if (tiersReady) return undefined
    tiersLoaded ??= loadTiers().catch((error) => {
      tiersLoaded = undefined
      throw error
    })
    return tiersLoaded
  }
  const unsubscribe = store.registry.subscribe((change?: RegistryChange) => {
    generation++
    if (!change) forgetAll()
    else if (change.kind !== 'tier') {
      const [level, key] = splitRegistryId(change.id)
      const levelIndex = levelNames.indexOf(level)
      const entry = levelIndex < 0 ? undefined : cachedByLevel[levelIndex]!.get(key)
      if (entry) entry[change.kind] = undefined
    }
    if (!change || change.kind === 'tier') {
      tiersReady = false
      tiersLoaded = undefined
    }
    emit({ type: 'registry-change', kind: change?.kind, id: change?.id })
  })

  function parseRegistryValue(kind: RegistryKind, value: string | undefined): Policy | string | null {
    if (value === undefined) return null
    try {
      if (kind === 'bucket') return normalizePolicy(JSON.parse(value))
      const tier = JSON.parse(value)
      return typeof tier === 'string' ? tier : null
    } catch {
      return null
    }
  }

  // ---- resolving a subject into store ops
  interface Resolved {
    ops: ConsumeOp[]
    tier: string | undefined
  }
  /** Registry answers read for one decision: by level index, [assignment, bucket]. */
  type Fetched = Map<number, [string | null | undefined, Policy | null | undefined]>

  function subjectKeys(subject: Subject): (string | undefined)[] {
    if (typeof subject === 'string') {
      validateKey(subject, 'subject')
      return levels.map((level, i) => (i === 0 ? subject : level.fixedKey))
    }
    if (typeof subject !== 'object' || subject === null || Array.isArray(subject)) {
      throw invalid(ErrorCode.InvalidSubject, 'subject', subject, 'a key string or an object of level keys')
    }
    for (const name in subject) checkLevel(name, 'subject')
    return levels.map((level) => {
      const key = subject[level.name]
      if (key === undefined || key === null) return level.fixedKey
      return validateKey(key, `subject.${level.name}`)
    })
  }

  function checkTier(tier: unknown, field: string): string {
    if (typeof tier !== 'string' || !tiers.has(tier)) {
      throw new TollgateError(
        ErrorCode.UnknownTier,
        `${field} must be one of ${[...tiers.keys()].map((t) => JSON.stringify(t)).join(', ') || '(no tiers defined)'}; got ${describeValue(tier)}`,
        { field, value: tier },
      )
    }
    return tier
  }

  /** True when every registry answer this decision needs is cached: the decision can be resolved at once. */
  function cachedEnough(keys: (string | undefined)[], forcedTier: string | undefined): boolean {
    if (!tiersReady) return false
    if (syncRegistry) return true
    const wantsAssignment = usesTiers && forcedTier === undefined
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const entry = cachedEntry(i, key)
      if (!entry || entry.bucket === undefined || (wantsAssignment && entry.assignment === undefined))
        return false
    }
    return true
  }

  /** Reads what the cache lacks in one store call per kind; caches it unless an invalidation came meanwhile. */
  async function fetchMissing(
    keys: (string | undefined)[],
    forcedTier: string | undefined,
  ): Promise<Fetched> {
    const fetched: Fetched = new Map()
    // While the store is failing, registry look-ups are skipped: decide with the configured tiers and what is cached.
    const storeFailing = openUntil !== 0
    const waitTiers = storeFailing ? undefined : ensureTiers()
    if (waitTiers) await waitTiers.catch(recordFailure)
    const wantsAssignment = usesTiers && forcedTier === undefined
    const missing = { assignment: [] as number[], bucket: [] as number[] }
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const entry = cachedEntry(i, key)
      // What the cache knows now is part of this decision's snapshot: an invalidation while the rest is
      // read must not leave this decision with neither the old answer nor a new one.
      fetched.set(i, [entry?.assignment, entry?.bucket])
      if (wantsAssignment && entry?.assignment === undefined) missing.assignment.push(i)
      if (entry?.bucket === undefined) missing.bucket.push(i)
    }
    if (storeFailing) return fetched
    const startedAt = generation
    const read = async (kind: 'assignment' | 'bucket') => {
      const indexes = missing[kind]
      if (indexes.length === 0) return
      const values = await store.registry.getMany(
        kind,
        indexes.map((i) => registryId(levelNames[i]!, keys[i]!)),
      )
      const fresh = startedAt === generation
      indexes.forEach((levelIndex, n) => {
        const value = parseRegistryValue(kind, values[n])
        fetched.get(levelIndex)![kind === 'assignment' ? 0 : 1] = value as never
        if (fresh) remember(levelIndex, keys[levelIndex]!, kind, value)
      })
    }
    await Promise.all([read('assignment'), read('bucket')]).catch(recordFailure)
    return fetched
  }

  /** Turns keys into store ops with the policies in force: custom bucket, else tier, else level policy. */
  function resolve(
    keys: (string | undefined)[],
    cost: number,
    forcedTier: string | undefined,
    fetched: Fetched | undefined,
  ): Resolved {
    if (forcedTier !== undefined) checkTier(forcedTier, 'tier')
    let tier = forcedTier
    if (usesTiers && tier === undefined) {
      for (let i = 0; i < levels.length && tier === undefined; i++) {
        const key = keys[i]
        if (key === undefined) continue
        const assigned = fetched ? fetched.get(i)?.[0] : cachedEntry(i, key)?.assignment
        if (typeof assigned === 'string' && tiers.has(assigned)) tier = assigned
      }
      tier ??= defaultTier
    }
    const tierPolicies = tier === undefined ? undefined : tiers.get(tier)
    const ops: ConsumeOp[] = []
    for (let i = 0; i < levels.length; i++) {
      const key = keys[i]
      if (key === undefined) continue
      const name = levelNames[i]!
      const policy =
        (fetched ? fetched.get(i)?.[1] : cachedEntry(i, key)?.bucket) ||
        tierPolicies?.get(name) ||
        basePolicies.get(name)
      if (policy) ops.push({ level: name, key, policy, cost })
    }
    return { ops, tier }
  }

  // ---- store failures: circuit breaker and the fallback modes
  let consecutiveFailures = 0
  let openUntil = 0
  let degradedSince: number | undefined
  let probing = false
  const localStore = new InProcessStore({
    cache: boundedMapCache(100_000),
    clock,
    name: 'local-fallback',
  })
  const localPolicies = new Map<string, Policy>()
  function localPolicy(policy: Policy): Policy {
    if (expectedServers === 1) return policy
    let local = localPolicies.get(policy.id)
    if (!local) {
      // Each of n servers gets ⌊capacity/n⌋ and rate/n: together they admit no more than the shared limit.
      local = normalizePolicy({
        algorithm: policy.algorithm,
        mode: policy.mode,
        capacity: Math.floor(policy.capacity / expectedServers),
        refill: policy.tokens === 0 ? 0 : { tokens: policy.tokens, per: policy.per * expectedServers },
      })
      localPolicies.set(policy.id, local)
    }
    return local
  }

  function fallback(ops: ConsumeOp[]): { result: ConsumeResult; degraded: StoreErrorMode } {
    const now = Math.floor(clock())
    if (mode === 'local') {
      const localOps = ops.map((op) => ({ ...op, policy: localPolicy(op.policy) }))
      return { result: localStore.consumeNow(localOps), degraded: 'local' }
    }
    const retryAfterMs = Math.max(1, openUntil - now, breakerCooldownMs)
    const results = ops.map((op) =>
      mode === 'open'
        ? { allowed: true, remaining: op.policy.capacity, resetAfterMs: 0, retryAfterMs: 0, delayMs: 0 }
        : { allowed: false, remaining: 0, resetAfterMs: retryAfterMs, retryAfterMs, delayMs: 0 },
    )
    return { result: { allowed: mode === 'open', now, results }, degraded: mode }
  }

  function recordFailure(error: unknown): void {
    consecutiveFailures++
    const now = clock()
    if (degradedSince === undefined) {
      degradedSince = now
      emit({ type: 'degraded', mode, error })
    }
    if (consecutiveFailures >= breakerFailures) openUntil = now + breakerCooldownMs
    emit({ type: 'store-error', error, mode })
  }

  function recordSuccess(): void {
    consecutiveFailures = 0
    openUntil = 0
    if (degradedSince !== undefined) {
      const downMs = Math.max(0, clock() - degradedSince)
      degradedSince = undefined
      emit({ type: 'recovered', downMs })
    }
  }

  type Outcome = { result: ConsumeResult; degraded?: StoreErrorMode }

  function storeFailed(ops: ConsumeOp[], error: unknown): Outcome {
    if (
      error instanceof TollgateError &&
      error.code !== ErrorCode.StoreTimeout &&
      error.code !== ErrorCode.StoreUnavailable
    ) {
      throw error
    }
    recordFailure(error)
    return fallback(ops)
  }

  /** Asks the store, unless the circuit is open; a failure is decided by `onStoreError` instead. */
  function consume(ops: ConsumeOp[]): Outcome | Promise<Outcome> {
    // While the circuit is open only one probe at a time reaches the store; the rest decide at once.
    let probe = false
    if (openUntil > 0) {
      if (clock() < openUntil || probing) return fallback(ops)
      probe = probing = true
    }
    if (store.consumeNow) {
      try {
        const result = store.consumeNow(ops)
        recordSuccess()
        return { result }
      } catch (error) {
        return storeFailed(ops, error)
      } finally {
        if (probe) probing = false
      }
    }
    return store.consume(ops).then(
      (result) => {
        if (probe) probing = false
        recordSuccess()
        return { result }
      },
      (error: unknown) => {
        if (probe) probing = false
        return storeFailed(ops, error)
      },
    )
  }

  function toDecision(
    ops: ConsumeOp[],
    outcome: { result: ConsumeResult; degraded?: StoreErrorMode },
    cost: number,
    tier: string | undefined,
  ): Decision {
    const results = outcome.result.results
    const levelsOut: LevelDecision[] = new Array(results.length)
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!
      const op = ops[i]!
      levelsOut[i] = {
        level: op.level,
        key: op.key,
        limit: op.policy.capacity,
        policy: op.policy,
        allowed: r.allowed,
        remaining: r.remaining,
        resetAfterMs: r.resetAfterMs,
        retryAfterMs: r.retryAfterMs,
        delayMs: r.delayMs,
      }
    }
    return summarize(levelsOut, outcome.result.allowed, cost, tier, outcome.result.now, outcome.degraded)
  }

  const limiter: Limiter = {
    levels: levelNames,
    get tierNames() {
      return [...tiers.keys()]
    },
    store,

    async check(subject, checkOptions) {
      const cost = checkOptions?.cost === undefined ? 1 : validateCost(checkOptions.cost)
      const keys = subjectKeys(subject)
      const forcedTier = checkOptions?.tier
      // The common case resolves from the cache at once; only a miss waits on the registry.
      const fetched = cachedEnough(keys, forcedTier) ? undefined : await fetchMissing(keys, forcedTier)
      const { ops, tier } = resolve(keys, cost, forcedTier, fetched)
      const outcome = ops.length
        ? consume(ops)
        : { result: { allowed: true, now: Math.floor(clock()), results: [] } }
      const decision = toDecision(ops, 'then' in outcome ? await outcome : outcome, cost, tier)
      if (listeners.size) emit({ type: 'decision', decision })
      return decision
    },

    async createBucket(ref, policy) {
      const { level, key } = checkRef(ref)
      const parsed = normalizePolicy(policy, 'policy')
      const id = registryId(level, key)
      if (!(await store.registry.put('bucket', id, JSON.stringify(policyToInput(parsed)), 'absent'))) {
        throw new TollgateError(
          ErrorCode.BucketExists,
          `bucket ${describeValue(key)} at level ${describeValue(level)} already exists`,
          {
            field: 'key',
            value: key,
          },
        )
      }
      rememberRef(level, key, 'bucket', parsed)
    },

    async updateBucket(ref, policy) {
      const { level, key } = checkRef(ref)
      const parsed = normalizePolicy(policy, 'policy')
      const id = registryId(level, key)
      if (!(await store.registry.put('bucket', id, JSON.stringify(policyToInput(parsed)), 'present'))) {
        throw unknownBucket(level, key)
      }
      rememberRef(level, key, 'bucket', parsed)
    },

    async deleteBucket(ref) {
      const { level, key } = checkRef(ref)
      const id = registryId(level, key)
      if (!(await store.registry.delete('bucket', id))) throw unknownBucket(level, key)
      rememberRef(level, key, 'bucket', null)
      await store.reset(level, key)
    },

    async getBucket(ref, getOptions) {
      const { level, key } = checkRef(ref)
      const index = levelNames.indexOf(level)
      const keys: (string | undefined)[] = levels.map(() => undefined)
      keys[index] = key
      const { ops, tier } = resolve(keys, 0, getOptions?.tier, await fetchMissing(keys, getOptions?.tier))
      const op = ops[0]
      if (!op) throw unknownBucket(level, key)
      const [customValue] = await store.registry.getMany('bucket', [registryId(level, key)])
      const result = await store.consume([op])
      const figures = result.results[0]!
      return {
        level,
        key,
        tier,
        policy: policyToInput(op.policy),
        custom: customValue !== undefined,
        limit: op.policy.capacity,
        remaining: figures.remaining,
        resetAfterMs: figures.resetAfterMs,
      }
    },

    async setTier(ref, tier) {
      const { level, key } =
        typeof ref === 'string' ? { level: levelNames[0]!, key: validateKey(ref, 'key') } : checkRef(ref)
      const waitTiers = ensureTiers()
      if (waitTiers) await waitTiers
      const id = registryId(level, key)
      if (tier === null) {
        await store.registry.delete('assignment', id)
        rememberRef(level, key, 'assignment', null)
        return
      }
      checkTier(tier, 'tier')
      await store.registry.put('assignment', id, JSON.stringify(tier))
      rememberRef(level, key, 'assignment', tier)
    },

    async getTier(ref) {
      const { level, key } =
        typeof ref === 'string' ? { level: levelNames[0]!, key: validateKey(ref, 'key') } : checkRef(ref)
      const [value] = await store.registry.getMany('assignment', [registryId(level, key)])
      const tier = parseRegistryValue('assignment', value)
      return typeof tier === 'string' ? tier : undefined
    },

    async updateLimits(tier, limits) {
      const waitTiers = ensureTiers()
      if (waitTiers) await waitTiers
      checkTier(tier, 'tier')
      const parsed = parseTierLimits(tier, limits)
      if (parsed.size === 0)
        throw invalid(ErrorCode.InvalidPolicy, `limits`, limits, 'at least one level → policy')
      // One registry entry per (tier, level): concurrent changes of different levels never overwrite each other.
      for (const [level, policy] of parsed) {
        await store.registry.put('tier', registryId(tier, level), JSON.stringify(policyToInput(policy)))
      }
      const next = new Map(tiers)
      next.set(tier, new Map([...(tiers.get(tier) ?? []), ...parsed]))
      tiers = next
    },

    on(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async close() {
      unsubscribe()
      listeners.clear()
    },
  }

  function checkRef(ref: unknown): BucketRef {
    if (typeof ref !== 'object' || ref === null)
      throw invalid(ErrorCode.InvalidKey, 'ref', ref, 'an object { level, key }')
    const { level, key } = ref as BucketRef
    return { level: checkLevel(level, 'level'), key: validateKey(key, 'key') }
  }

  function unknownBucket(level: string, key: string): TollgateError {
    return new TollgateError(
      ErrorCode.UnknownBucket,
      `no bucket ${describeValue(key)} at level ${describeValue(level)}`,
      {
        field: 'key',
        value: key,
      },
    )
  }

  return limiter
}
