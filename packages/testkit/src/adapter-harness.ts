import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createLimiter,
  type Decision,
  type LimiterOptions,
  type PolicyInput,
  type Store,
} from '@tollgate/core'
import type { HttpLimitOptions } from '@tollgate/core/http'
import { Redis } from 'ioredis'
import supertest from 'supertest'
import { afterAll, afterEach, describe } from 'vitest'
import { manualClock } from './clock.js'
import { type RedisServer, startRedis } from './redis-server.js'

/** The part of a request the suite's options read: Express req, Koa ctx and Fastify request all have it. */
export interface SuiteRequest {
  readonly headers: IncomingHttpHeaders
}

export type SuiteLimitOptions = HttpLimitOptions<SuiteRequest>

/** What an adapter's test builds, in its own framework. */
export interface AdapterAppSetup {
  /** A limit on every route (Express/Koa `app.use`, Fastify registered at the root); none when undefined. */
  app?: SuiteLimitOptions
  /**
   * GET routes, by path, each with a route-level limit. Alone: Express/Koa route middleware, Fastify
   * `config.rateLimit` with the plugin registered `global: false`. With `app`, a second limit layered on the
   * route: Express/Koa route middleware after `app.use`, Fastify the plugin registered again in a child scope
   * holding the route.
   */
  routes?: Record<string, SuiteLimitOptions>
  /** Set the framework's own trust-proxy setting to trust every hop (Express `trust proxy`, Koa `app.proxy`, Fastify `trustProxy`). */
  trustProxy?: boolean
  /** When set, pass the adapter's `handler` option and answer a refusal with this status and JSON body. */
  refusal?: (decision: Decision) => { status: number; body: unknown }
  /**
   * Every route (GET /hello and the `routes`) answers with this JSON, given the decision the adapter exposed,
   * and with the status in the request's `x-status` header (default 200).
   */
  respond: (path: string, decision: Decision | undefined) => unknown
}

/** A server for the suite to listen on loopback (an unlistened http.Server) and how to dispose of the app. */
export interface AdapterApp {
  server: Server
  close?: () => Promise<void>
}

export type AdapterAppFactory = (setup: AdapterAppSetup) => AdapterApp | Promise<AdapterApp>

export interface Reply {
  path: string
  allowed?: boolean
  remaining?: number
  binding?: string
  delayMs?: number
  keys?: string[]
  seq: number
}

export const perSecond = (capacity: number, tokens = capacity): PolicyInput => ({
  capacity,
  refill: { tokens, per: '1s' },
})
export const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded'
export const REDUCED_CAPACITY = 'https://iana.org/assignments/http-problem-types#temporary-reduced-capacity'
export const header = (name: string) => (req: SuiteRequest) => {
  const value = req.headers[name]
  return typeof value === 'string' ? value : undefined
}

/** Inside a describe: starts apps on loopback for one test and stops them after it. */
export function adapterHarness(makeApp: AdapterAppFactory) {
  const running: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of running.splice(0)) await stop()
  })

  /** Starts an app; `hits` counts handler runs per path. */
  async function start(setup: Omit<AdapterAppSetup, 'respond'>) {
    const hits = new Map<string, number>()
    let seq = 0
    const respond = (path: string, decision: Decision | undefined): Reply => {
      hits.set(path, (hits.get(path) ?? 0) + 1)
      return {
        path,
        seq: ++seq,
        ...(decision && {
          allowed: decision.allowed,
          remaining: decision.remaining,
          binding: decision.binding,
          delayMs: decision.delayMs,
          keys: decision.levels.map((l) => l.key),
        }),
      }
    }
    const app = await makeApp({ ...setup, respond })
    const { server } = app
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    running.push(async () => {
      server.closeAllConnections()
      if (app.close) await app.close()
      else await new Promise((resolve) => server.close(resolve))
    })
    const url = `http://127.0.0.1:${port}`
    return { http: supertest(url), port, hits }
  }

  function limiterWith(options: LimiterOptions = {}) {
    const clock = manualClock()
    return { clock, limiter: createLimiter({ clock: clock.now, ...options }) }
  }

  return { start, limiterWith }
}

/** Stores an adapter suite runs on; `make` gives each test a fresh one. */
export type SuiteStores = Record<
  string,
  { make: () => Store | undefined | Promise<Store | undefined>; close?: () => Promise<void> }
>

/**
 * One describe per store (default: the limiter's own in-process store), each with its app harness and the
 * store closed after it.
 */
export function describeOnEachStore(
  title: string,
  makeApp: AdapterAppFactory,
  stores: SuiteStores | undefined,
  body: (store: SuiteStores[string], harness: ReturnType<typeof adapterHarness>) => void,
): void {
  for (const [storeName, storeFactory] of Object.entries(
    stores ?? { 'in-process': { make: () => undefined } },
  )) {
    describe(`${title} on ${storeName}`, () => {
      const harness = adapterHarness(makeApp)
      afterAll(async () => {
        await storeFactory.close?.()
      })
      body(storeFactory, harness)
    })
  }
}

/** Sends GET /hello and goes away as soon as `decided` holds `count` decisions (the request is then held). */
export function leaveWhenDecided(port: number, decided: readonly Decision[], count: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/hello' })
    req.on('error', () => resolve())
    const poll = setInterval(() => {
      if (decided.length < count) return
      clearInterval(poll)
      req.destroy()
      resolve()
    }, 1)
    req.end()
  })
}

/**
 * Stores on one real redis-server, started on first use: `createStore` is the Redis store constructor (the
 * testkit imports no store). Each store gets a client and prefix of its own and is ready before it is handed out.
 */
export function redisSuiteStores<S extends { ready?(): Promise<void> }>(
  createStore: (client: Redis, prefix: string) => S,
) {
  let server: RedisServer | undefined
  const clients: Redis[] = []
  return {
    name: 'redis',
    async make(): Promise<S> {
      server ??= await startRedis()
      const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
      clients.push(client)
      const store = createStore(client, `t${clients.length}:`)
      await store.ready?.() // connected first: no decision of a test is made by the local fallback
      return store
    },
    async close(): Promise<void> {
      for (const client of clients.splice(0)) client.disconnect()
      await server?.stop()
      server = undefined
    },
  }
}
