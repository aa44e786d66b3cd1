import { redisStore } from '@tollgate/redis'
import { describeAdapterOptions, describeAdapterRefunds, redisSuiteStores } from '@tollgate/testkit'
import { expressApp } from './app.js'

// What keeps state (refunds and skip rules, tier-scoped buckets, one charge per request, stacked limiters)
// in process and on a real redis-server, through real HTTP.
const redis = redisSuiteStores((client, prefix) => redisStore({ client, prefix }))
describeAdapterRefunds('express', expressApp, { stores: { 'in-process': { make: () => undefined }, redis } })
describeAdapterOptions(expressApp, redis)
