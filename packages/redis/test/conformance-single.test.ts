import { describeStoreConformance, type RedisServer, startRedis } from '@tollgate/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, uniquePrefix } from './helpers.js'

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

// A generous timeout: the suite checks decisions (10,000 concurrent checks included), not latency.
describeStoreConformance('redis (single node)', (clock) =>
  redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 }),
)
