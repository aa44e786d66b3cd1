// Redis-backed limiters behind one shape: make(client, levels) → decide(user, org) → Promise<boolean>.
// Peers without chains are stacked as users stack them (one call per level, stopping at the first refusal).

import { createLimiter } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { RedisStore } from 'rate-limit-redis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { levelKey, stackedStores, WINDOW_MS } from '../lib.mjs'

/** The reference: one EVALSHA of a script that only increments its keys (all levels in one call). */
async function bareEvalsha(client, levels) {
  const source = 'for _, key in ipairs(KEYS) do redis.call("INCR", key) end return 1'
  const sha = await client.script('LOAD', source)
  if (levels.length === 1) return async (user) => (await client.evalsha(sha, 1, `ref:${user}`)) === 1
  return async (user, org) => (await client.evalsha(sha, 3, `ref:${user}`, `ref:${org}`, 'ref:global')) === 1
}

function policy({ capacity, perSecond }) {
  return { capacity, refill: { tokens: perSecond * 3600, per: '1h' } }
}

/** Decisions the store failed on are errors here, not admissions: `closed` makes them refusals we can count. */
class DegradedDecision extends Error {}

function tollgate(client, levels) {
  const store = redisStore({ client })
  const limiter =
    levels.length === 1
      ? createLimiter({ store, policy: policy(levels[0]), onStoreError: 'closed' })
      : createLimiter({
          store,
          levels: ['user', 'org', 'global'],
          policies: { user: policy(levels[0]), org: policy(levels[1]), global: policy(levels[2]) },
          onStoreError: 'closed',
        })
  const check =
    levels.length === 1 ? (user) => limiter.check(user) : (user, org) => limiter.check({ user, org })
  return async (user, org) => {
    const decision = await check(user, org)
    if (decision.degraded) throw new DegradedDecision('store failed')
    return decision.allowed
  }
}

function rateLimiterFlexible(client, levels) {
  const limiters = levels.map(
    (level, l) =>
      new RateLimiterRedis({
        storeClient: client,
        points: level.capacity,
        duration: (level.windowMs ?? WINDOW_MS) / 1000,
        keyPrefix: `rlf${l}`,
      }),
  )
  return async (user, org) => {
    for (let l = 0; l < limiters.length; l++) {
      try {
        await limiters[l].consume(levelKey(l, user, org))
      } catch (error) {
        if (error instanceof Error) throw error
        return false
      }
    }
    return true
  }
}

function rateLimitRedis(client, levels) {
  const stores = levels.map((level, l) => {
    const store = new RedisStore({
      sendCommand: (command, ...args) => client.call(command, ...args),
      prefix: `rlr${l}:`,
    })
    store.init({ windowMs: level.windowMs ?? WINDOW_MS })
    return { store, limit: level.capacity }
  })
  return stackedStores(stores)
}

/** name → { make, semantics, autoPipelining }. The reference admits everything: it has no limit. */
export const redisLimiters = {
  'bare EVALSHA': { reference: true, semantics: 'none', autoPipelining: false, make: bareEvalsha },
  'bare EVALSHA, auto-pipelined': { semantics: 'none', autoPipelining: true, make: bareEvalsha },
  tollgate: { semantics: 'bucket', autoPipelining: false, make: tollgate },
  'tollgate, auto-pipelined': { semantics: 'bucket', autoPipelining: true, make: tollgate },
  'rate-limiter-flexible RateLimiterRedis': {
    semantics: 'window',
    autoPipelining: false,
    make: rateLimiterFlexible,
  },
  'rate-limit-redis': { semantics: 'window', autoPipelining: false, make: rateLimitRedis },
}
