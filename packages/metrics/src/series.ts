import { optionError } from './errors.js'
import {
  type LimiterObserver,
  limiterLabel,
  type MeasurementSink,
  type ObservableLimiter,
  type ObserveOptions,
  OUTCOMES,
  observeLimiter,
} from './observe.js'

/** Store latency histogram boundaries in seconds: fine where healthy calls fall, up to 1 s, past the 500 ms default timeout. */
export const STORE_LATENCY_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
]

/** The counters every metrics package keeps, by their label names (besides `limiter`). */
export type CounterName = 'decisions' | 'nearLimit' | 'fallback' | 'storeErrors'

export type Labels = Readonly<Record<string, string>>

/**
 * Adds `by` to one series of a counter. `key` names the series within the counter, so a sink can keep each
 * series' handle and allocate nothing on the hot path; `labels` is called only for a series not seen yet.
 */
export type CountSeries = (counter: CounterName, key: string, labels: () => Labels, by: number) => void

/** A MeasurementSink that turns every measurement into one count on a named counter. */
export function countingSink(count: CountSeries, storeLatency: (seconds: number) => void): MeasurementSink {
  return {
    decision: (level, outcome, tier) =>
      count('decisions', `${level}\0${outcome}\0${tier}`, () => ({ level, outcome, tier }), 1),
    nearLimit: (level, tier) => count('nearLimit', `${level}\0${tier}`, () => ({ level, tier }), 1),
    fallback: (mode, outcome) => count('fallback', `${mode}\0${outcome}`, () => ({ mode, outcome }), 1),
    storeError: (mode, code) => count('storeErrors', `${mode}\0${code}`, () => ({ mode, code }), 1),
    storeLatency,
  }
}

/** Zero series from the start, so a rate sees the first decision of each kind. */
export function zeroSeries(observer: LimiterObserver, count: CountSeries): void {
  const sink = countingSink(
    (counter, key, labels) => count(counter, key, labels, 0),
    () => undefined,
  )
  for (const level of observer.levelLabels) {
    for (const tier of observer.tierLabels()) {
      for (const outcome of OUTCOMES) sink.decision(level, outcome, tier)
      sink.nearLimit(level, tier)
    }
  }
}

/** An optional option that must be an object with a method `member` (duck-typed: several copies may be loaded). */
export function assertObjectWith(value: unknown, field: string, member: string, expectation: string): void {
  if (value === undefined) return
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as Record<string, unknown>)[member] !== 'function'
  ) {
    throw optionError(field, value, expectation)
  }
}

/** Histogram boundaries: increasing positive seconds. */
export function assertBoundaries(bounds: unknown, field: string): void {
  if (bounds === undefined) return
  if (
    !Array.isArray(bounds) ||
    bounds.length === 0 ||
    bounds.some(
      (b, i) => typeof b !== 'number' || !(b > 0) || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]),
    )
  ) {
    throw optionError(field, bounds, 'increasing positive numbers of seconds')
  }
}

/**
 * Starts recording a limiter into a sink: fails when its name already records there (`taken`), since two
 * limiters under one name would add into the same series, then writes the zero series.
 */
export function startRecording(
  limiter: ObservableLimiter,
  options: ObserveOptions,
  sink: { count: CountSeries; storeLatency: (seconds: number) => void },
  taken: (name: string) => boolean,
  where: string,
): LimiterObserver {
  const name = limiterLabel(limiter, options)
  if (taken(name)) {
    throw optionError(
      'name',
      name,
      `a limiter name not yet recording ${where} (pass options.name to tell limiters apart)`,
    )
  }
  const observer = observeLimiter(limiter, countingSink(sink.count, sink.storeLatency), options)
  zeroSeries(observer, sink.count)
  return observer
}

/** `stop` run on the first call only: unregistering twice is harmless. */
export function once(stop: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    stop()
  }
}
