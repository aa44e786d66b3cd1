import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Meter,
  type MeterProvider,
  metrics,
} from '@opentelemetry/api'
import { ErrorCode, TollgateError } from '@tollgate/core'
import {
  BREAKER_STATES,
  type ObservableLimiter,
  type ObserveOptions,
  OUTCOMES,
  observeLimiter,
  validateOptions,
} from '@tollgate/metrics'

export type { BreakerState, FallbackMode, ObservableLimiter, Outcome, StatsSource } from '@tollgate/metrics'

/** Seconds. A store call times out at 50 ms by default, so the boundaries are fine below that. */
export const DEFAULT_STORE_LATENCY_BOUNDARIES: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
]

/** The instrumentation scope of the default meter. */
export const METER_NAME = '@tollgate/otel'

export interface OtelMetricsOptions extends ObserveOptions {
  /** The meter that creates the instruments. Default: `meterProvider.getMeter('@tollgate/otel')`. */
  meter?: Meter
  /** Where the default meter comes from. Default: the global provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider
  /** Advised bucket boundaries (seconds) of `tollgate.store.duration`. Default DEFAULT_STORE_LATENCY_BOUNDARIES. */
  storeLatencyBoundaries?: readonly number[]
}

/** Stops recording: unsubscribes from the limiter and removes the observable callbacks. */
export type UnregisterOtelMetrics = () => void

/** Limiter names recording through each meter: two limiters under one name would add into one series. */
const namesByMeter = new WeakMap<Meter, Set<string>>()

function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return new TollgateError(ErrorCode.InvalidOption, `${field} must be ${expectation}; got ${String(value)}`, {
    field,
    value,
  })
}

function validate(options: OtelMetricsOptions): void {
  const { meter, meterProvider, storeLatencyBoundaries: bounds } = options
  if (
    meter !== undefined &&
    (typeof meter !== 'object' || meter === null || typeof meter.createCounter !== 'function')
  ) {
    throw optionError('meter', meter, 'an OpenTelemetry Meter')
  }
  if (
    meterProvider !== undefined &&
    (typeof meterProvider !== 'object' ||
      meterProvider === null ||
      typeof meterProvider.getMeter !== 'function')
  ) {
    throw optionError('meterProvider', meterProvider, 'an OpenTelemetry MeterProvider')
  }
  if (
    bounds !== undefined &&
    (!Array.isArray(bounds) ||
      bounds.length === 0 ||
      bounds.some(
        (b, i) => typeof b !== 'number' || !(b > 0) || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!),
      ))
  ) {
    throw optionError('storeLatencyBoundaries', bounds, 'increasing positive numbers of seconds')
  }
}

/**
 * Records a limiter's metrics through the OpenTelemetry metrics API: the same instruments as
 * @tollgate/prometheus. Attribute values come from the limiter's configuration (levels, tiers) and fixed
 * sets (outcomes, modes, error codes): tenant keys are never attributes, so cardinality stays bounded.
 */
export function registerOtelMetrics(
  limiter: ObservableLimiter,
  options: OtelMetricsOptions = {},
): UnregisterOtelMetrics {
  validateOptions(options, limiter)
  validate(options)
  const meter = options.meter ?? (options.meterProvider ?? metrics.getMeterProvider()).getMeter(METER_NAME)

  const decisions = meter.createCounter('tollgate.decisions', {
    description: 'Decisions by binding level, outcome and tier.',
    unit: '{decision}',
  })
  const nearLimit = meter.createCounter('tollgate.near_limit_decisions', {
    description:
      'Admitted decisions that left a level above the near-limit share of its limit (as Envoy ratelimit near_limit), by level and tier.',
    unit: '{decision}',
  })
  const fallback = meter.createCounter('tollgate.fallback_decisions', {
    description: 'Decisions made by onStoreError because the store failed or the circuit was open.',
    unit: '{decision}',
  })
  const storeErrors = meter.createCounter('tollgate.store.errors', {
    description: 'Store calls that failed or timed out, by mode and error code.',
    unit: '{error}',
  })
  const storeDuration = meter.createHistogram('tollgate.store.duration', {
    description: 'Time a decision took, store call included (storeMs of the decision event).',
    unit: 's',
    advice: {
      explicitBucketBoundaries: [...(options.storeLatencyBoundaries ?? DEFAULT_STORE_LATENCY_BOUNDARIES)],
    },
  })
  const breaker = meter.createObservableGauge('tollgate.breaker.state', {
    description:
      'Circuit breaker state: 1 for the current state (closed, half-open, open), 0 for the others.',
  })
  const degraded = meter.createObservableGauge('tollgate.degraded', {
    description: '1 while the store is failing and onStoreError decides, else 0.',
  })
  const storeKeys = meter.createObservableUpDownCounter('tollgate.memory_store.keys', {
    description: 'Buckets held by the in-process store.',
    unit: '{bucket}',
  })
  const storeMaxKeys = meter.createObservableUpDownCounter('tollgate.memory_store.max_keys', {
    description: 'Most buckets the in-process store keeps.',
    unit: '{bucket}',
  })
  const evictions = meter.createObservableCounter('tollgate.memory_store.evictions', {
    description:
      'Buckets the in-process store dropped to make room (each such tenant starts again with a full bucket).',
    unit: '{bucket}',
  })

  // One attributes object per series, made once: the hot path allocates nothing.
  const attributeCache = new Map<string, Attributes>()
  let limiterName = ''
  const attributes = (key: string, make: () => Attributes): Attributes => {
    let found = attributeCache.get(key)
    if (!found) {
      found = { 'tollgate.limiter': limiterName, ...make() }
      attributeCache.set(key, found)
    }
    return found
  }
  const add = (counter: Counter, key: string, make: () => Attributes, value = 1) =>
    counter.add(value, attributes(key, make))

  const observer = observeLimiter(
    limiter,
    {
      decision(level, outcome, tier) {
        add(decisions, `d\0${level}\0${outcome}\0${tier}`, () => ({
          'tollgate.level': level,
          'tollgate.outcome': outcome,
          'tollgate.tier': tier,
        }))
      },
      nearLimit(level, tier) {
        add(nearLimit, `n\0${level}\0${tier}`, () => ({ 'tollgate.level': level, 'tollgate.tier': tier }))
      },
      fallback(mode, outcome) {
        add(fallback, `f\0${mode}\0${outcome}`, () => ({
          'tollgate.mode': mode,
          'tollgate.outcome': outcome,
        }))
      },
      storeError(mode, code) {
        add(storeErrors, `e\0${mode}\0${code}`, () => ({ 'tollgate.mode': mode, 'error.type': code }))
      },
      storeLatency(seconds) {
        storeDuration.record(
          seconds,
          attributes('l', () => ({})),
        )
      },
    },
    options,
  )
  limiterName = observer.limiter
  let names = namesByMeter.get(meter)
  if (!names) {
    names = new Set()
    namesByMeter.set(meter, names)
  }
  if (names.has(limiterName)) {
    observer.close()
    throw optionError(
      'name',
      limiterName,
      'a limiter name not yet recording through this meter (pass options.name to tell limiters apart)',
    )
  }
  names.add(limiterName)

  // Zero series from the start, so a rate sees the first decision of each kind.
  for (const level of observer.levelLabels) {
    for (const tier of observer.tierLabels()) {
      for (const outcome of OUTCOMES) {
        add(
          decisions,
          `d\0${level}\0${outcome}\0${tier}`,
          () => ({ 'tollgate.level': level, 'tollgate.outcome': outcome, 'tollgate.tier': tier }),
          0,
        )
      }
      add(nearLimit, `n\0${level}\0${tier}`, () => ({ 'tollgate.level': level, 'tollgate.tier': tier }), 0)
    }
  }

  const observables = [breaker, degraded, storeKeys, storeMaxKeys, evictions]
  const collect = (result: BatchObservableResult) => {
    const current = observer.breakerState()
    for (const state of BREAKER_STATES) {
      result.observe(breaker, state === current ? 1 : 0, {
        'tollgate.limiter': limiterName,
        'tollgate.breaker.state': state,
      })
    }
    result.observe(degraded, observer.degraded() ? 1 : 0, { 'tollgate.limiter': limiterName })
    for (const { store, stats } of observer.storeStats()) {
      const labels = { 'tollgate.limiter': limiterName, 'tollgate.store': store }
      result.observe(storeKeys, stats.size, labels)
      if (stats.maxKeys !== undefined) result.observe(storeMaxKeys, stats.maxKeys, labels)
      result.observe(evictions, stats.evictions, labels)
    }
  }
  meter.addBatchObservableCallback(collect, observables)

  let unregistered = false
  return () => {
    if (unregistered) return
    unregistered = true
    observer.close()
    meter.removeBatchObservableCallback(collect, observables)
    names.delete(limiterName)
  }
}
