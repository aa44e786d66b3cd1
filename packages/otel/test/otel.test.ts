import { randomUUID } from 'node:crypto'
import type { Attributes } from '@opentelemetry/api'
import {
  AggregationTemporality,
  DataPointType,
  type HistogramMetricData,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { createLimiter, ErrorCode, TollgateError } from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import { redisStore } from '@tollgate/redis'
import { manualClock, startRedis } from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { registerOtelMetrics } from '../src/index.js'

const perMinute = (capacity: number) => ({ capacity, refill: { tokens: capacity, per: '1m' as const } })

/** A real SDK MeterProvider with an in-memory exporter; collect() exports once and returns what it got. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  return {
    provider,
    async collect(): Promise<MetricData[]> {
      exporter.reset()
      await reader.forceFlush()
      return exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
    },
    shutdown: () => provider.shutdown(),
  }
}

function points(data: MetricData[], name: string, attributes: Attributes = {}) {
  const metric = data.find((m) => m.descriptor.name === name)
  if (!metric) return []
  return (metric.dataPoints as { attributes: Attributes; value: unknown }[]).filter((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  )
}

function total(data: MetricData[], name: string, attributes: Attributes = {}): number {
  return points(data, name, attributes).reduce((sum, p) => sum + (p.value as number), 0)
}

function only(data: MetricData[], name: string, attributes: Attributes = {}): number {
  const found = points(data, name, attributes)
  if (found.length !== 1)
    throw new Error(`expected one ${name}${JSON.stringify(attributes)}, found ${found.length}`)
  return found[0]!.value as number
}

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function memoryLimiter(maxKeys = 1000) {
  const clock = manualClock()
  const store = memoryStore({ clock: clock.now, maxKeys })
  const limiter = createLimiter({
    store,
    clock: clock.now,
    levels: ['user', 'org'],
    tiers: {
      free: { user: perMinute(10), org: perMinute(100) },
      premium: { user: perMinute(100), org: perMinute(1000) },
    },
  })
  cleanups.push(() => limiter.close())
  return { limiter, store }
}

describe('registerOtelMetrics with the real OpenTelemetry SDK and an in-memory exporter', () => {
  it('records decisions, near-limit decisions and memory-store figures with bounded attributes', async () => {
    const metrics = sdk()
    cleanups.push(metrics.shutdown)
    const { limiter, store } = memoryLimiter(3)
    const unregister = registerOtelMetrics(limiter, {
      meterProvider: metrics.provider,
      name: 'api',
      stores: { memory: store },
    })
    cleanups.push(unregister)
    for (let i = 0; i < 12; i++) await limiter.check({ user: 'u1', org: 'acme' })
    for (let i = 0; i < 3; i++) await limiter.check({ user: `u-${i}`, org: 'acme' })

    const data = await metrics.collect()
    const decisions = data.find((m) => m.descriptor.name === 'tollgate.decisions')!
    expect(decisions.dataPointType).toBe(DataPointType.SUM)
    expect(decisions.descriptor.unit).toBe('{decision}')
    const d = (outcome: string) =>
      only(data, 'tollgate.decisions', {
        'tollgate.limiter': 'api',
        'tollgate.level': 'user',
        'tollgate.outcome': outcome,
        'tollgate.tier': 'free',
      })
    expect(d('admitted')).toBe(13)
    expect(d('refused')).toBe(2)
    expect(d('degraded')).toBe(0)
    expect(total(data, 'tollgate.decisions')).toBe(15)
    expect(
      only(data, 'tollgate.near_limit_decisions', { 'tollgate.level': 'user', 'tollgate.tier': 'free' }),
    ).toBe(2)

    const storeAttributes = { 'tollgate.limiter': 'api', 'tollgate.store': 'memory' }
    expect(only(data, 'tollgate.memory_store.keys', storeAttributes)).toBe(store.stats().size)
    expect(only(data, 'tollgate.memory_store.max_keys', storeAttributes)).toBe(3)
    expect(store.stats().evictions).toBeGreaterThan(0)
    expect(only(data, 'tollgate.memory_store.evictions', storeAttributes)).toBe(store.stats().evictions)
    expect(only(data, 'tollgate.degraded', { 'tollgate.limiter': 'api' })).toBe(0)
    expect(only(data, 'tollgate.breaker.state', { 'tollgate.breaker.state': 'closed' })).toBe(1)

    const values = new Set(
      data.flatMap((m) =>
        (m.dataPoints as { attributes: Attributes }[]).flatMap((p) =>
          Object.values(p.attributes).map(String),
        ),
      ),
    )
    for (const value of values) expect(value).not.toMatch(/u1|u-\d|acme/)
  })

  it('keeps two limiters on one meter apart, and stops recording one that is unregistered', async () => {
    const metrics = sdk()
    cleanups.push(metrics.shutdown)
    const { limiter: first, store: firstStore } = memoryLimiter()
    const { limiter: second, store: secondStore } = memoryLimiter()
    const provider = metrics.provider
    const unregisterFirst = registerOtelMetrics(first, {
      meterProvider: provider,
      name: 'api',
      stores: { memory: firstStore },
    })
    const unregisterSecond = registerOtelMetrics(second, {
      meterProvider: provider,
      name: 'admin',
      stores: { memory: secondStore },
    })
    cleanups.push(unregisterFirst, unregisterSecond)
    expect(() => registerOtelMetrics(second, { meterProvider: metrics.provider, name: 'api' })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'name' }),
    )
    await first.check({ user: 'a', org: 'o' })
    await second.check({ user: 'a', org: 'o' })
    await second.check({ user: 'a', org: 'o' })
    let data = await metrics.collect()
    expect(total(data, 'tollgate.decisions', { 'tollgate.limiter': 'api' })).toBe(1)
    expect(total(data, 'tollgate.decisions', { 'tollgate.limiter': 'admin' })).toBe(2)
    expect(points(data, 'tollgate.degraded')).toHaveLength(2)

    const adminKeys = { 'tollgate.limiter': 'admin', 'tollgate.store': 'memory' }
    expect(only(data, 'tollgate.memory_store.keys', adminKeys)).toBe(2)

    unregisterSecond()
    await second.check({ user: 'a', org: 'o' })
    await second.check({ user: 'b', org: 'o' })
    await first.check({ user: 'b', org: 'o' })
    data = await metrics.collect()
    expect(total(data, 'tollgate.decisions', { 'tollgate.limiter': 'admin' })).toBe(2)
    expect(total(data, 'tollgate.decisions', { 'tollgate.limiter': 'api' })).toBe(2)
    // Its callback is gone: the store grew to 3 buckets, and no collection read it. (A cumulative SDK
    // reader keeps exporting the last value it saw for an asynchronous series.)
    expect(only(data, 'tollgate.memory_store.keys', adminKeys)).toBe(2)
    expect(only(data, 'tollgate.memory_store.keys', { 'tollgate.limiter': 'api' })).toBe(3)
  })

  it('refuses bad options with a TollgateError naming the field', () => {
    const { limiter } = memoryLimiter()
    for (const [options, field] of [
      [{ meter: {} }, 'meter'],
      [{ meterProvider: 5 }, 'meterProvider'],
      [{ storeLatencyBoundaries: [1, 1] }, 'storeLatencyBoundaries'],
      [{ nearLimitRatio: 2 }, 'nearLimitRatio'],
    ] as const) {
      expect(() => registerOtelMetrics(limiter, options as never)).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidOption, field }),
      )
    }
    expect(() => registerOtelMetrics(null as never)).toThrow(TollgateError)
  })

  it('on a real Redis: degraded and fallback decisions, store errors and the breaker during an outage', async () => {
    const metrics = sdk()
    cleanups.push(metrics.shutdown)
    const redis = await startRedis()
    cleanups.push(() => redis.stop())
    const client = new Redis({
      host: '127.0.0.1',
      port: redis.port,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => 50,
    })
    client.on('error', () => {})
    await client.connect()
    cleanups.push(() => client.disconnect())
    const clock = manualClock()
    const limiter = createLimiter({
      store: redisStore({ client, prefix: `t${randomUUID().slice(0, 8)}:`, timeoutMs: 500 }),
      clock: clock.now,
      levels: ['user'],
      tiers: { free: { user: perMinute(3) } },
      onStoreError: 'closed',
      breaker: { failures: 2, cooldownMs: 1000 },
    })
    cleanups.push(() => limiter.close())
    const timed: number[] = []
    limiter.on((event) => {
      if (event.type === 'decision' && typeof event.storeMs === 'number') timed.push(event.storeMs)
    })
    cleanups.push(registerOtelMetrics(limiter, { meterProvider: metrics.provider, name: 'api' }))

    for (let i = 0; i < 4; i++) await limiter.check({ user: 'u1' })
    let data = await metrics.collect()
    expect(only(data, 'tollgate.decisions', { 'tollgate.outcome': 'admitted' })).toBe(3)
    expect(only(data, 'tollgate.decisions', { 'tollgate.outcome': 'refused' })).toBe(1)
    const histogram = data.find((m) => m.descriptor.name === 'tollgate.store.duration') as
      | HistogramMetricData
      | undefined
    // Recorded exactly for the decision events that carry storeMs.
    expect(histogram?.dataPoints.reduce((sum, p) => sum + p.value.count, 0) ?? 0).toBe(timed.length)
    expect(timed).toHaveLength(4)
    expect(histogram!.descriptor.unit).toBe('s')

    process.kill(redis.pid, 'SIGKILL')
    const started = Date.now()
    while (client.status === 'ready' && Date.now() - started < 5000)
      await new Promise((r) => setTimeout(r, 20))
    for (let i = 0; i < 3; i++) await limiter.check({ user: 'u2' })
    data = await metrics.collect()
    expect(only(data, 'tollgate.decisions', { 'tollgate.outcome': 'degraded' })).toBe(3)
    expect(
      only(data, 'tollgate.fallback_decisions', { 'tollgate.mode': 'closed', 'tollgate.outcome': 'refused' }),
    ).toBe(3)
    expect(total(data, 'tollgate.store.errors', { 'tollgate.mode': 'closed' })).toBe(2)
    expect(only(data, 'tollgate.degraded')).toBe(1)
    expect(only(data, 'tollgate.breaker.state', { 'tollgate.breaker.state': 'open' })).toBe(1)
  })
})
