import { describeStoreConformance, type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, beforeAll } from 'vitest'
import { redisStore } from '../src/index.js'
import { forEveryClient, open, uniquePrefix } from './helpers.js'

let server: RedisServer

beforeAll(async () => {
  server = await startRedis()
})

afterAll(async () => {
  await server?.stop()
})

// A generous timeout: the suite checks decisions (10,000 concurrent checks included), not latency.
forEveryClient(
  (kind) => open(kind, server.port),
  (connection, kind) =>
    describeStoreConformance(`redis (single node, ${kind})`, (clock) =>
      redisStore({ client: connection().client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
    ),
)
