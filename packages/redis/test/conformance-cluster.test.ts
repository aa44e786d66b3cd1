import { describeStoreConformance, type RedisCluster, startRedisCluster } from '@tollgate/testkit'
import { afterAll, beforeAll, describe } from 'vitest'
import { redisStore } from '../src/index.js'
import { type Connection, clientKinds, openCluster, uniquePrefix } from './helpers.js'

let cluster: RedisCluster

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 })
})

afterAll(async () => {
  await cluster?.stop()
})

for (const kind of clientKinds) {
  describe(kind, () => {
    let connection: Connection
    beforeAll(async () => {
      connection = await openCluster(kind, cluster.nodes)
    })
    afterAll(async () => {
      await connection?.quit()
    })
    // Default layout: every bucket has its own hash tag, so chains span slots and exercise refunds.
    describeStoreConformance(`redis cluster (3 masters, ${kind})`, (clock) =>
      redisStore({ client: connection.client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
    )
  })
}
