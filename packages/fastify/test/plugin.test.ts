import { createLimiter } from '@tollgate/core'
import { manualClock } from '@tollgate/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import tollgate from '../src/index.js'

const limiterOf = (capacity: number) =>
  createLimiter({ clock: manualClock().now, policy: { capacity, refill: { tokens: capacity, per: '1s' } } })

async function statuses(app: FastifyInstance, url: string, times: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < times; i++) out.push((await app.inject({ method: 'GET', url })).statusCode)
  return out
}

describe('@tollgate/fastify plugin', () => {
  it('limits only the routes of the scope it is registered in', async () => {
    const app = Fastify()
    app.get('/outside', async () => 'ok')
    app.register(async (child) => {
      child.register(tollgate, { limiter: limiterOf(1) })
      child.get('/inside', async () => 'ok')
      child.register(async (grandchild) => {
        grandchild.get('/nested', async () => 'ok')
      })
    })
    app.register(async (sibling) => {
      sibling.get('/sibling', async () => 'ok')
    })
    expect(await statuses(app, '/inside', 2)).toEqual([200, 429])
    // The nested route shares the scope's limit (same client, same limiter).
    expect(await statuses(app, '/nested', 1)).toEqual([429])
    expect(await statuses(app, '/outside', 3)).toEqual([200, 200, 200])
    expect(await statuses(app, '/sibling', 3)).toEqual([200, 200, 200])
    await app.close()
  })

  it('lets a route opt out with config.rateLimit false and override options per route', async () => {
    const limiter = limiterOf(10)
    const app = Fastify()
    app.register(tollgate, { limiter })
    app.get('/health', { config: { rateLimit: false } }, async () => 'ok')
    app.get(
      '/search',
      { config: { rateLimit: { cost: 5 } } },
      async (request) => request.rateLimit?.remaining,
    )
    app.get('/hello', async (request) => request.rateLimit?.remaining)
    const health = await app.inject({ url: '/health' })
    expect(health.headers.ratelimit).toBeUndefined()
    expect((await app.inject({ url: '/search' })).body).toBe('5')
    expect((await app.inject({ url: '/hello' })).body).toBe('4')
    expect(await statuses(app, '/search', 1)).toEqual([429])
    expect(await statuses(app, '/health', 20)).toEqual(Array(20).fill(200))
    await app.close()
  })

  it('with global: false limits only routes that ask for it', async () => {
    const app = Fastify()
    await app.register(tollgate, { limiter: limiterOf(1), global: false })
    app.get('/free', async () => 'ok')
    app.get('/limited', { config: { rateLimit: {} } }, async () => 'ok')
    expect(await statuses(app, '/free', 3)).toEqual([200, 200, 200])
    expect(await statuses(app, '/limited', 2)).toEqual([200, 429])
    await app.close()
  })

  it('keeps hooks the route declares itself, after the limit', async () => {
    const app = Fastify()
    const seen: string[] = []
    await app.register(tollgate, { limiter: limiterOf(1) })
    app.get('/own-hook', { onRequest: async () => void seen.push('route hook') }, async () => 'ok')
    expect(await statuses(app, '/own-hook', 2)).toEqual([200, 429])
    expect(seen).toEqual(['route hook'])
    await app.close()
  })

  it('shares one limiter from a one-call { limit, per } between plain routes and routes with options', async () => {
    const app = Fastify()
    await app.register(tollgate, { limit: 3, per: '1m' })
    app.get('/plain', async () => 'ok')
    app.get('/weighted', { config: { rateLimit: { cost: 2 } } }, async () => 'ok')
    app.get('/own', { config: { rateLimit: { limit: 1, per: '1m' } } }, async () => 'ok')
    expect(await statuses(app, '/weighted', 1)).toEqual([200])
    expect(await statuses(app, '/plain', 2)).toEqual([200, 429])
    // A route with its own limit/per has a limiter of its own.
    expect(await statuses(app, '/own', 2)).toEqual([200, 429])
    await app.close()
  })

  it('refuses unknown route options when the route is declared', async () => {
    const app = Fastify()
    await app.register(tollgate, { limit: 3 })
    expect(() =>
      app.get('/x', { config: { rateLimit: { timeWindow: 1000 } as never } }, async () => 'ok'),
    ).toThrow(/timeWindow: tollgate's equivalent is per/)
    await app.close()
  })

  it('fails registration on bad options with a TollgateError', async () => {
    const app = Fastify()
    app.register(tollgate, { global: 'yes' as unknown as boolean })
    await expect(app.ready()).rejects.toMatchObject({ code: 'ERR_TOLLGATE_INVALID_OPTION', field: 'global' })
  })
})
