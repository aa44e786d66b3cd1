import { createLimiter, ErrorCode, type Limiter, TollgateError } from '@tollgate/core'
import {
  manualClock,
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from '@tollgate/testkit'
import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, connectCluster, subscribed, uniquePrefix, within } from './helpers.js'

let server: RedisServer
let cluster: RedisCluster
let single: Redis
let clustered: Cluster
const clients: (Redis | Cluster)[] = []

beforeAll(async () => {
  ;[server, cluster] = await Promise.all([startRedis(), startRedisCluster({ masters: 3 })])
  single = await connect(server.port)
  clustered = await connectCluster(cluster.nodes)
})

afterAll(async () => {
  for (const c of [single, clustered, ...clients]) c?.disconnect()
  await Promise.all([server?.stop(), cluster?.stop()])
})

const perIp = { capacity: 3, refill: { tokens: 3, per: '1m' } } as const
const exportPolicy = { capacity: 1, refill: { tokens: 1, per: '1m' } } as const

async function allowed(limiter: Limiter, subject: string, attempts: number): Promise<number> {
  let count = 0
  for (let i = 0; i < attempts; i++) if ((await limiter.check(subject)).allowed) count++
  return count
}

/** Every key under `prefix` on every node, call records left out. */
async function keysUnder(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const nodes = 'nodes' in client ? client.nodes('master') : [client]
  const found: string[] = []
  for (const node of nodes) found.push(...(await node.keys(`${prefix}*`)))
  return found.filter((key) => !key.includes(':call:')).sort()
}

for (const [topology, client] of [
  ['single node', () => single],
  ['Cluster', () => clustered],
] as const) {
  describe(`limiter names on Redis (${topology})`, () => {
    it('keeps a per-IP limiter and an /export one on one store and prefix apart (the issue 14 case)', async () => {
      const prefix = uniquePrefix()
      const clock = manualClock()
      const store = redisStore({ client: client(), prefix, timeoutMs: 2000, clock: clock.now })
      const common = { store, clock: clock.now, onStoreError: 'closed' } as const
      const all = createLimiter({ ...common, policy: perIp })
      const exporter = createLimiter({ ...common, name: 'export', policy: exportPolicy })
      expect(await allowed(exporter, '127.0.0.1', 3)).toBe(1)
      // Before names both wrote tollgate:{key:127.0.0.1}: the export route's charge drained this one.
      expect(await allowed(all, '127.0.0.1', 5)).toBe(3)
      // The default limiter keeps the layout from before names, so data written then keeps working.
      expect(await keysUnder(client(), prefix)).toEqual([
        `${prefix}{export#key:127.0.0.1}`,
        `${prefix}{key:127.0.0.1}`,
      ])
      await all.close()
      await exporter.close()
      await store.close?.()
    })

    it('keeps each name in its own tier hash, and a hashTag chain of a named limiter in one slot', async () => {
      const prefix = uniquePrefix()
      const clock = manualClock()
      const store = redisStore({
        client: client(),
        prefix,
        timeoutMs: 2000,
        clock: clock.now,
        hashTag: (level, key) => (level === 'org' ? key : key.split('/')[0]!),
      })
      const options = {
        store,
        clock: clock.now,
        onStoreError: 'closed',
        levels: ['user', 'org'],
        tiers: { free: { user: perIp, org: perIp } },
      } as const
      const billing = createLimiter({ ...options, name: 'billing' })
      const api = createLimiter(options)
      expect((await billing.check({ user: 'acme/u1', org: 'acme' })).allowed).toBe(true)
      await billing.updateLimits('free', { org: exportPolicy })
      expect(await billing.check({ org: 'acme' }, { cost: 0 })).toMatchObject({ limit: 1, remaining: 1 })
      expect(await api.check({ org: 'acme' }, { cost: 0 })).toMatchObject({ limit: 3, remaining: 3 })
      const keys = await keysUnder(client(), prefix)
      expect(keys).toEqual([
        `${prefix}{acme}billing#org:acme`,
        `${prefix}{acme}billing#user:acme/u1`,
        `${prefix}{registry}:tiers:billing`,
        `${prefix}{registry}:version`,
      ])
      expect(calculateSlot(keys[0]!)).toBe(calculateSlot(keys[1]!))
      await billing.close()
      await api.close()
      await store.close?.()
    })
  })
}

describe('limiter names across store objects and servers', () => {
  it('refuses a name twice on stores of one client and prefix, not on another prefix', async () => {
    const prefix = uniquePrefix()
    const first = redisStore({ client: single, prefix })
    const second = redisStore({ client: single, prefix })
    const limiter = createLimiter({ store: first, policy: perIp })
    try {
      createLimiter({ store: second, policy: perIp })
      expect.unreachable('a second limiter named default on one client and prefix')
    } catch (error) {
      expect(error).toBeInstanceOf(TollgateError)
      expect(error).toMatchObject({ code: ErrorCode.DuplicateName, field: 'name', value: 'default' })
    }
    const elsewhere = createLimiter({
      store: redisStore({ client: single, prefix: uniquePrefix() }),
      policy: perIp,
    })
    await elsewhere.close()
    await limiter.close()
    await first.close?.()
    await second.close?.()
  })

  it("tells another server's limiter of the same name of a tier change, and no other name", async () => {
    const prefix = uniquePrefix()
    const clock = manualClock()
    const serve = async () => {
      const c = await connect(server.port)
      clients.push(c)
      // No version check within the test (it would tell every name of any change): pub/sub only.
      const store = redisStore({
        client: c,
        prefix,
        timeoutMs: 2000,
        clock: clock.now,
        registryRefreshMs: 60_000,
      })
      const options = { store, clock: clock.now, tiers: { free: { key: perIp } } }
      const limiters = { api: createLimiter(options), export: createLimiter({ ...options, name: 'export' }) }
      await Promise.all([subscribed(limiters.api), subscribed(limiters.export)])
      return limiters
    }
    const [a, b] = [await serve(), await serve()]
    const heard: string[] = []
    b.api.on((event) => {
      if (event.type === 'registry-change') heard.push(String(event.kind))
    })
    await a.export.updateLimits('free', { key: exportPolicy })
    await within(1000, async () => (await b.export.check('x', { cost: 0 })).limit === 1)
    expect(await b.api.check('x', { cost: 0 })).toMatchObject({ limit: 3 })
    await a.export.setTier('x', 'free')
    await within(1000, async () => (await b.export.getTier('x')) === 'free')
    expect(heard).toEqual([])
    for (const limiter of [a.api, a.export, b.api, b.export]) await limiter.close()
  })
})
