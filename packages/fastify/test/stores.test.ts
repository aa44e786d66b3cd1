import { redisStore } from '@tollgate/redis'
import {
  describeAdapterOptions,
  describeAdapterRefunds,
  type RedisServer,
  startRedis,
} from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { fastifyApp } from './app.js'

// The behaviours that keep state (refunds and skip rules, tier-scoped buckets, one charge per request,
// stacked limiters) on a real redis-server as well as in process, through real HTTP.
let server: RedisServer | undefined
const clients: Redis[] = []
const redis = {
  name: 'redis',
  async make() {
    server ??= await startRedis()
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
    clients.push(client)
    const store = redisStore({ client, prefix: `t${clients.length}:` })
    await store.ready?.() // connected first, so no decision of a test is made by the local fallback
    return store
  },
  async close() {
    for (const client of clients.splice(0)) client.disconnect()
    await server?.stop()
    server = undefined
  },
}
describeAdapterRefunds('fastify', fastifyApp, { stores: { 'in-process': { make: () => undefined }, redis } })
describeAdapterOptions(fastifyApp, redis)
