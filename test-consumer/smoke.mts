// An application's use of the published packages. check-packages.mjs also copies this file to smoke.cts,
// so the same code is typechecked and run as ESM and as CommonJS.
import { metrics } from '@opentelemetry/api'
import { createLimiter, type Decision, ErrorCode, type Limiter, TollgateError } from '@tollgate/core'
import { createHttpGate } from '@tollgate/core/http'
import type { Store } from '@tollgate/core/store'
import { rateLimit as expressRateLimit } from '@tollgate/express'
import tollgateFastify from '@tollgate/fastify'
import { rateLimit as koaRateLimit } from '@tollgate/koa'
import { memoryStore } from '@tollgate/memory'
import { type MeasurementSink, observeLimiter } from '@tollgate/metrics'
import { registerOtelMetrics } from '@tollgate/otel'
import { registerMetrics } from '@tollgate/prometheus'
import { redisStore } from '@tollgate/redis'
import type { Redis } from 'ioredis'
import { Registry } from 'prom-client'

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message)
}

// Typed only, never called: constructing a Redis store needs a server.
export function sharedStore(client: Redis): Store {
  return redisStore({ client, prefix: 'app:' })
}

async function main(): Promise<void> {
  const store = memoryStore({ maxKeys: 1000 })
  const limiter: Limiter = createLimiter({
    store,
    levels: ['user', 'org'],
    tiers: { free: { user: { capacity: 2, refill: { tokens: 2, per: '1m' } } } },
    // Every level needs a policy in every tier: the org's is ten times the user's.
    policies: { org: { capacity: 20, refill: { tokens: 20, per: '1m' } } },
  })
  const registry = new Registry()
  const unregister = registerMetrics(limiter, { registry, name: 'consumer' })
  const stopOtel = registerOtelMetrics(limiter, { meter: metrics.getMeter('consumer') })
  let seen = 0
  const sink: MeasurementSink = {
    decision: () => seen++,
    nearLimit: () => {},
    fallback: () => {},
    storeLatency: () => {},
    storeError: () => {},
  }
  const observer = observeLimiter(limiter, sink, { name: 'sink' })

  const decisions: Decision[] = []
  for (let i = 0; i < 3; i++) decisions.push(await limiter.check({ user: 'u1', org: 'acme' }))
  assert(decisions.map((d) => d.allowed).join() === 'true,true,false', 'two admitted, then refused')
  assert(seen === 3, 'the sink saw every decision')

  const text = await registry.metrics()
  const refused = 'tollgate_decisions_total{limiter="consumer",level="user",outcome="refused",tier="free"} 1'
  assert(text.includes(refused), `the scrape counts the refusal:\n${text}`)
  assert(!text.includes('u1') && !text.includes('acme'), 'no tenant key in the scrape')

  try {
    await limiter.check({ user: 'u1' }, { cost: -1 })
    throw new Error('a negative cost was accepted')
  } catch (error) {
    assert(
      error instanceof TollgateError && error.code === ErrorCode.InvalidCost,
      'a TollgateError for cost -1',
    )
  }

  assert(typeof expressRateLimit({ limiter }) === 'function', 'express middleware')
  assert(typeof koaRateLimit({ limiter }) === 'function', 'koa middleware')
  assert(typeof tollgateFastify === 'function', 'fastify plugin')
  assert(typeof createHttpGate === 'function', '@tollgate/core/http')
  assert(typeof sharedStore === 'function', '@tollgate/redis types')

  observer.close()
  stopOtel()
  unregister()
  await limiter.close()
  console.log(`smoke ok (${typeof require === 'function' ? 'CommonJS' : 'ESM'})`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
