import {
  createLimiter,
  type Decision,
  ErrorCode,
  type LimiterEvent,
  type LimiterListener,
  TollgateError,
} from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import { manualClock } from '@tollgate/testkit'
import { describe, expect, it } from 'vitest'
import {
  errorLabel,
  isNearLimit,
  type MeasurementSink,
  type ObservableLimiter,
  observeLimiter,
} from '../src/index.js'

type Call = [method: keyof MeasurementSink, ...args: unknown[]]

function recordingSink(): { sink: MeasurementSink; calls: Call[] } {
  const calls: Call[] = []
  const sink: MeasurementSink = {
    decision: (...args) => calls.push(['decision', ...args]),
    nearLimit: (...args) => calls.push(['nearLimit', ...args]),
    fallback: (...args) => calls.push(['fallback', ...args]),
    storeLatency: (...args) => calls.push(['storeLatency', ...args]),
    storeError: (...args) => calls.push(['storeError', ...args]),
  }
  return { sink, calls }
}

/**
 * A source of events in the shapes core documents, including the ones core has not sent yet (`breaker`,
 * `storeMs`), so those paths are exercised today; the real limiter is used wherever it emits the event.
 */
function eventSource(levels: string[], tierNames: string[]) {
  const listeners = new Set<LimiterListener>()
  const source: ObservableLimiter & { emit(event: unknown): void } = {
    levels,
    get tierNames() {
      return tierNames
    },
    name: 'source',
    on(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    emit(event) {
      for (const listener of listeners) listener(event as LimiterEvent)
    },
  }
  return source
}

function decision(fields: Partial<Decision>): Decision {
  return {
    allowed: true,
    cost: 1,
    tier: undefined,
    binding: undefined,
    remaining: 0,
    limit: 0,
    resetAfterMs: 0,
    retryAfterMs: 0,
    delayMs: 0,
    levels: [],
    now: 0,
    ...fields,
  }
}

describe('observeLimiter with a real limiter', () => {
  it('reports each decision once, with the binding level, outcome and tier, and near-limit levels', async () => {
    const clock = manualClock()
    const store = memoryStore({ clock: clock.now })
    const limiter = createLimiter({
      store,
      clock: clock.now,
      levels: ['user', { name: 'global', key: 'global' }],
      tiers: {
        free: {
          user: { capacity: 3, refill: { tokens: 3, per: '1m' } },
          global: { capacity: 4, refill: { tokens: 4, per: '1m' } },
        },
      },
    })
    const { sink, calls } = recordingSink()
    const observer = observeLimiter(limiter, sink, { nearLimitRatio: 0.5, stores: { memory: store } })
    await limiter.check({ user: 'a' }) // user 1/3, global 1/4
    await limiter.check({ user: 'a' }) // user 2/3 near (2 > 1), global 2/4 not (2 > 2 is false)
    await limiter.check({ user: 'b' }) // user 1/3, global 3/4 near
    await limiter.check({ user: 'c' }) // global 4/4 near
    await limiter.check({ user: 'd' }) // refused by global
    await limiter.check({ user: 'd' }, { cost: 0 }) // a peek is a decision, never near-limit
    // Every decision event carries storeMs while someone listens: one latency, in seconds, per decision.
    const latencies = calls.filter(([method]) => method === 'storeLatency')
    expect(latencies).toHaveLength(6)
    for (const [, seconds] of latencies) expect(seconds).toBeGreaterThanOrEqual(0)
    expect(calls.filter(([method]) => method !== 'storeLatency')).toEqual([
      ['decision', 'user', 'admitted', 'free'],
      ['decision', 'user', 'admitted', 'free'],
      ['nearLimit', 'user', 'free'],
      ['decision', 'global', 'admitted', 'free'],
      ['nearLimit', 'global', 'free'],
      ['decision', 'global', 'admitted', 'free'],
      ['nearLimit', 'global', 'free'],
      ['decision', 'global', 'refused', 'free'],
      ['decision', 'global', 'refused', 'free'],
    ])
    expect(observer.levelLabels).toEqual(['user', 'global'])
    expect(observer.tierLabels()).toEqual(['free'])
    expect(observer.storeStats()).toEqual([{ store: 'memory', stats: store.stats() }])
    observer.close()
    await limiter.check({ user: 'e' })
    expect(calls).toHaveLength(15)
    await limiter.close()
  })

  it('labels a limiter without tiers `none`', async () => {
    const limiter = createLimiter({ store: memoryStore(), policy: { capacity: 1, refill: 1 } })
    const { sink, calls } = recordingSink()
    const observer = observeLimiter(limiter, sink)
    await limiter.check('k')
    expect(calls[0]).toEqual(['decision', 'key', 'admitted', expect.any(String)])
    expect(observer.tierLabels().length).toBeGreaterThan(0)
    observer.close()
    await limiter.close()
  })
})

describe('observeLimiter with the documented event shapes', () => {
  it('counts fallback decisions as degraded, by mode, and store errors by TollgateError code only', () => {
    const source = eventSource(['user'], ['free'])
    const { sink, calls } = recordingSink()
    observeLimiter(source, sink)
    source.emit({
      type: 'decision',
      decision: decision({ degraded: 'local', binding: 'user', tier: 'free' }),
    })
    source.emit({
      type: 'decision',
      decision: decision({ degraded: 'closed', allowed: false, binding: 'user' }),
    })
    const timeout = new TollgateError(ErrorCode.StoreTimeout, 'store timed out')
    source.emit({ type: 'store-error', mode: 'local', error: timeout })
    source.emit({
      type: 'store-error',
      mode: 'local',
      error: new Error('ECONNREFUSED 127.0.0.1:6379 tenant-42'),
    })
    expect(calls).toEqual([
      ['decision', 'user', 'degraded', 'free'],
      ['fallback', 'local', 'admitted'],
      ['decision', 'user', 'degraded', 'none'],
      ['fallback', 'closed', 'refused'],
      ['storeError', 'local', ErrorCode.StoreTimeout],
      ['storeError', 'local', 'other'],
    ])
  })

  it('maps anything outside the configuration to `other`, never to the value given', () => {
    const source = eventSource(['user'], ['free'])
    const { sink, calls } = recordingSink()
    observeLimiter(source, sink)
    source.emit({
      type: 'decision',
      decision: decision({
        binding: 'tenant-123',
        tier: 'tenant-tier',
        levels: [
          {
            level: 'tenant-123',
            key: 'k',
            limit: 10,
            remaining: 0,
            allowed: true,
            resetAfterMs: 0,
            retryAfterMs: 0,
            delayMs: 0,
            policy: undefined as never,
          },
        ],
      }),
    })
    expect(calls).toEqual([
      ['decision', 'other', 'admitted', 'other'],
      ['nearLimit', 'other', 'other'],
    ])
  })

  it('records storeMs as seconds when a decision event carries it', () => {
    const source = eventSource(['user'], [])
    const { sink, calls } = recordingSink()
    observeLimiter(source, sink)
    source.emit({ type: 'decision', decision: decision({ binding: 'user' }), storeMs: 2.5 })
    source.emit({ type: 'decision', decision: decision({ binding: 'user' }), storeMs: Number.NaN })
    source.emit({ type: 'decision', decision: decision({ binding: 'user' }) })
    expect(calls.filter(([m]) => m === 'storeLatency')).toEqual([['storeLatency', 0.0025]])
  })

  it('follows breaker events once they arrive, and derives the state from degraded/recovered before', () => {
    const source = eventSource(['user'], [])
    const observer = observeLimiter(source, recordingSink().sink)
    expect([observer.breakerState(), observer.degraded()]).toEqual(['closed', false])
    source.emit({ type: 'degraded', mode: 'local', error: new Error('down') })
    expect([observer.breakerState(), observer.degraded()]).toEqual(['open', true])
    source.emit({ type: 'recovered', downMs: 10 })
    expect([observer.breakerState(), observer.degraded()]).toEqual(['closed', false])

    source.emit({ type: 'degraded', mode: 'local', error: new Error('down') })
    source.emit({ type: 'breaker', state: 'half-open' })
    expect([observer.breakerState(), observer.degraded()]).toEqual(['half-open', true])
    // With breaker events seen, degraded no longer stands in for the breaker.
    source.emit({ type: 'breaker', state: 'closed' })
    source.emit({ type: 'degraded', mode: 'local', error: new Error('down') })
    expect([observer.breakerState(), observer.degraded()]).toEqual(['closed', true])
    source.emit({ type: 'breaker', state: 'open' })
    source.emit({ type: 'breaker', state: 'bogus' })
    expect(observer.breakerState()).toBe('open')
  })

  it('reads tiers again after a registry change, capped so a flood of tiers cannot flood labels', () => {
    const tiers = ['free']
    const source = eventSource(['user'], tiers)
    const observer = observeLimiter(source, recordingSink().sink)
    expect(observer.tierLabels()).toEqual(['free'])
    tiers.push('gold')
    expect(observer.tierLabels()).toEqual(['free'])
    source.emit({ type: 'registry-change', kind: 'assignment', id: 'x' })
    expect(observer.tierLabels()).toEqual(['free'])
    source.emit({ type: 'registry-change', kind: 'tier', id: 'gold' })
    expect(observer.tierLabels()).toEqual(['free', 'gold'])
    for (let i = 0; i < 500; i++) tiers.push(`t${i}`)
    source.emit({ type: 'registry-change' })
    expect(observer.tierLabels()).toHaveLength(100)
  })

  it('reads the stores given, and leaves out one whose stats() throws', () => {
    const source = eventSource(['user'], [])
    const observer = observeLimiter(source, recordingSink().sink, {
      stores: {
        local: { stats: () => ({ size: 3, maxKeys: 10, evictions: 1 }) },
        broken: {
          stats: () => {
            throw new Error('no')
          },
        },
      },
    })
    expect(observer.storeStats()).toEqual([{ store: 'local', stats: { size: 3, maxKeys: 10, evictions: 1 } }])
    expect(observer.limiter).toBe('source')
  })
})

describe('helpers', () => {
  it('isNearLimit follows Envoy: used above ⌊limit × ratio⌋', () => {
    expect(isNearLimit(10, 2, 0.8)).toBe(false) // used 8
    expect(isNearLimit(10, 1, 0.8)).toBe(true) // used 9
    expect(isNearLimit(0, 0, 0.8)).toBe(false)
    expect(isNearLimit(Number.POSITIVE_INFINITY, 5, 0.8)).toBe(false)
  })

  it('errorLabel keeps only TollgateError codes', () => {
    expect(errorLabel(new TollgateError(ErrorCode.StoreUnavailable, 'x'))).toBe(ErrorCode.StoreUnavailable)
    // Another copy of core (ESM and CJS both loaded) is recognised by name and code.
    expect(errorLabel({ name: 'TollgateError', code: ErrorCode.StoreTimeout })).toBe(ErrorCode.StoreTimeout)
    expect(errorLabel({ name: 'TollgateError', code: 'tenant-7' })).toBe('other')
    expect(errorLabel(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('other')
    expect(errorLabel(undefined)).toBe('other')
  })
})
