import { describeStoreConformance, type RedisCluster, startRedisCluster } from '@tollgate/testkit'
import { afterAll, beforeAll } from 'vitest'
import { redisStore } from '../src/index.js'
import { forEveryClient, openCluster, uniquePrefix } from './helpers.js'

let cluster: RedisCluster

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 })
})

afterAll(async () => {
  await cluster?.stop()
})

// Default layout: every bucket has its own hash tag, so chains span slots and exercise refunds.
forEveryClient(
  (kind) => openCluster(kind, cluster.nodes),
  (connection, kind) =>
    describeStoreConformance(`redis cluster (3 masters, ${kind})`, (clock) =>
      redisStore({ client: connection().client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
    ),
)
