import { redisStore } from '@tollgate/redis'
import {
  describeAdapterBlocking,
  describeAdapterOptions,
  describeAdapterRefunds,
  redisSuiteStores,
} from '@tollgate/testkit'
import { fastifyApp } from './app.js'

// What keeps state (refunds and skip rules, tier-scoped buckets, one charge per request, stacked limiters)
// in process and on a real redis-server, through real HTTP.
// A generous timeout: on a loaded machine a call past the default 50 ms would be decided by the local fallback.
const redis = redisSuiteStores((client, prefix) => redisStore({ client, prefix, timeoutMs: 2000 }))
describeAdapterRefunds('fastify', fastifyApp, { stores: { 'in-process': { make: () => undefined }, redis } })
describeAdapterBlocking('fastify', fastifyApp, { stores: { 'in-process': { make: () => undefined }, redis } })
describeAdapterOptions(fastifyApp, redis)
