// Redis-backed limiters behind one shape: make(client, levels, { cluster }) → decide(entry) → Promise of
// true (admitted), false (refused) or DEGRADED (the store failed and the fallback answered).
// `entry.chain` is the keys of the levels; in a Cluster all of them share the hash tag `entry.tag`.
// Peers without chains are stacked as users stack them (one call per level, stopping at the first refusal).

import { RedisStore } from 'rate-limit-redis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { DEGRADED, stackedStores } from '../lib.mjs'
import { redisSubjects } from '../subjects.mjs'
import { GCRA_SOURCE, gcraArgs, loadScript } from './gcra.mjs'

async function bareGcra(client, levels, { cluster }) {
  const sha = await loadScript(client, GCRA_SOURCE)
  const args = gcraArgs(levels)
  if (levels.length === 1) {
    const key = cluster ? (entry) => `ref:{${entry.chain[0]}}` : (entry) => `ref:${entry.chain[0]}`
    return async (entry) => (await client.evalsha(sha, 1, key(entry), ...args)) === 1
  }
  const prefix = cluster ? (entry) => `ref:{${entry.tag}}` : () => 'ref:'
  return async (entry) => {
    const p = prefix(entry)
    const { chain } = entry
    return (await client.evalsha(sha, 3, p + chain[0], p + chain[1], p + chain[2], ...args)) === 1
  }
}

const policy = ({ limit, windowMs }) => ({ capacity: limit, refill: { tokens: limit, per: windowMs } })

/**
 * tollgate through its public API only (createLimiter, redisStore({ client }), check), with its default
 * timeout. `onStoreError: 'closed'` makes a failed store call a refusal marked `degraded`, which is counted.
 * In a Cluster a 3-level chain is user → team → org, all tagged by the org: one slot, one atomic script.
 */
async function tollgate(client, levels, { cluster }) {
  // Loaded here, not at the top: while the store is being rewritten, a build that fails to load fails
  // tollgate's samples only, and the references and peers are still measured.
  const { createLimiter } = await import('@tollgate/core')
  const { redisStore } = await import('@tollgate/redis')
  if (levels.length === 1) {
    const limiter = createLimiter({
      store: redisStore({ client }),
      policy: policy(levels[0]),
      onStoreError: 'closed',
    })
    return async (entry) => {
      const decision = await limiter.check(entry.chain[0])
      return decision.degraded ? DEGRADED : decision.allowed
    }
  }
  const names = cluster ? ['user', 'team', 'org'] : ['user', 'org', 'global']
  const limiter = createLimiter({
    store: cluster
      ? redisStore({ client, hashTag: (_level, key) => key.split('/')[0] })
      : redisStore({ client }),
    levels: names,
    policies: { [names[0]]: policy(levels[0]), [names[1]]: policy(levels[1]), [names[2]]: policy(levels[2]) },
    onStoreError: 'closed',
  })
  const subject = cluster
    ? ({ chain }) => ({ user: chain[0], team: chain[1], org: chain[2] })
    : ({ chain }) => ({ user: chain[0], org: chain[1] })
  return async (entry) => {
    const decision = await limiter.check(subject(entry))
    return decision.degraded ? DEGRADED : decision.allowed
  }
}

function rateLimiterFlexible(client, levels) {
  const limiters = levels.map(
    (level, l) =>
      new RateLimiterRedis({
        storeClient: client,
        points: level.limit,
        duration: level.windowMs / 1000,
        keyPrefix: `rlf${l}`,
      }),
  )
  return async ({ chain }) => {
    for (let l = 0; l < limiters.length; l++) {
      try {
        await limiters[l].consume(chain[l])
      } catch (error) {
        // A refusal rejects with a RateLimiterRes; a store failure with an Error.
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
    store.init({ windowMs: level.windowMs })
    return { store, limit: level.limit }
  })
  const decide = stackedStores(stores)
  return (entry) => decide(entry.chain)
}

/** name → the subject's description (subjects.mjs) and its `make`. */
const makers = {
  'bare EVALSHA': bareGcra,
  tollgate,
  'tollgate, auto-pipelined client': tollgate,
  'rate-limiter-flexible RateLimiterRedis': rateLimiterFlexible,
  'rate-limit-redis': rateLimitRedis,
}
export const redisLimiters = Object.fromEntries(
  Object.entries(redisSubjects).map(([name, subject]) => [name, { ...subject, make: makers[name] }]),
)
