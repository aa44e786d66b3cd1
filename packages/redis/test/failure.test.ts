import {
  createLimiter,
  ErrorCode,
  type LimiterEvent,
  normalizePolicy,
  type PolicyInput,
  TollgateError,
} from '@tollgate/core'
import { consumeOps, manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { type Connection, clientKinds, open, uniquePrefix, within } from './helpers.js'

let server: RedisServer
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  server = await startRedis()
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await server?.stop()
})

const policy: PolicyInput = { capacity: 5, refill: { tokens: 5, per: '1s' } }
const ops = [{ level: 'key', key: 'k', policy: normalizePolicy(policy), cost: 1 }]

async function rejection(promise: Promise<unknown>): Promise<TollgateError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    return error as TollgateError
  }
  throw new Error('expected a rejection')
}

for (const kind of clientKinds) {
  describe(kind, () => {
    // Each test has its own connection: one test's stalled commands never reach the next.
    let connection: Connection
    let client: Connection['client']

    beforeEach(async () => {
      unhandled.length = 0
      connection = await open(kind, server.port)
      client = connection.client
    })

    afterEach(async () => {
      server.kill('SIGCONT')
      connection.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(unhandled).toEqual([])
    })

    describe('a slow store (SIGSTOP)', () => {
      it('times out every call with ERR_TOLLGATE_STORE_TIMEOUT, and a late failure is still caught', async () => {
        const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 50 })
        server.kill('SIGSTOP')
        const started = Date.now()
        const calls = [
          consumeOps(store, ops),
          store.reset('default', 'key', 'k'),
          store.registry.read('default', 'key', 'a'),
          store.registry.tiers('default'),
          store.registry.writeTier('default', 'free', 'key', 'tb:1:1:1000'),
          store.registry.write('default', 'assignment', 'key', 'x', null),
        ]
        for (const call of calls) expect((await rejection(call)).code).toBe(ErrorCode.StoreTimeout)
        const elapsed = Date.now() - started
        console.info(`six timed-out calls settled after ${elapsed} ms (timeout 50 ms)`)
        expect(elapsed).toBeLessThan(2000)
        // The commands are still in flight; dropping the connection fails them after their timeout.
        connection.disconnect()
        await new Promise((resolve) => setTimeout(resolve, 50))
        await store.close?.()
      })

      it('falls back per onStoreError, opens the breaker, probes and recovers by itself', async () => {
        const clock = manualClock()
        const events: LimiterEvent[] = []
        const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 50 })
        const limiter = createLimiter({
          store,
          clock: clock.now,
          policy,
          onStoreError: 'open',
          breaker: { failures: 3, cooldownMs: 1000 },
          onEvent: (event) => {
            if (event.type !== 'decision') events.push(event)
          },
        })
        expect((await limiter.check('k')).degraded).toBeUndefined()
        server.kill('SIGSTOP')
        for (let i = 0; i < 3; i++) {
          const d = await limiter.check('k')
          expect(d).toMatchObject({ allowed: true, degraded: 'open' })
        }
        const errors = () => events.filter((e) => e.type === 'store-error')
        expect(errors()).toHaveLength(3)
        expect(events.filter((e) => e.type === 'degraded')).toHaveLength(1)
        // The circuit is open: decisions no longer wait on the store.
        const d = await limiter.check('k')
        expect(d).toMatchObject({ allowed: true, degraded: 'open' })
        expect(errors()).toHaveLength(3)
        server.kill('SIGCONT')
        clock.advance(1000)
        const recovered = await limiter.check('k')
        expect(recovered.degraded).toBeUndefined()
        expect(events.at(-1)).toMatchObject({ type: 'recovered' })
        await limiter.close()
        await store.close?.()
      })

      it('decides with local buckets divided by expectedServers in local mode', async () => {
        const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 30 })
        const limiter = createLimiter({
          store,
          policy: { capacity: 10, refill: 0 },
          onStoreError: 'local',
          expectedServers: 2,
        })
        server.kill('SIGSTOP')
        const decisions = []
        for (let i = 0; i < 8; i++) decisions.push(await limiter.check('k'))
        expect(decisions.every((d) => d.degraded === 'local')).toBe(true)
        expect(decisions.filter((d) => d.allowed)).toHaveLength(5)
        await limiter.close()
        await store.close?.()
      })
    })

    describe('a store that is down', () => {
      it('fails fast with ERR_TOLLGATE_STORE_UNAVAILABLE, refuses in closed mode, and resumes after a restart', async () => {
        const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 50 })
        const limiter = createLimiter({ store, policy, onStoreError: 'closed', breaker: { cooldownMs: 0 } })
        expect((await limiter.check('k')).allowed).toBe(true)
        server.kill('SIGKILL')
        await within(5000, async () => !connection.ready)
        const error = await rejection(consumeOps(store, ops))
        expect(error.code).toBe(ErrorCode.StoreUnavailable)
        expect(error.cause).toBeInstanceOf(Error)
        expect(await limiter.check('k')).toMatchObject({ allowed: false, degraded: 'closed' })
        await server.restart()
        await within(5000, async () => connection.ready)
        expect(await limiter.check('k')).toMatchObject({ allowed: true, remaining: 4 })
        await limiter.close()
        await store.close?.()
      })
    })
  })
}
