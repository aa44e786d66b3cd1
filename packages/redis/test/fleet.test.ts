import { createLimiter, ErrorCode, type FleetMembership, TollgateError } from '@tollgate/core'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@tollgate/testkit'
import { type Cluster, Redis as IORedis, type Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisStore, redisStore } from '../src/index.js'
import {
  type ClientKind,
  type Connection,
  clientKinds,
  connect,
  connectCluster,
  open,
  openCluster,
  uniquePrefix,
  within,
} from './helpers.js'

/**
 * expectedServers: 'auto' (issue 15, part 3): stores sharing a prefix count each other by heartbeats in
 * `<prefix>{fleet}:servers`, stamped with Redis's clock. Several stores in this process stand for servers.
 */

const BEAT = { heartbeatMs: 50, heartbeatExpiryMs: 150 }
const sizes = (members: readonly FleetMembership[]) => members.map((m) => m.size())
const fleetKey = (prefix: string) => `${prefix}{fleet}:servers`

async function redisTimeMs(raw: Redis | Cluster): Promise<number> {
  const [seconds, micros] = (await raw.time()) as unknown as [string, string]
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

function fleetTests(
  label: string,
  connectKind: (kind: ClientKind) => Promise<Connection>,
  raw: () => Redis | Cluster,
) {
  describe.each(clientKinds)(`${label}, %s`, (kind) => {
    let connection: Connection
    beforeAll(async () => {
      connection = await connectKind(kind)
    })
    afterAll(async () => {
      await connection?.quit()
    })

    it('three stores on one prefix count three servers, on Redis’s clock; another prefix is another fleet', async () => {
      const prefix = uniquePrefix()
      const stores = [1, 2, 3].map(() => redisStore({ client: connection.client, prefix, ...BEAT }))
      const other = redisStore({ client: connection.client, prefix: uniquePrefix(), ...BEAT })
      try {
        const members = stores.map((s) => s.joinFleet())
        const alone = other.joinFleet()
        await within(5000, async () => sizes(members).every((n) => n === 3))
        await within(5000, async () => alone.size() === 1)
        const scores = (await raw().zrange(fleetKey(prefix), '0', '-1', 'WITHSCORES')).filter(
          (_, i) => i % 2 === 1,
        )
        expect(scores).toHaveLength(3)
        const now = await redisTimeMs(raw())
        for (const score of scores.map(Number)) {
          expect(score).toBeLessThanOrEqual(now)
          expect(score).toBeGreaterThan(now - BEAT.heartbeatExpiryMs - 1000)
        }
        // The set expires with its members: a fleet that is gone leaves nothing behind.
        expect(await raw().pttl(fleetKey(prefix))).toBeGreaterThan(0)
      } finally {
        await Promise.all([...stores, other].map((s) => s.close?.()))
      }
      expect(await raw().exists(fleetKey(prefix))).toBe(0)
    })

    it('a server that leaves drops out at once, one that stops beating after the expiry, and close() stops the beat', async () => {
      const prefix = uniquePrefix()
      const stores = [1, 2].map(() => redisStore({ client: connection.client, prefix, ...BEAT }))
      // The third server has its own connection, which dies without a word (a crashed process).
      const own = await connectKind(kind)
      const crashing = redisStore({ client: own.client, prefix, ...BEAT })
      try {
        const members = stores.map((s) => s.joinFleet())
        const crashed = crashing.joinFleet()
        await within(5000, async () => [...sizes(members), crashed.size()].every((n) => n === 3))
        own.disconnect()
        await within(5000, async () => sizes(members).every((n) => n === 2))
        // The crashed one could not beat: it keeps the fleet it last saw (what its fallback divides by).
        expect(crashed.size()).toBe(3)
        // Two limiters on one store are one server; the member goes when the last of them closes.
        const limiters = [1, 2].map((n) =>
          createLimiter({ store: stores[1]!, expectedServers: 'auto', name: `l${n}` }),
        )
        members[1]!.leave()
        await limiters[0]!.close()
        await new Promise((resolve) => setTimeout(resolve, 3 * BEAT.heartbeatMs))
        expect(members[0]!.size()).toBe(2)
        await limiters[1]!.close()
        await within(5000, async () => members[0]!.size() === 1)
        expect(await raw().zcard(fleetKey(prefix))).toBe(1)
        await stores[0]!.close?.()
        expect(await raw().exists(fleetKey(prefix))).toBe(0)
        // Closed: no beat after it puts the member back.
        await new Promise((resolve) => setTimeout(resolve, 3 * BEAT.heartbeatMs))
        expect(await raw().exists(fleetKey(prefix))).toBe(0)
      } finally {
        await Promise.all([...stores, crashing].map((s) => s.close?.()))
      }
    })
  })
}

describe('single Redis node', () => {
  let server: RedisServer
  let raw: Redis
  beforeAll(async () => {
    server = await startRedis()
    raw = await connect(server.port)
  })
  afterAll(async () => {
    raw?.disconnect()
    await server?.stop()
  })

  fleetTests(
    'single node',
    (kind) => open(kind, server.port),
    () => raw,
  )
})

describe('3-master Redis Cluster', () => {
  let cluster: RedisCluster
  let raw: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 })
    raw = await connectCluster(cluster.nodes)
  })
  afterAll(async () => {
    raw?.disconnect()
    await cluster?.stop()
  })

  fleetTests(
    'Cluster',
    (kind) => openCluster(kind, cluster.nodes),
    () => raw,
  )
})

describe.each(clientKinds)('the local fallback of a counted fleet, %s', (kind) => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('three servers that saw each other each admit a third of the limit once Redis is gone', async () => {
    const prefix = uniquePrefix()
    const connections = await Promise.all([1, 2, 3].map(() => open(kind, server.port)))
    const stores: RedisStore[] = connections.map((c) =>
      redisStore({ client: c.client, prefix, timeoutMs: 100, ...BEAT }),
    )
    const limiters = stores.map((store) =>
      createLimiter({ store, expectedServers: 'auto', policy: { capacity: 30, refill: 0 } }),
    )
    try {
      const members = stores.map((s) => s.joinFleet())
      await within(5000, async () => sizes(members).every((n) => n === 3))
      for (const m of members) m.leave()
      await server.down()
      const admitted = []
      for (const limiter of limiters) {
        let n = 0
        for (let i = 0; i < 20; i++) {
          const d = await limiter.check('hot')
          expect(d.degraded).toBe('local')
          if (d.allowed) n++
        }
        admitted.push(n)
      }
      // 30 shared → 10 per server: the three admit the shared limit, not 3 × 30.
      expect(admitted).toEqual([10, 10, 10])
    } finally {
      await Promise.all(limiters.map((l) => l.close()))
      await Promise.all(stores.map((s) => s.close?.()))
      for (const c of connections) c.disconnect()
    }
  })
})

describe.each(clientKinds)('a count through a Redis restart, %s', (kind) => {
  let server: RedisServer
  let raw: Redis
  beforeAll(async () => {
    server = await startRedis()
    raw = await connect(server.port)
  })
  afterAll(async () => {
    raw?.disconnect()
    await server?.stop()
  })

  it('never dips while the emptied set is rebuilt, and shrinks once every server has had time to beat', async () => {
    const prefix = uniquePrefix()
    const connections = await Promise.all([1, 2, 3].map(() => open(kind, server.port)))
    const stores = connections.map((c) => redisStore({ client: c.client, prefix, timeoutMs: 100, ...BEAT }))
    try {
      const members = stores.map((s) => s.joinFleet())
      await within(5000, async () => sizes(members).every((n) => n === 3))
      // Sampled far more often than the stores beat: a count of 1 or 2, however brief, is seen.
      let lowest = 3
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          for (const n of sizes(members)) lowest = Math.min(lowest, n ?? 0)
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
      })()
      // No persistence: Redis comes back with no set at all, and the first store to beat finds itself alone.
      await server.restart()
      await within(5000, async () => (await raw.zcard(fleetKey(prefix)).catch(() => 0)) === 3)
      await new Promise((resolve) => setTimeout(resolve, 2 * BEAT.heartbeatExpiryMs))
      sampling = false
      await sampler
      expect(lowest).toBe(3)
      expect(sizes(members)).toEqual([3, 3, 3])
      // Settled: a server that leaves is no longer counted.
      await stores[2]!.close?.()
      await within(5000, async () => sizes(members.slice(0, 2)).every((n) => n === 2))
    } finally {
      await Promise.all(stores.map((s) => s.close?.()))
      for (const c of connections) c.disconnect()
    }
  })
})

describe('heartbeat options', () => {
  it.each([
    [{ heartbeatMs: 0 }, 'heartbeatMs'],
    [{ heartbeatMs: 1.5 }, 'heartbeatMs'],
    [{ heartbeatMs: 2 ** 31 }, 'heartbeatMs'],
    [{ heartbeatMs: '1000' }, 'heartbeatMs'],
    [{ heartbeatExpiryMs: 1000 }, 'heartbeatExpiryMs'],
    [{ heartbeatMs: 100, heartbeatExpiryMs: 50 }, 'heartbeatExpiryMs'],
    [{ heartbeatExpiryMs: Number.NaN }, 'heartbeatExpiryMs'],
  ])('refuses %j naming %s', async (options, field) => {
    // Never connected: options are checked before the store uses its client.
    const client = new IORedis({ lazyConnect: true, enableOfflineQueue: false })
    try {
      redisStore({ client, ...(options as object) })
      expect.unreachable('no error thrown')
    } catch (error) {
      expect(error).toBeInstanceOf(TollgateError)
      expect(error).toMatchObject({ code: ErrorCode.InvalidOption, field })
      expect((error as Error).message).toContain(field)
    }
  })
})
