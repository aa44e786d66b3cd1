import { describeStoreConformance, type RedisCluster, startRedisCluster } from '@tollgate/testkit'
import type { Cluster } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { redisStore } from '../src/index.js'
import { connectCluster, uniquePrefix } from './helpers.js'

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

// Default layout: every bucket has its own hash tag, so chains span slots and exercise refunds.
describeStoreConformance('redis cluster (3 masters)', (clock) =>
  redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
)
