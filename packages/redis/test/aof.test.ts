import { createLimiter } from '@tollgate/core'
import { manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, subscribed, uniquePrefix, within } from './helpers.js'

let server: RedisServer
let client: Redis

beforeAll(async () => {
  server = await startRedis({ appendonly: true })
  client = await connect(server.port)
})

afterAll(async () => {
  client?.disconnect()
  await server?.stop()
})

it('keeps bucket state and the registry across a Redis restart with AOF, and counts the first request once', async () => {
  const clock = manualClock()
  const prefix = uniquePrefix()
  const options = {
    clock: clock.now,
    levels: ['user'],
    tiers: { free: { user: { capacity: 10, refill: 0 } }, premium: { user: { capacity: 50, refill: 0 } } },
    onStoreError: 'closed' as const,
  }
  const store = redisStore({ client, prefix, timeoutMs: 2000, clock: clock.now })
  const limiter = createLimiter({ store, ...options })
  await subscribed(limiter)
  await limiter.setTier('vip', 'premium')
  await limiter.createBucket({ level: 'user', key: 'custom' }, { capacity: 7, refill: 0 })
  for (let i = 0; i < 3; i++) await limiter.check('vip')
  await limiter.check('custom')
  await limiter.close()
  await store.close?.()

  const pid = server.pid
  await server.restart()
  expect(server.pid).not.toBe(pid)
  await within(5000, async () => client.status === 'ready')
  await client.config('RESETSTAT')

  // A restarted app server: a fresh limiter reads tiers, assignments and buckets back from Redis.
  const restarted = redisStore({ client, prefix, timeoutMs: 2000, clock: clock.now })
  const fresh = createLimiter({ store: restarted, ...options })
  await subscribed(fresh)
  expect(await fresh.check('vip')).toMatchObject({ allowed: true, tier: 'premium', limit: 50, remaining: 46 })
  expect(await fresh.check('custom')).toMatchObject({ allowed: true, limit: 7, remaining: 5 })
  // The decision library survived in the AOF (Functions are persisted, unlike the script cache): no script
  // was sent again, at most the fresh store's load ahead, and the decisions above counted once each.
  const stats = (await client.info('commandstats')).split('\r\n')
  const calls = (name: string) =>
    Number(/calls=(\d+)/.exec(stats.find((l) => l.startsWith(`cmdstat_${name}:`)) ?? '')?.[1] ?? 0)
  expect(calls('eval') + calls('evalsha') + calls('script|load')).toBe(0)
  expect(calls('function|load')).toBeLessThanOrEqual(1)
  expect(calls('fcall')).toBe(2)
  expect(await fresh.check('vip', { cost: 0 })).toMatchObject({ remaining: 46 })
  await fresh.close()
  await restarted.close?.()
})
