import { redisStore } from '@tollgate/redis'
import { describeAdapterRefunds, type RedisServer, startRedis } from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { fastifyApp } from './app.js'

// Skip rules and refunds through real HTTP, on the limiter's in-process store and on a real redis-server.
let server: RedisServer | undefined
const clients: Redis[] = []
describeAdapterRefunds('fastify', fastifyApp, {
  stores: {
    'in-process': { make: () => undefined },
    redis: {
      async make() {
        server ??= await startRedis()
        const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
        clients.push(client)
        return redisStore({ client, prefix: `refund${clients.length}:` })
      },
      async close() {
        for (const client of clients.splice(0)) client.disconnect()
        await server?.stop()
      },
    },
  },
})
