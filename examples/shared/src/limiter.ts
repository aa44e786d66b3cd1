import type { IncomingHttpHeaders } from 'node:http'
import {
  createLimiter,
  ErrorCode,
  type HttpLimitOptions,
  type Limiter,
  type PolicyInput,
  type Store,
  TollgateError,
} from '@tollgate/core'
import { type MemoryStore, memoryStore } from '@tollgate/memory'
import { ANONYMOUS_TIER, caller, ORG_TIERS } from './tenants.js'

const perSecond = (n: number): PolicyInput => ({ capacity: n, refill: { tokens: n, per: '1s' } })
/** The org level is always 5× the user level of the org's tier. */
export const ORG_FACTOR = 5
const tierLimits = (userPerSecond: number) => ({
  user: perSecond(userPerSecond),
  org: perSecond(userPerSecond * ORG_FACTOR),
})

export interface ExampleLimiter {
  limiter: Limiter
  /** Which store decides: `memory` or `redis`. */
  storeName: string
  /** The in-process store when it decides, for its size and evictions in the metrics. */
  memory: MemoryStore | undefined
  close(): Promise<void>
}

/**
 * The limiter every example uses: chain user → org → global, tiers free / premium / enterprise (user level
 * 10 / 100 / 1000 per second, org level 5× that), a global 5000/s, and an anonymous tier of 5 at 1/s (its org
 * level, 5× that too, never applies: anonymous requests have no org).
 * `REDIS_URL` set → a Redis store shared by every server, else an in-process memory store.
 */
export async function createExampleLimiter(env: NodeJS.ProcessEnv = process.env): Promise<ExampleLimiter> {
  const clock = env.EXAMPLE_TEST_CLOCK === '1' ? testClock : undefined
  const { store, storeName, memory, closeStore } = await openStore(env.REDIS_URL, redisTimeout(env), clock)
  const limiter = createLimiter({
    store,
    ...(clock ? { clock } : {}),
    levels: ['user', 'org', 'global'],
    tiers: {
      free: tierLimits(10),
      premium: tierLimits(100),
      enterprise: tierLimits(1000),
      // Anonymous requests carry no org key, so their org policy is never in force; every level needs one.
      [ANONYMOUS_TIER]: {
        user: { capacity: 5, refill: { tokens: 1, per: '1s' } },
        org: { capacity: 5 * ORG_FACTOR, refill: { tokens: ORG_FACTOR, per: '1s' } },
      },
    },
    policies: { global: perSecond(5000) },
    defaultTier: 'free',
  })
  // With a shared store an earlier run (or another server) may have moved an org already: keep its choice.
  for (const [org, tier] of Object.entries(ORG_TIERS)) {
    const ref = { level: 'org', key: org }
    await retryTimeouts(async () => {
      if ((await limiter.getTier(ref)) === undefined) await limiter.setTier(ref, tier)
    })
  }
  return {
    limiter,
    storeName,
    memory,
    async close() {
      await limiter.close()
      await closeStore()
    },
  }
}

/**
 * Start-up calls get a few tries when the store times out (each call is bounded by the store's timeoutMs,
 * 500 ms of silence for Redis by default, which a busy machine can still exceed); other errors are final.
 */
async function retryTimeouts(call: () => Promise<void>, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      const timedOut = error instanceof TollgateError && error.code === ErrorCode.StoreTimeout
      if (!timedOut || attempt === attempts) throw error
    }
  }
}

/** REDIS_TIMEOUT_MS: how long one Redis call may take before onStoreError decides; unset → the store's default. */
function redisTimeout(env: NodeJS.ProcessEnv): number | undefined {
  if (env.REDIS_TIMEOUT_MS === undefined || env.REDIS_TIMEOUT_MS === '') return undefined
  const ms = Number(env.REDIS_TIMEOUT_MS)
  if (!(ms > 0 && Number.isFinite(ms))) {
    throw new TollgateError(
      ErrorCode.InvalidOption,
      `REDIS_TIMEOUT_MS must be ms above 0; got ${env.REDIS_TIMEOUT_MS}`,
      {
        field: 'REDIS_TIMEOUT_MS',
        value: env.REDIS_TIMEOUT_MS,
      },
    )
  }
  return ms
}

/**
 * TESTS ONLY (EXAMPLE_TEST_CLOCK=1): the wall clock plus an offset that POST /debug/clock moves forward,
 * so a test can let time pass without sleeping. Redis then takes `now` from it too (redisStore's test clock).
 */
let clockOffsetMs = 0
const testClock = () => Date.now() + clockOffsetMs
export function advanceTestClock(ms: number): void {
  clockOffsetMs += ms
}

async function openStore(
  redisUrl: string | undefined,
  timeoutMs: number | undefined,
  clock: (() => number) | undefined,
): Promise<{ store: Store; storeName: string; memory?: MemoryStore; closeStore: () => Promise<void> }> {
  if (!redisUrl) {
    const memory = memoryStore(clock ? { clock } : {})
    return { store: memory, storeName: 'memory', memory, closeStore: async () => {} }
  }
  // Loaded only when asked for, so the memory-only path needs no Redis at all.
  const [{ Redis }, { redisStore }] = await Promise.all([import('ioredis'), import('@tollgate/redis')])
  // No offline queue: while Redis is away commands fail at once and the limiter's onStoreError decides.
  const client = new Redis(redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    maxLoadingRetryTime: 100, // after a restart, ready within 100 ms of Redis loading its data, not 1 s
    lazyConnect: true,
  })
  client.on('error', () => {}) // reported through the limiter's store-error events; reconnects by itself
  await client.connect()
  const store = redisStore({ client, ...(timeoutMs ? { timeoutMs } : {}), ...(clock ? { clock } : {}) })
  return {
    store,
    storeName: 'redis',
    closeStore: async () => {
      await store.close?.()
      client.disconnect()
    },
  }
}

/**
 * The adapter options of an API route: one identify step per request reads the API key (a lookup that
 * could as well be async, in a database) and gives the chain's keys and tier; the route gives the cost.
 */
export function routeLimit(
  limiter: Limiter,
  cost: number,
): HttpLimitOptions<{ readonly headers: IncomingHttpHeaders }> {
  return {
    limiter,
    cost,
    identify: async (req) => {
      const who = caller(req.headers)
      // A tenant gets its org's assigned tier. Anyone else is keyed by client address (no subject: IPv6 by
      // /56) under the anonymous tier, an unknown key included, so guessing keys is limited too.
      return who.kind === 'tenant'
        ? { subject: { user: who.user, org: who.org } }
        : { subject: undefined, tier: ANONYMOUS_TIER }
    },
  }
}
