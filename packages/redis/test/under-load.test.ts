import { createLimiter, type LimiterEvent } from '@tollgate/core'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@tollgate/testkit'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, connectCluster, uniquePrefix } from './helpers.js'

/**
 * A healthy Redis under a burst: with the default timeout, no decision is answered by the fallback. A call
 * waiting its turn behind many others (in the batcher or on the connection) while Redis keeps answering is
 * not a store failure. Counts only: no speed is asserted.
 */
const lanes = 256
const decisions = 3000
const keys = 300
const capacity = 5

async function burst(client: Redis | Cluster) {
  const events: LimiterEvent[] = []
  const limiter = createLimiter({
    store: redisStore({ client, prefix: uniquePrefix() }),
    policy: { capacity, refill: 0 },
    onStoreError: 'closed',
    onEvent: (event) => {
      if (event.type === 'store-error' || event.type === 'breaker') events.push(event)
    },
  })
  let next = 0
  let admitted = 0
  let degraded = 0
  const lane = async () => {
    while (next < decisions) {
      const decision = await limiter.check(`k${next++ % keys}`)
      if (decision.degraded) degraded++
      else if (decision.allowed) admitted++
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane))
  await limiter.close()
  return { admitted, degraded, events }
}

function expectNoFallback(result: Awaited<ReturnType<typeof burst>>) {
  expect(result.events.map((e) => ('error' in e ? String(e.error) : e.type)).slice(0, 3)).toEqual([])
  expect(result.degraded).toBe(0)
  // Refill 0: every key admits its capacity at most, and here exactly (each is asked 10 times).
  expect(result.admitted).toBe(keys * capacity)
}

describe('a burst of concurrent decisions on a healthy Redis, default options', () => {
  describe('single node', () => {
    let server: RedisServer
    let client: Redis
    beforeAll(async () => {
      server = await startRedis()
      client = await connect(server.port)
    })
    afterAll(async () => {
      await client?.quit()
      await server?.stop()
    })

    it('answers every decision from Redis', async () => {
      expectNoFallback(await burst(client))
    })
  })

  describe('3-master Cluster', () => {
    let cluster: RedisCluster
    let client: Cluster
    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3 })
      client = await connectCluster(cluster.nodes)
    })
    afterAll(async () => {
      await client?.quit()
      await cluster?.stop()
    })

    it('answers every decision from Redis', async () => {
      expectNoFallback(await burst(client))
    })
  })
})
