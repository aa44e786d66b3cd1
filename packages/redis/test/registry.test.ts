import { createLimiter, type Limiter, type PolicyInput } from '@tollgate/core'
import { manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import {
  type ClientKind,
  type Connection,
  clientKinds,
  connect,
  open,
  subscribed,
  uniquePrefix,
  within,
} from './helpers.js'

let server: RedisServer
/** Looks at Redis behind the stores' backs. */
let admin: Redis
const connections: Connection[] = []

beforeAll(async () => {
  server = await startRedis()
  admin = await connect(server.port)
})

afterAll(async () => {
  for (const connection of connections) connection.disconnect()
  admin?.disconnect()
  await server?.stop()
})

async function client(kind: ClientKind): Promise<Connection['client']> {
  const c = await open(kind, server.port)
  connections.push(c)
  return c.client
}

const perSecond = (n: number): PolicyInput => ({ capacity: n, refill: { tokens: n, per: '1s' } })
// Every level has a policy in every tier; an org's is far above its users', so the user level binds here.
const tiers = {
  free: { user: perSecond(10), org: perSecond(1000) },
  premium: { user: perSecond(100), org: perSecond(1000) },
}

/** Two API servers: two limiters, two stores, two connections of one kind, one Redis. */
async function twoServers(kind: ClientKind, registryRefreshMs?: number) {
  const prefix = uniquePrefix()
  const clock = manualClock()
  const make = async (): Promise<Limiter> => {
    const limiter = createLimiter({
      store: redisStore({
        client: await client(kind),
        prefix,
        timeoutMs: 2000,
        clock: clock.now,
        registryRefreshMs,
      }),
      clock: clock.now,
      levels: ['user', 'org'],
      tiers,
    })
    await subscribed(limiter)
    return limiter
  }
  return { prefix, a: await make(), b: await make() }
}

async function subscribers(prefix: string): Promise<number> {
  const [, count] = (await admin.pubsub('NUMSUB', `${prefix}registry`)) as [string, number]
  return count
}

for (const kind of clientKinds) {
  describe(`registry in Redis (${kind})`, () => {
    it("reaches another server's limiter within 1 s (pub/sub)", async () => {
      const { a, b } = await twoServers(kind)
      expect(await b.check({ user: 'u', org: 'o' }, { cost: 0 })).toMatchObject({ tier: 'free', limit: 10 })
      expect(await b.check({ user: 'w' }, { cost: 0 })).toMatchObject({ limit: 10 })
      const cases: [string, () => Promise<void>, () => Promise<boolean>][] = [
        [
          'setTier',
          () => a.setTier({ level: 'org', key: 'o' }, 'premium'),
          async () => (await b.check({ user: 'u', org: 'o' }, { cost: 0 })).limit === 100,
        ],
        [
          'updateLimits',
          () => a.updateLimits('premium', { user: perSecond(70) }),
          async () => (await b.check({ user: 'u', org: 'o' }, { cost: 0 })).limit === 70,
        ],
        [
          'createBucket',
          () => a.createBucket({ level: 'user', key: 'w' }, perSecond(2)),
          async () => (await b.check({ user: 'w' }, { cost: 0 })).limit === 2,
        ],
        [
          'updateBucket',
          () => a.updateBucket({ level: 'user', key: 'w' }, perSecond(3)),
          async () => (await b.check({ user: 'w' }, { cost: 0 })).limit === 3,
        ],
        [
          'deleteBucket',
          () => a.deleteBucket({ level: 'user', key: 'w' }),
          async () => (await b.check({ user: 'w' }, { cost: 0 })).limit === 10,
        ],
      ]
      const took: string[] = []
      for (const [name, change, seen] of cases) {
        await change()
        took.push(`${name} ${await within(1000, seen)} ms`)
      }
      console.info(`registry propagation to the other server: ${took.join(', ')}`)
      await a.close()
      await b.close()
    })

    it('picks up a tier change that was never published, through the version check', async () => {
      const { prefix, a, b } = await twoServers(kind, 100)
      expect(await b.check({ user: 'x' }, { cost: 0 })).toMatchObject({ limit: 10 })
      // Written behind the store's back: no pub/sub message, only the version counter moves.
      await admin.hset(`${prefix}{registry}:tiers`, 'free=user', '1=tb:7:7:1000')
      await admin.incr(`${prefix}{registry}:version`)
      const ms = await within(1000, async () => (await b.check({ user: 'x' }, { cost: 0 })).limit === 7)
      console.info(`unpublished tier change seen after ${ms} ms (version check every 100 ms)`)
      await a.close()
      await b.close()
    })

    it('writes conditionally and atomically, and close() drops the subscriber', async () => {
      const prefix = uniquePrefix()
      const store = redisStore({ client: await client(kind), prefix, timeoutMs: 2000 })
      const heard: unknown[] = []
      const unsubscribe = store.registry.subscribe((change) => heard.push(change))
      await within(1000, async () => (await subscribers(prefix)) === 1)
      expect(await store.registry.write('default', 'bucket', 'user', 'k', 'tb:1:1:1000', 'present')).toBe(
        false,
      )
      expect(await store.registry.write('default', 'bucket', 'user', 'k', 'tb:1:1:1000', 'absent')).toBe(true)
      expect(await store.registry.write('default', 'bucket', 'user', 'k', 'tb:2:1:1000', 'absent')).toBe(
        false,
      )
      expect(await store.registry.write('default', 'bucket', 'user', 'k', 'tb:3:1:1000', 'present')).toBe(
        true,
      )
      expect((await store.registry.read('default', 'user', 'k'))?.bucket?.at(-1)?.value?.id).toBe(
        'tb:3:1:1000',
      )
      expect(await store.registry.read('default', 'user', 'missing')).toBeUndefined()
      expect(await store.registry.write('default', 'bucket', 'user', 'k', null, 'present')).toBe(true)
      expect(await store.registry.write('default', 'bucket', 'user', 'k', null, 'present')).toBe(false)
      await within(1000, async () => heard.filter(Boolean).length === 3)
      expect(heard.filter(Boolean)).toEqual([
        { kind: 'bucket', namespace: 'default', level: 'user', key: 'k' },
        { kind: 'bucket', namespace: 'default', level: 'user', key: 'k' },
        { kind: 'bucket', namespace: 'default', level: 'user', key: 'k' },
      ])
      unsubscribe()
      await store.close?.()
      await within(1000, async () => (await subscribers(prefix)) === 0)
    })

    it('subscribes again after Redis restarts, and reloads once listening again', async () => {
      const prefix = uniquePrefix()
      const connection = await open(kind, server.port)
      connections.push(connection)
      // No version check within the test: only pub/sub can tell of the change.
      const store = redisStore({
        client: connection.client,
        prefix,
        timeoutMs: 2000,
        registryRefreshMs: 60_000,
      })
      const heard: unknown[] = []
      store.registry.subscribe((change) => heard.push(change))
      await within(1000, async () => (await subscribers(prefix)) === 1)
      const reloads = () => heard.filter((change) => change === undefined).length
      const before = reloads()
      await server.restart()
      await within(5000, async () => (await subscribers(prefix).catch(() => 0)) === 1)
      await within(1000, async () => reloads() > before)
      await within(5000, async () => connection.ready)
      await store.registry.writeTier('default', 'free', 'user', 'tb:7:7:1000')
      await within(1000, async () => heard.some((change) => (change as { kind?: string })?.kind === 'tier'))
      await store.close?.()
    })
  })
}
