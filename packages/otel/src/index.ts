import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Meter,
  type MeterProvider,
  metrics,
} from '@opentelemetry/api'
import {
  assertBoundaries,
  assertObjectWith,
  BREAKER_STATES,
  type CounterName,
  type CountSeries,
  limiterLabel,
  type ObservableLimiter,
  type ObserveOptions,
  once,
  STORE_LATENCY_SECONDS,
  startRecording,
  validateOptions,
} from '@tollgate/metrics'

export type { BreakerState, FallbackMode, ObservableLimiter, Outcome, StatsSource } from '@tollgate/metrics'

/** Seconds: fine where healthy calls fall, up to 1 s, past a store call's 500 ms default timeout. */
export const DEFAULT_STORE_LATENCY_BOUNDARIES: readonly number[] = STORE_LATENCY_SECONDS

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

/** OpenTelemetry attribute names: the semantic conventions' `error.type` for codes, `tollgate.*` for the rest. */
function attributeName(label: string): string {
  return label === 'code' ? 'error.type' : `tollgate.${label}`
}

/** Limiter names recording through each meter: two limiters under one name would add into one series. */
const namesByMeter = new WeakMap<Meter, Set<string>>()

function validate(options: OtelMetricsOptions): void {
  const { meter, meterProvider, storeLatencyBoundaries: bounds } = options
  assertObjectWith(meter, 'meter', 'createCounter', 'an OpenTelemetry Meter')
  assertObjectWith(meterProvider, 'meterProvider', 'getMeter', 'an OpenTelemetry MeterProvider')
  assertBoundaries(bounds, 'storeLatencyBoundaries')
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

  const counter = (name: string, description: string, unit: string) =>
    meter.createCounter(name, { description, unit })
  const decisions = counter(
    'tollgate.decisions',
    'Decisions by binding level, outcome and tier.',
    '{decision}',
  )
  const nearLimit = counter(
    'tollgate.near_limit_decisions',
    'Admitted decisions that left a level above the near-limit share of its limit (as Envoy ratelimit near_limit), by level and tier.',
    '{decision}',
  )
  const fallback = counter(
    'tollgate.fallback_decisions',
    'Decisions made by onStoreError because the store failed or the circuit was open.',
    '{decision}',
  )
  const storeErrors = counter(
    'tollgate.store.errors',
    'Store calls that failed or timed out, by mode and error code.',
    '{error}',
  )
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
  const bucketCount = (name: string, description: string) =>
    meter.createObservableUpDownCounter(name, { description, unit: '{bucket}' })
  const storeKeys = bucketCount('tollgate.memory_store.keys', 'Buckets held by the in-process store.')
  const storeMaxKeys = bucketCount(
    'tollgate.memory_store.max_keys',
    'Most buckets the in-process store keeps.',
  )
  const evictions = meter.createObservableCounter('tollgate.memory_store.evictions', {
    description:
      'Buckets the in-process store dropped to make room (each such tenant starts again with a full bucket).',
    unit: '{bucket}',
  })

  // One attributes object per series, made once: the hot path allocates nothing.
  const counters: Record<CounterName, Counter> = { decisions, nearLimit, fallback, storeErrors }
  const attributeCache = new Map<string, Attributes>()
  const limiterName = limiterLabel(limiter, options)
  const attributes = (key: string, make: () => Readonly<Record<string, string>>): Attributes => {
    let found = attributeCache.get(key)
    if (!found) {
      found = { 'tollgate.limiter': limiterName }
      for (const [label, value] of Object.entries(make())) found[attributeName(label)] = value
      attributeCache.set(key, found)
    }
    return found
  }
  const count: CountSeries = (counter, key, labels, by) =>
    counters[counter].add(by, attributes(`${counter}\0${key}`, labels))
  const storeLatency = (seconds: number) =>
    storeDuration.record(
      seconds,
      attributes('latency', () => ({})),
    )

  let names = namesByMeter.get(meter)
  if (!names) {
    names = new Set()
    namesByMeter.set(meter, names)
  }
  const taken = (n: string) => names.has(n)
  const observer = startRecording(limiter, options, { count, storeLatency }, taken, 'through this meter')
  names.add(limiterName)

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

  return once(() => {
    observer.close()
    meter.removeBatchObservableCallback(collect, observables)
    names.delete(limiterName)
  })
}
