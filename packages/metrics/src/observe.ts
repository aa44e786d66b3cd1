import { type Decision, ErrorCode, type LimiterEvent, TollgateError } from '@tollgate/core'
import { optionError } from './errors.js'

/** What became of a decision: `degraded` when the store failed and `onStoreError` decided instead. */
export type Outcome = 'admitted' | 'refused' | 'degraded'
export type BreakerState = 'closed' | 'half-open' | 'open'
/** The `onStoreError` mode that decided a fallback decision. */
export type FallbackMode = 'open' | 'closed' | 'local'

/** Label value for a decision with no tier, or no binding level (no level in force). */
export const NONE = 'none'
/** Label value for anything outside the limiter's configuration (never a tenant key). */
export const OTHER = 'other'
/** At most this many tier label values per limiter; further tiers are counted as `other`. */
export const MAX_TIER_LABELS = 100
/** Envoy ratelimit's default `NEAR_LIMIT_RATIO`. */
export const DEFAULT_NEAR_LIMIT_RATIO = 0.8

export const OUTCOMES: readonly Outcome[] = ['admitted', 'refused', 'degraded']
export const BREAKER_STATES: readonly BreakerState[] = ['closed', 'half-open', 'open']
export const FALLBACK_MODES: readonly FallbackMode[] = ['open', 'closed', 'local']

/** What a store's `stats()` returns (MemoryStore's shape). */
export interface StoreStats {
  readonly size: number
  readonly maxKeys?: number
  readonly evictions: number
}

export interface StatsSource {
  stats(): StoreStats
}

/**
 * The part of a Limiter the metrics read: its events and its configuration. Levels and tiers come from the
 * configuration, so label values are bounded; tenant keys are never read into a label.
 */
export interface ObservableLimiter {
  on(listener: (event: LimiterEvent) => void): () => void
  readonly levels: readonly string[]
  readonly tierNames: readonly string[]
  readonly name?: string
  readonly store?: unknown
}

export interface ObserveOptions {
  /** The `limiter` label value. Default: `limiter.name`, else `default`. */
  name?: string
  /**
   * An admitted decision is near the limit on a level when what it leaves used is above this share of the
   * level's limit (Envoy ratelimit's `NEAR_LIMIT_RATIO`): used > ⌊limit × ratio⌋. From 0 to below 1; default 0.8.
   */
  nearLimitRatio?: number
  /**
   * Stores whose `stats()` (size, maxKeys, evictions) is read at each collection, by label value, e.g.
   * `{ memory: store }` for a MemoryStore. Default: `limiter.store` when a limiter exposes one with stats().
   */
  stores?: Readonly<Record<string, StatsSource>>
}

/** Receives every measurement as it happens, with label values already bounded. */
export interface MeasurementSink {
  decision(level: string, outcome: Outcome, tier: string): void
  nearLimit(level: string, tier: string): void
  fallback(mode: FallbackMode, outcome: 'admitted' | 'refused'): void
  /** A store call's duration in seconds, when the decision event carries `storeMs`. */
  storeLatency(seconds: number): void
  /** `code` is a TollgateError code (ERR_TOLLGATE_STORE_TIMEOUT, ...) or `other`. */
  storeError(mode: FallbackMode, code: string): void
}

export interface LimiterObserver {
  /** The `limiter` label value. */
  readonly limiter: string
  /** Label values a decision can carry, for zero-initialising counters. */
  readonly levelLabels: readonly string[]
  tierLabels(): readonly string[]
  /** The breaker state: from `breaker` events, or derived from `degraded` (open) and `recovered` (closed). */
  breakerState(): BreakerState
  /** True between a `degraded` and the next `recovered` event. */
  degraded(): boolean
  /** Each store's stats, read now. A store whose stats() throws is left out. */
  storeStats(): { store: string; stats: StoreStats }[]
  /** Stops listening to the limiter. */
  close(): void
}

function hasStats(value: unknown): value is StatsSource {
  return typeof value === 'object' && value !== null && typeof (value as StatsSource).stats === 'function'
}

/** A TollgateError's code, else `other`: error messages and foreign codes never become label values. */
export function errorLabel(error: unknown): string {
  if (error instanceof TollgateError) return error.code
  // A second copy of core (ESM and CJS both loaded) makes instanceof miss; its codes are the same.
  const candidate = error as { name?: unknown; code?: unknown } | null
  if (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.name === 'TollgateError' &&
    typeof candidate.code === 'string' &&
    (Object.values(ErrorCode) as string[]).includes(candidate.code)
  ) {
    return candidate.code
  }
  return OTHER
}

/** The `limiter` label value: `options.name`, else the limiter's name, else `default`. */
export function limiterLabel(limiter: ObservableLimiter, options: ObserveOptions = {}): string {
  return options.name ?? (typeof limiter.name === 'string' && limiter.name ? limiter.name : 'default')
}

/** True when an admitted level is past the near-limit share of its limit. */
export function isNearLimit(limit: number, remaining: number, ratio: number): boolean {
  if (!(limit > 0) || !Number.isFinite(limit)) return false
  return limit - remaining > Math.floor(limit * ratio)
}

export function validateOptions(options: ObserveOptions | undefined, limiter: ObservableLimiter): void {
  if (typeof limiter !== 'object' || limiter === null || typeof limiter.on !== 'function') {
    throw optionError('limiter', limiter, 'a Limiter (createLimiter from @tollgate/core)')
  }
  if (options === undefined) return
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  const ratio = options.nearLimitRatio
  if (ratio !== undefined && (typeof ratio !== 'number' || !(ratio >= 0 && ratio < 1))) {
    throw optionError('nearLimitRatio', ratio, 'a number from 0 to below 1 (Envoy’s default is 0.8)')
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
    throw optionError('name', options.name, 'a non-empty string')
  }
  if (options.stores !== undefined) {
    if (typeof options.stores !== 'object' || options.stores === null) {
      throw optionError('stores', options.stores, 'an object of stores with stats(), by label value')
    }
    for (const [label, store] of Object.entries(options.stores)) {
      if (!hasStats(store))
        throw optionError(`stores.${label}`, store, 'a store with stats() (a MemoryStore)')
    }
  }
}

/**
 * Listens to a limiter and turns each event into measurements with bounded label values: levels and tiers
 * from the limiter's configuration, outcomes, modes and error codes from fixed sets. Prometheus and
 * OpenTelemetry sinks are built on it; another metrics system needs only a MeasurementSink.
 */
export function observeLimiter(
  limiter: ObservableLimiter,
  sink: MeasurementSink,
  options: ObserveOptions = {},
): LimiterObserver {
  validateOptions(options, limiter)
  const ratio = options.nearLimitRatio ?? DEFAULT_NEAR_LIMIT_RATIO
  const name = limiterLabel(limiter, options)
  const levelSet = new Set(limiter.levels)
  const stores: [string, StatsSource][] = options.stores
    ? Object.entries(options.stores)
    : hasStats(limiter.store)
      ? [[storeLabel(limiter.store), limiter.store]]
      : []

  // Tiers are configuration, read again when the registry says tiers changed.
  let tiers: Set<string> | undefined
  const knownTiers = (): Set<string> => {
    tiers ??= new Set(limiter.tierNames.slice(0, MAX_TIER_LABELS))
    return tiers
  }
  const tierLabel = (tier: string | undefined): string =>
    tier === undefined ? NONE : knownTiers().has(tier) ? tier : OTHER
  const levelLabel = (level: string | undefined): string =>
    level === undefined ? NONE : levelSet.has(level) ? level : OTHER

  let breaker: BreakerState = 'closed'
  let breakerEventsSeen = false
  let degraded = false

  function onDecision(decision: Decision, storeMs: unknown): void {
    const tier = tierLabel(decision.tier)
    const mode = decision.degraded
    const outcome: Outcome = mode ? 'degraded' : decision.allowed ? 'admitted' : 'refused'
    sink.decision(levelLabel(decision.binding), outcome, tier)
    if (mode) sink.fallback(mode, decision.allowed ? 'admitted' : 'refused')
    if (decision.allowed && decision.cost > 0) {
      for (const level of decision.levels) {
        if (isNearLimit(level.limit, level.remaining, ratio)) sink.nearLimit(levelLabel(level.level), tier)
      }
    }
    if (typeof storeMs === 'number' && storeMs >= 0 && Number.isFinite(storeMs))
      sink.storeLatency(storeMs / 1000)
  }

  const listener = (event: LimiterEvent): void => {
    switch (event.type) {
      case 'decision':
        onDecision(event.decision, event.storeMs)
        break
      case 'store-error':
        sink.storeError(event.mode, errorLabel(event.error))
        break
      case 'degraded':
        degraded = true
        if (!breakerEventsSeen) breaker = 'open'
        break
      case 'recovered':
        degraded = false
        if (!breakerEventsSeen) breaker = 'closed'
        break
      case 'breaker':
        // Checked at run time too: an unknown state from a newer core must not become a label.
        if ((BREAKER_STATES as readonly string[]).includes(event.state)) {
          breakerEventsSeen = true
          breaker = event.state
        }
        break
      case 'registry-change':
        if (event.kind === undefined || event.kind === 'tier') tiers = undefined
        break
    }
  }
  const off = limiter.on(listener)

  return {
    limiter: name,
    levelLabels: [...levelSet],
    tierLabels: () => {
      const known = [...knownTiers()]
      return known.length ? known : [NONE]
    },
    breakerState: () => breaker,
    degraded: () => degraded,
    storeStats() {
      const out: { store: string; stats: StoreStats }[] = []
      for (const [store, source] of stores) {
        try {
          out.push({ store, stats: source.stats() })
        } catch {
          // A store that cannot report now is left out of this collection, never failing the scrape.
        }
      }
      return out
    },
    close: off,
  }
}

function storeLabel(store: unknown): string {
  const name = (store as { name?: unknown }).name
  return typeof name === 'string' && name.length > 0 ? name : 'store'
}
