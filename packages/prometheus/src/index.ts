import {
  assertBoundaries,
  assertObjectWith,
  BREAKER_STATES,
  type CounterName,
  type CountSeries,
  type Labels,
  type LimiterObserver,
  limiterLabel,
  type ObservableLimiter,
  type ObserveOptions,
  once,
  optionError,
  STORE_LATENCY_SECONDS,
  type StoreStats,
  startRecording,
  validateOptions,
} from '@tollgate/metrics'
import { Counter, Gauge, register as globalRegistry, Histogram, type Registry } from 'prom-client'

export type { BreakerState, FallbackMode, ObservableLimiter, Outcome, StatsSource } from '@tollgate/metrics'

/** Seconds: fine where healthy calls fall, up to 1 s, past a store call's 500 ms default timeout. */
export const DEFAULT_STORE_LATENCY_BUCKETS: readonly number[] = STORE_LATENCY_SECONDS

export interface PrometheusMetricsOptions extends ObserveOptions {
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  registry?: Registry
  /** Prefix of every metric name. Default `tollgate_`. */
  prefix?: string
  /**
   * Histogram buckets of `tollgate_store_duration_seconds`, in seconds. The first limiter registered on a
   * registry (with this prefix) fixes them. Default DEFAULT_STORE_LATENCY_BUCKETS.
   */
  storeLatencyBuckets?: readonly number[]
}

/** Unregisters what `registerMetrics` added: this limiter's series, and the metrics once no limiter is left. */
export type UnregisterMetrics = () => void

interface Instruments {
  readonly registry: Registry
  readonly names: string[]
  readonly decisions: Counter
  readonly nearLimit: Counter
  readonly fallback: Counter
  readonly storeErrors: Counter
  readonly storeDuration: Histogram
  readonly observers: Map<string, LimiterObserver>
}

const byRegistry = new WeakMap<Registry, Map<string, Instruments>>()

function createInstruments(registry: Registry, prefix: string, buckets: readonly number[]): Instruments {
  const observers = new Map<string, LimiterObserver>()
  const names: string[] = []
  const registers = [registry]
  const name = (suffix: string) => {
    names.push(prefix + suffix)
    return prefix + suffix
  }
  const counter = (suffix: string, help: string, labelNames: string[]) =>
    new Counter({ name: name(suffix), help, labelNames, registers })

  const instruments: Instruments = {
    registry,
    names,
    observers,
    decisions: counter('decisions_total', 'Decisions by binding level, outcome and tier.', [
      'limiter',
      'level',
      'outcome',
      'tier',
    ]),
    nearLimit: counter(
      'near_limit_decisions_total',
      'Admitted decisions that left a level above the near-limit share of its limit (as Envoy ratelimit near_limit), by level and tier.',
      ['limiter', 'level', 'tier'],
    ),
    fallback: counter(
      'fallback_decisions_total',
      'Decisions made by onStoreError because the store failed or the circuit was open, by mode and outcome.',
      ['limiter', 'mode', 'outcome'],
    ),
    storeErrors: counter(
      'store_errors_total',
      'Store calls that failed or timed out, by mode and error code.',
      ['limiter', 'mode', 'code'],
    ),
    storeDuration: new Histogram({
      name: name('store_duration_seconds'),
      help: 'Time a decision took, store call included (storeMs of the decision event).',
      labelNames: ['limiter'],
      buckets: [...buckets],
      registers,
    }),
  }

  // Gauges and the eviction counter are read at scrape, from every limiter registered here.
  new Gauge({
    name: name('breaker_state'),
    help: 'Circuit breaker state: 1 for the current state (closed, half-open, open), 0 for the others.',
    labelNames: ['limiter', 'state'],
    registers,
    collect() {
      this.reset()
      for (const observer of observers.values()) {
        const current = observer.breakerState()
        for (const state of BREAKER_STATES) {
          this.set({ limiter: observer.limiter, state }, state === current ? 1 : 0)
        }
      }
    },
  })
  new Gauge({
    name: name('degraded'),
    help: '1 while the store is failing and onStoreError decides, else 0.',
    labelNames: ['limiter'],
    registers,
    collect() {
      this.reset()
      for (const observer of observers.values())
        this.set({ limiter: observer.limiter }, observer.degraded() ? 1 : 0)
    },
  })
  const eachStore = (visit: (labels: Labels, stats: StoreStats) => void) => {
    for (const observer of observers.values()) {
      for (const { store, stats } of observer.storeStats()) visit({ limiter: observer.limiter, store }, stats)
    }
  }
  const storeGauge = (suffix: string, help: string, read: (s: StoreStats) => number) =>
    new Gauge({
      name: name(suffix),
      help,
      labelNames: ['limiter', 'store'],
      registers,
      collect() {
        this.reset()
        eachStore((labels, stats) => {
          const value = read(stats)
          if (Number.isFinite(value)) this.set(labels, value)
        })
      },
    })
  storeGauge('memory_store_keys', 'Buckets held by the in-process store.', (s) => s.size)
  storeGauge(
    'memory_store_max_keys',
    'Most buckets the in-process store keeps.',
    (s) => s.maxKeys ?? Number.NaN,
  )
  new Counter({
    name: name('memory_store_evictions_total'),
    help: 'Buckets the in-process store dropped to make room (each such tenant starts again with a full bucket).',
    labelNames: ['limiter', 'store'],
    registers,
    collect() {
      this.reset()
      eachStore((labels, stats) => this.inc(labels, stats.evictions))
    },
  })
  return instruments
}

function validate(options: PrometheusMetricsOptions): void {
  const { registry, prefix, storeLatencyBuckets: buckets } = options
  assertObjectWith(registry, 'registry', 'metrics', 'a prom-client Registry')
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))) {
    throw optionError('prefix', prefix, 'a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)')
  }
  assertBoundaries(buckets, 'storeLatencyBuckets')
}

/**
 * Registers a limiter's metrics on a prom-client Registry (the global one by default). Label values come
 * from the limiter's configuration (levels, tiers) and fixed sets (outcomes, modes, error codes): tenant keys
 * are never labels, so the number of series stays bounded however many tenants there are. Several limiters
 * can share a registry; each needs its own `name` (default `limiter.name`).
 */
export function registerMetrics(
  limiter: ObservableLimiter,
  options: PrometheusMetricsOptions = {},
): UnregisterMetrics {
  validateOptions(options, limiter)
  validate(options)
  const registry = options.registry ?? globalRegistry
  const prefix = options.prefix ?? 'tollgate_'
  let perPrefix = byRegistry.get(registry)
  if (!perPrefix) {
    perPrefix = new Map()
    byRegistry.set(registry, perPrefix)
  }
  let instruments = perPrefix.get(prefix)
  if (!instruments) {
    instruments = createInstruments(
      registry,
      prefix,
      options.storeLatencyBuckets ?? DEFAULT_STORE_LATENCY_BUCKETS,
    )
    perPrefix.set(prefix, instruments)
  }
  const { decisions, nearLimit, fallback, storeErrors, storeDuration, observers } = instruments

  // Every series this limiter used, so unregistering removes exactly its series.
  const counters: Record<CounterName, Counter> = { decisions, nearLimit, fallback, storeErrors }
  const children = new Map<string, Counter.Internal>()
  const removals: (() => void)[] = []
  let histogram: Histogram.Internal<string> | undefined
  const limiterName = limiterLabel(limiter, options)
  const count: CountSeries = (counter, key, labels, by) => {
    const id = `${counter}\0${key}`
    let found = children.get(id)
    if (!found) {
      const metric = counters[counter]
      const values: Labels = { limiter: limiterName, ...labels() }
      found = metric.labels(values)
      children.set(id, found)
      removals.push(() => metric.remove(values))
    }
    found.inc(by)
  }
  const storeLatency = (seconds: number) => {
    if (!histogram) {
      const labels = { limiter: limiterName }
      histogram = storeDuration.labels(labels)
      removals.push(() => storeDuration.remove(labels))
    }
    histogram.observe(seconds)
  }

  const taken = (n: string) => observers.has(n)
  const observer = startRecording(limiter, options, { count, storeLatency }, taken, 'on this registry')
  observers.set(limiterName, observer)

  return once(() => {
    observer.close()
    observers.delete(limiterName)
    for (const remove of removals) remove()
    if (observers.size === 0) {
      for (const metricName of instruments.names) registry.removeSingleMetric(metricName)
      perPrefix.delete(prefix)
    }
  })
}
