import { describeStoreConformance, type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, beforeAll, describe } from 'vitest'
import { redisStore } from '../src/index.js'
import { type Connection, clientKinds, open, uniquePrefix } from './helpers.js'

let server: RedisServer

beforeAll(async () => {
  server = await startRedis()
})

afterAll(async () => {
  await server?.stop()
})

for (const kind of clientKinds) {
  describe(kind, () => {
    let connection: Connection
    beforeAll(async () => {
      connection = await open(kind, server.port)
    })
    afterAll(async () => {
      await connection?.quit()
    })
    // A generous timeout: the suite checks decisions (10,000 concurrent checks included), not latency.
    describeStoreConformance(`redis (single node, ${kind})`, (clock) =>
      redisStore({ client: connection.client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
    )
  })
}
