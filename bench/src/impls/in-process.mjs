// In-process limiters, each behind one shape: make(levels) → decide(user, org) → boolean | Promise<boolean>.
// `levels` is one level ({ capacity, perSecond }) or three (user, org, global). Every limiter is configured
// to the same rate; peers without chains are stacked as users stack them: one after the other, stopping at
// the first refusal.

import { createLimiter } from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import { MemoryStore as ErlMemoryStore } from 'express-rate-limit'
import { TokenBucket } from 'limiter'
import { LRUCache } from 'lru-cache'
import { RateLimiterMemory } from 'rate-limiter-flexible'

import { levelKey, stackedStores, WINDOW_MS } from '../lib.mjs'

/** The reference: a minimal token bucket per key on a Map, all levels checked before any is charged. */
function tokenBuckets(levels, storage) {
  const perMs = levels.map((l) => l.perSecond / 1000)
  const states = new Array(levels.length)
  return (user, org) => {
    const t = performance.now()
    let allowed = true
    for (let l = 0; l < levels.length; l++) {
      const key = levelKey(l, user, org)
      const store = storage[l]
      const capacity = levels[l].capacity
      let state = store.get(key)
      if (state === undefined) state = { tokens: capacity, last: t }
      state.tokens = Math.min(capacity, state.tokens + (t - state.last) * perMs[l])
      state.last = t
      store.set(key, state, (capacity - state.tokens) / perMs[l] + 1)
      states[l] = state
      if (state.tokens < 1) allowed = false
    }
    if (allowed) for (let l = 0; l < levels.length; l++) states[l].tokens -= 1
    return allowed
  }
}

/** Adapts Map to the `set(key, value, ttl)` the lru-cache variant needs; the ttl is unused. */
class PlainMap extends Map {
  set(key, value) {
    return super.set(key, value)
  }
}

/** The same bucket with its states in lru-cache (bounded, with a TTL at the moment the bucket is full again). */
class LruStates {
  constructor() {
    this.lru = new LRUCache({ max: 1_000_000, ttlAutopurge: false })
  }
  get(key) {
    return this.lru.get(key)
  }
  set(key, value, ttlMs) {
    this.lru.set(key, value, { ttl: Math.ceil(ttlMs) })
  }
}

function policy({ capacity, perSecond }) {
  return { capacity, refill: { tokens: perSecond * 3600, per: '1h' } }
}

function tollgate(levels) {
  if (levels.length === 1) {
    const limiter = createLimiter({ store: memoryStore(), policy: policy(levels[0]) })
    return async (user) => (await limiter.check(user)).allowed
  }
  const limiter = createLimiter({
    store: memoryStore(),
    levels: ['user', 'org', 'global'],
    policies: { user: policy(levels[0]), org: policy(levels[1]), global: policy(levels[2]) },
  })
  return async (user, org) => (await limiter.check({ user, org })).allowed
}

function limiterTokenBuckets(levels) {
  const buckets = levels.map(() => new Map())
  const bucketFor = (level, key) => {
    let bucket = buckets[level].get(key)
    if (bucket === undefined) {
      const { capacity, perSecond } = levels[level]
      bucket = new TokenBucket({
        bucketSize: capacity,
        tokensPerInterval: perSecond * 3600,
        interval: 'hour',
        parentBucket: undefined,
      })
      buckets[level].set(key, bucket)
    }
    return bucket
  }
  if (levels.length === 1) return (user) => bucketFor(0, user).tryRemoveTokens(1)
  // limiter's own hierarchy (parentBucket) is all-or-nothing: each user bucket hangs under its org's.
  return (user, org) => {
    let bucket = buckets[0].get(user)
    if (bucket === undefined) {
      const { capacity, perSecond } = levels[0]
      bucket = new TokenBucket({
        bucketSize: capacity,
        tokensPerInterval: perSecond * 3600,
        interval: 'hour',
        parentBucket: bucketFor(1, org),
      })
      const orgBucket = bucket.parentBucket
      if (orgBucket.parentBucket === undefined) orgBucket.parentBucket = bucketFor(2, 'global')
      buckets[0].set(user, bucket)
    }
    return bucket.tryRemoveTokens(1)
  }
}

function expressRateLimitStores(levels) {
  const stores = levels.map((level) => {
    const store = new ErlMemoryStore()
    store.init({ windowMs: level.windowMs ?? WINDOW_MS })
    return { store, limit: level.capacity }
  })
  return stackedStores(stores)
}

function rateLimiterFlexible(levels) {
  const limiters = levels.map(
    (level, l) =>
      new RateLimiterMemory({
        points: level.capacity,
        duration: (level.windowMs ?? WINDOW_MS) / 1000,
        keyPrefix: `l${l}`,
      }),
  )
  return async (user, org) => {
    for (let l = 0; l < limiters.length; l++) {
      try {
        await limiters[l].consume(levelKey(l, user, org))
      } catch {
        return false
      }
    }
    return true
  }
}

/**
 * name → { make, semantics }. `semantics` says how many admissions the limit allows over a run:
 * 'bucket' (capacity + rate × time) or 'window' (limit per fixed window started at the first hit).
 */
export const inProcessLimiters = {
  'map token bucket': {
    reference: true,
    semantics: 'bucket',
    make: (levels) =>
      tokenBuckets(
        levels,
        levels.map(() => new PlainMap()),
      ),
  },
  tollgate: { semantics: 'bucket', make: tollgate },
  'lru-cache token bucket': {
    semantics: 'bucket',
    make: (levels) =>
      tokenBuckets(
        levels,
        levels.map(() => new LruStates()),
      ),
  },
  'limiter TokenBucket': { semantics: 'bucket', make: limiterTokenBuckets },
  'express-rate-limit MemoryStore': { semantics: 'window', make: expressRateLimitStores },
  'rate-limiter-flexible memory': { semantics: 'window', make: rateLimiterFlexible },
}
