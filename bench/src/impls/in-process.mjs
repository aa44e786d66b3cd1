// In-process limiters, each behind one shape: make(levels) → decide(chain) → boolean | Promise<boolean>.
// `levels` is one level or three (user, org, global), each `{ limit, windowMs }` (see lib.mjs); `chain` is
// the keys of the levels, e.g. ['u1', 'o1', 'global']. Every limiter gets the same rule; peers without
// chains are stacked as users stack them: one after the other, stopping at the first refusal.

import { createLimiter } from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import { MemoryStore as ErlMemoryStore } from 'express-rate-limit'
import { TokenBucket } from 'limiter'
import { LRUCache } from 'lru-cache'
import { RateLimiterMemory } from 'rate-limiter-flexible'

import { stackedStores } from '../lib.mjs'
import { inProcessSubjects } from '../subjects.mjs'

/** The reference's key bound: above the 1M keys of the heap sample, so it never evicts while measured. */
const REFERENCE_MAX_KEYS = 1_100_000

/**
 * The reference: a hand-written token bucket per key in lru-cache (bounded, TTL at the moment the bucket is
 * full again), all levels checked before any is charged. What a careful user would write in 30 lines.
 */
function lruTokenBuckets(levels) {
  const perMs = levels.map((l) => l.limit / l.windowMs)
  const caches = levels.map(() => new LRUCache({ max: REFERENCE_MAX_KEYS, ttlAutopurge: false }))
  const states = new Array(levels.length)
  return (chain) => {
    const t = performance.now()
    let allowed = true
    for (let l = 0; l < levels.length; l++) {
      const cache = caches[l]
      const capacity = levels[l].limit
      let state = cache.get(chain[l])
      if (state === undefined) state = { tokens: capacity, last: t }
      state.tokens = Math.min(capacity, state.tokens + (t - state.last) * perMs[l])
      state.last = t
      states[l] = state
      if (state.tokens < 1) allowed = false
    }
    for (let l = 0; l < levels.length; l++) {
      const state = states[l]
      if (allowed) state.tokens -= 1
      cache(caches[l], chain[l], state, (levels[l].limit - state.tokens) / perMs[l] + 1)
    }
    return allowed
  }
}

function cache(lru, key, state, ttlMs) {
  lru.set(key, state, { ttl: Math.ceil(ttlMs) })
}

const policy = ({ limit, windowMs }) => ({ capacity: limit, refill: { tokens: limit, per: windowMs } })

function tollgate(levels) {
  if (levels.length === 1) {
    const limiter = createLimiter({ store: memoryStore(), policy: policy(levels[0]) })
    return async (chain) => (await limiter.check(chain[0])).allowed
  }
  const limiter = createLimiter({
    store: memoryStore(),
    levels: ['user', 'org', 'global'],
    policies: { user: policy(levels[0]), org: policy(levels[1]), global: policy(levels[2]) },
  })
  return async (chain) => (await limiter.check({ user: chain[0], org: chain[1] })).allowed
}

/** tollgate through checkNow: a Decision in the same turn from an in-process store, a Promise otherwise. */
function tollgateCheckNow(levels) {
  const settled = (d) => d.allowed
  if (levels.length === 1) {
    const limiter = createLimiter({ store: memoryStore(), policy: policy(levels[0]) })
    return (chain) => {
      const d = limiter.checkNow(chain[0])
      return d instanceof Promise ? d.then(settled) : d.allowed
    }
  }
  const limiter = createLimiter({
    store: memoryStore(),
    levels: ['user', 'org', 'global'],
    policies: { user: policy(levels[0]), org: policy(levels[1]), global: policy(levels[2]) },
  })
  return (chain) => {
    const d = limiter.checkNow({ user: chain[0], org: chain[1] })
    return d instanceof Promise ? d.then(settled) : d.allowed
  }
}

/**
 * The default limiter of issue 11: `createLimiter()` with no store (core's bounded in-process store), only a
 * policy so that every decision is admitted and the warm and the cold key sets run the same code path.
 */
function tollgateDefault(levels) {
  const limiter = createLimiter({ policy: policy(levels[0]) })
  return async (chain) => (await limiter.check(chain[0])).allowed
}

function limiterTokenBuckets(levels) {
  const buckets = levels.map(() => new Map())
  const bucketFor = (level, key, parentBucket) => {
    let bucket = buckets[level].get(key)
    if (bucket === undefined) {
      const { limit, windowMs } = levels[level]
      bucket = new TokenBucket({
        bucketSize: limit,
        tokensPerInterval: limit,
        interval: windowMs,
        parentBucket,
      })
      // limiter's buckets start empty; a full one is what the other limiters start with.
      bucket.content = limit
      buckets[level].set(key, bucket)
    }
    return bucket
  }
  if (levels.length === 1) return (chain) => bucketFor(0, chain[0]).tryRemoveTokens(1)
  // limiter's own hierarchy (parentBucket) is all-or-nothing: each user bucket hangs under its org's.
  return (chain) => {
    let bucket = buckets[0].get(chain[0])
    if (bucket === undefined) {
      const org = buckets[1].get(chain[1]) ?? bucketFor(1, chain[1], bucketFor(2, chain[2]))
      bucket = bucketFor(0, chain[0], org)
    }
    return bucket.tryRemoveTokens(1)
  }
}

function expressRateLimitStores(levels) {
  const stores = levels.map((level) => {
    const store = new ErlMemoryStore()
    store.init({ windowMs: level.windowMs })
    return { store, limit: level.limit }
  })
  return stackedStores(stores)
}

function rateLimiterFlexible(levels) {
  const limiters = levels.map(
    (level, l) =>
      new RateLimiterMemory({ points: level.limit, duration: level.windowMs / 1000, keyPrefix: `l${l}` }),
  )
  return async (chain) => {
    for (let l = 0; l < limiters.length; l++) {
      try {
        await limiters[l].consume(chain[l])
      } catch {
        return false
      }
    }
    return true
  }
}

/** name → the subject's description (subjects.mjs) and its `make`. */
const makers = {
  'lru-cache token bucket': lruTokenBuckets,
  tollgate,
  'tollgate checkNow': tollgateCheckNow,
  'tollgate default limiter': tollgateDefault,
  'express-rate-limit MemoryStore': expressRateLimitStores,
  'rate-limiter-flexible RateLimiterMemory': rateLimiterFlexible,
  'limiter TokenBucket': limiterTokenBuckets,
}
export const inProcessLimiters = Object.fromEntries(
  Object.entries(inProcessSubjects).map(([name, subject]) => [name, { ...subject, make: makers[name] }]),
)
