import { createLimiter, type Decision, ErrorCode, type Store, TollgateError } from '@tollgate/core'
import { UNEXPECTED_FORWARDED_FOR } from '@tollgate/core/http'
import { describe, expect, it } from 'vitest'
import {
  type AdapterAppFactory,
  adapterHarness,
  header,
  leaveWhenDecided,
  perSecond,
  QUOTA_EXCEEDED,
  REDUCED_CAPACITY,
  type Reply,
  type SuiteLimitOptions,
  type SuiteRequest,
} from './adapter-harness.js'
import { describeAdapterOptions } from './adapter-suite-options.js'
import { manualClock } from './clock.js'

export type {
  AdapterApp,
  AdapterAppFactory,
  AdapterAppSetup,
  SuiteLimitOptions,
  SuiteRequest,
} from './adapter-harness.js'

/** A store whose consume always fails as a store outage does: the fault injection for onStoreError. */
function failingStore(error: unknown): Store {
  const fail = () => Promise.reject(error)
  return {
    name: 'failing',
    decide: fail,
    refund: fail,
    reset: fail,
    registry: { read: fail, write: fail, tiers: fail, writeTier: fail, subscribe: () => () => undefined },
  }
}

/**
 * One behaviour suite for every framework adapter, over real HTTP on loopback through supertest, so the
 * adapters cannot drift apart. `makeApp` builds the framework app for a setup; all time is a manual clock.
 */
export function describeAdapterConformance(name: string, makeApp: AdapterAppFactory): void {
  describe(`adapter conformance: ${name}`, () => {
    const { start, limiterWith } = adapterHarness(makeApp)

    it('limits by client address with IETF headers given nothing but a limiter', async () => {
      const { clock, limiter } = limiterWith()
      const { http } = await start({ app: { limiter } })
      for (let i = 4; i >= 0; i--) {
        const res = await http.get('/hello').expect(200)
        expect(res.headers['ratelimit-policy']).toBe('"key";q=5;w=5')
        // t: seconds until the bucket is full again, or while empty until it serves again.
        expect(res.headers.ratelimit).toBe(`"key";r=${i};t=${i === 0 ? 1 : 5 - i}`)
        expect(res.headers['retry-after']).toBeUndefined()
        expect(res.body).toMatchObject({ path: '/hello', allowed: true, remaining: i, keys: ['127.0.0.1'] })
      }
      const refused = await http.get('/hello').expect(429)
      expect(refused.headers['retry-after']).toBe('1')
      expect(refused.headers.ratelimit).toBe('"key";r=0;t=1')
      clock.advance(1000)
      await http.get('/hello').expect(200)
    })

    it('works with no options at all (a default limiter)', async () => {
      const { http } = await start({ app: {} })
      const res = await http.get('/hello').expect(200)
      expect(res.headers.ratelimit).toMatch(/^"key";r=4;t=1$/)
    })

    it('answers a refusal with an RFC 9457 quota-exceeded problem', async () => {
      const { limiter } = limiterWith({
        levels: ['user', 'org'],
        policies: { user: perSecond(1), org: perSecond(10) },
      })
      const { http } = await start({
        app: { limiter, subject: (req) => ({ user: header('x-user')(req), org: 'acme' }) },
      })
      await http.get('/hello').set('x-user', 'alice').expect(200)
      const res = await http.get('/hello').set('x-user', 'alice').expect(429)
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
      const body = JSON.parse(res.text)
      expect(body).toMatchObject({
        type: QUOTA_EXCEEDED,
        title: 'Quota exceeded',
        status: 429,
        'violated-policies': ['user'],
        binding: 'user',
        retryAfter: 1,
      })
      expect(String(body.retryAfter)).toBe(res.headers['retry-after'])
    })

    it('sends no Retry-After when the cost can never pass', async () => {
      const { limiter } = limiterWith()
      const { http } = await start({ routes: { '/big': { limiter, cost: 6 } } })
      const res = await http.get('/big').expect(429)
      expect(res.headers['retry-after']).toBeUndefined()
      const body = JSON.parse(res.text)
      expect(body.retryAfter).toBeUndefined()
      expect(body.detail).toMatch(/can ever admit/)
    })

    it('applies per-route tier and cost, as a number and as a function of the request', async () => {
      const { limiter } = limiterWith({
        tiers: { free: { key: perSecond(10) }, premium: { key: perSecond(100) } },
      })
      const { http } = await start({
        routes: {
          '/search': { limiter, tier: 'premium', cost: 5 },
          '/weighted': { limiter, cost: (req) => Number(header('x-cost')(req) ?? 1), subject: () => 'w' },
          '/by-header': { limiter, tier: header('x-tier'), subject: () => 'h' },
        },
      })
      const search = await http.get('/search').expect(200)
      expect(search.headers['ratelimit-policy']).toBe('"key";q=100;w=1')
      expect(search.headers.ratelimit).toBe('"key";r=95;t=1')
      expect((await http.get('/weighted').set('x-cost', '3').expect(200)).body.remaining).toBe(7)
      expect((await http.get('/weighted').set('x-cost', '7').expect(200)).body.remaining).toBe(0)
      expect((await http.get('/by-header').set('x-tier', 'premium').expect(200)).body.remaining).toBe(99)
      // A forced tier counts in buckets of its own: the key is scoped by the tier's name.
      expect((await http.get('/by-header').set('x-tier', 'free').expect(200)).body.keys).toEqual(['[free]h'])
      await http.get('/by-header').set('x-tier', 'gold').expect(500)
    })

    it('keys a chain from the subject function, all-or-nothing', async () => {
      const { limiter } = limiterWith({
        levels: ['user', 'org'],
        policies: { user: perSecond(3), org: perSecond(5) },
      })
      const subject = (req: SuiteRequest) => ({ user: header('x-user')(req), org: header('x-org')(req) })
      const { http } = await start({ app: { limiter, subject } })
      const as = (user: string) => http.get('/hello').set('x-user', user).set('x-org', 'acme')
      for (let i = 0; i < 3; i++) await as('alice').expect(200)
      const alice = await as('alice').expect(429)
      expect(JSON.parse(alice.text)['violated-policies']).toEqual(['user'])
      const dave = await as('dave').expect(200)
      expect(dave.headers['ratelimit-policy']).toBe('"user";q=3;w=1, "org";q=5;w=1')
      expect(dave.headers.ratelimit).toBe('"user";r=2;t=1, "org";r=1;t=1')
      expect(dave.body.keys).toEqual(['dave', 'acme'])
      await as('dave').expect(200)
      const refused = await as('dave').expect(429)
      expect(JSON.parse(refused.text)).toMatchObject({ 'violated-policies': ['org'], binding: 'org' })
      // The refused request charged no level: dave still has one user token once the org refills.
      expect(refused.headers.ratelimit).toBe('"user";r=1;t=1, "org";r=0;t=1')
    })

    it('lets skipped requests through without headers or charge', async () => {
      const { limiter } = limiterWith()
      const { http } = await start({ app: { limiter, skip: (req) => req.headers['x-skip'] === 'yes' } })
      for (let i = 0; i < 8; i++) {
        const res = await http.get('/hello').set('x-skip', 'yes').expect(200)
        expect(res.headers.ratelimit).toBeUndefined()
        expect(res.body.allowed).toBeUndefined()
      }
      expect((await http.get('/hello').expect(200)).headers.ratelimit).toBe('"key";r=4;t=1')
    })

    it('lets the handler option answer a refusal, with the headers already set', async () => {
      const { limiter } = limiterWith({ policy: perSecond(1) })
      const refusal = (decision: Decision) => ({
        status: 418,
        body: { custom: true, binding: decision.binding },
      })
      const { http } = await start({ app: { limiter }, refusal })
      await http.get('/hello').expect(200)
      const res = await http.get('/hello').expect(418)
      expect(res.body).toEqual({ custom: true, binding: 'key' })
      expect(res.headers['retry-after']).toBe('1')
      expect(res.headers.ratelimit).toBe('"key";r=0;t=1')
    })

    it.each([
      [
        'draft-7',
        { 'ratelimit-policy': '5;w=5', ratelimit: 'limit=5, remaining=4, reset=1' },
        ['ratelimit-limit'],
      ],
      [
        'draft-6',
        {
          'ratelimit-policy': '5;w=5',
          'ratelimit-limit': '5',
          'ratelimit-remaining': '4',
          'ratelimit-reset': '1',
        },
        ['ratelimit'],
      ],
      ['draft-8', { 'ratelimit-policy': '"key";q=5;w=5', ratelimit: '"key";r=4;t=1' }, ['x-ratelimit-limit']],
      [
        'legacy',
        { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': '1800000001' },
        ['ratelimit', 'ratelimit-policy'],
      ],
      ['ietf', { 'ratelimit-policy': '"key";q=5;w=5', ratelimit: '"key";r=4;t=1' }, ['ratelimit-limit']],
      [false, {}, ['ratelimit', 'ratelimit-policy', 'x-ratelimit-limit']],
      [['ietf', 'legacy'], { ratelimit: '"key";r=4;t=1', 'x-ratelimit-remaining': '4' }, ['ratelimit-limit']],
    ] as const)('sends the %j header form', async (headers, present, absent) => {
      const { limiter } = limiterWith()
      const { http } = await start({ app: { limiter, headers } })
      const res = await http.get('/hello').expect(200)
      expect(res.headers).toMatchObject(present)
      for (const name of absent) expect(res.headers[name]).toBeUndefined()
      for (let i = 0; i < 4; i++) await http.get('/hello').expect(200)
      // Retry-After goes with every refusal that can pass, whatever the header form.
      expect((await http.get('/hello').expect(429)).headers['retry-after']).toBe('1')
    })

    it('holds a leaky-bucket delay-mode request, then passes it on in order', async () => {
      const { limiter } = limiterWith({
        policy: { algorithm: 'leaky-bucket', mode: 'delay', ...perSecond(3, 100) },
      })
      const { http } = await start({ app: { limiter } })
      // The manual clock stands still, so each admitted request waits 10 ms more than the one before it.
      const replies = await Promise.all([0, 1, 2].map(() => http.get('/hello').expect(200)))
      const byDelay = replies.map((r) => r.body as Reply).sort((a, b) => a.delayMs! - b.delayMs!)
      expect(byDelay.map((r) => r.delayMs)).toEqual([0, 10, 20])
      expect(byDelay.map((r) => r.seq)).toEqual([1, 2, 3])
      // The queue is full: the next one is refused, not held.
      expect((await http.get('/hello').expect(429)).headers['retry-after']).toBe('1')
    })

    it('drops a held request whose client disconnects, without running the handler', async () => {
      const decided: Decision[] = []
      const { limiter } = limiterWith({
        policy: { algorithm: 'leaky-bucket', mode: 'delay', ...perSecond(5, 10) },
        onEvent: (event) => event.type === 'decision' && decided.push(event.decision),
      })
      const { http, port, hits } = await start({ app: { limiter } })
      await http.get('/hello').expect(200)
      // The second request is held 100 ms; its client goes away as soon as it has been decided.
      await leaveWhenDecided(port, decided, 2)
      expect(decided[1]!.delayMs).toBe(100)
      // The next request is answered; the dropped one never reached the handler (its refund: adapter-refund-suite).
      await http.get('/hello').expect(200)
      expect(hits.get('/hello')).toBe(2)
    })

    it('ignores X-Forwarded-For while trust proxy is off and warns once', async () => {
      const warnings: { code: string }[] = []
      const { limiter } = limiterWith({ policy: perSecond(2) })
      const { http } = await start({ app: { limiter, onWarning: (w) => warnings.push(w) } })
      for (const spoofed of ['10.0.0.1', '10.0.0.2']) {
        const res = await http.get('/hello').set('X-Forwarded-For', spoofed).expect(200)
        expect(res.body.keys).toEqual(['127.0.0.1'])
      }
      await http.get('/hello').set('X-Forwarded-For', '10.0.0.3').expect(429)
      expect(warnings.map((w) => w.code)).toEqual([UNEXPECTED_FORWARDED_FOR])
    })

    it('keys by the forwarded address under trust proxy, IPv6 by /56 and IPv4-mapped as IPv4', async () => {
      const warnings: unknown[] = []
      const { limiter } = limiterWith({ policy: perSecond(1) })
      const { http } = await start({ app: { limiter, onWarning: (w) => warnings.push(w) }, trustProxy: true })
      const from = (address: string) => http.get('/hello').set('X-Forwarded-For', address)
      expect((await from('203.0.113.7').expect(200)).body.keys).toEqual(['203.0.113.7'])
      await from('::ffff:203.0.113.7').expect(429)
      expect((await from('203.0.113.8').expect(200)).body.keys).toEqual(['203.0.113.8'])
      expect((await from('2001:db8:0:1::1').expect(200)).body.keys).toEqual(['2001:db8::/56'])
      // Same /56 (only the last 8 bits of the fourth group differ): same bucket.
      await from('2001:db8:0:ff:1234::9').expect(429)
      expect((await from('2001:db8:0:100::1').expect(200)).body.keys).toEqual(['2001:db8:0:100::/56'])
      expect(warnings).toEqual([])
    })

    it('keys IPv6 by the configured prefix length', async () => {
      const { limiter } = limiterWith({ policy: perSecond(1) })
      const { http } = await start({ app: { limiter, ipv6Subnet: 64 }, trustProxy: true })
      const from = (address: string) => http.get('/hello').set('X-Forwarded-For', address)
      expect((await from('2001:db8:0:1::1').expect(200)).body.keys).toEqual(['2001:db8:0:1::/64'])
      await from('2001:db8:0:1:ffff::2').expect(429)
      await from('2001:db8:0:2::1').expect(200)
    })

    it("refuses with 503 temporary-reduced-capacity when the store fails under onStoreError 'closed'", async () => {
      const clock = manualClock()
      const outage = new TollgateError(ErrorCode.StoreUnavailable, 'store down')
      const limiter = createLimiter({ clock: clock.now, store: failingStore(outage), onStoreError: 'closed' })
      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on('unhandledRejection', onUnhandled)
      try {
        const { http } = await start({ app: { limiter } })
        for (let i = 0; i < 4; i++) {
          const res = await http.get('/hello').expect(503)
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
          expect(JSON.parse(res.text)).toMatchObject({ type: REDUCED_CAPACITY, status: 503 })
          expect(res.text).not.toMatch(/store down/)
          expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
        }
        await new Promise((resolve) => setImmediate(resolve))
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
      expect(unhandled).toEqual([])
    })

    it("admits when the store fails under onStoreError 'open', and decides locally by default", async () => {
      const clock = manualClock()
      const open = createLimiter({
        clock: clock.now,
        store: failingStore(new Error('ECONNREFUSED')),
        onStoreError: 'open',
      })
      const local = createLimiter({ clock: clock.now, store: failingStore(new Error('ECONNREFUSED')) })
      const { http } = await start({ routes: { '/open': { limiter: open }, '/local': { limiter: local } } })
      for (let i = 0; i < 7; i++) await http.get('/open').expect(200)
      for (let i = 0; i < 5; i++) await http.get('/local').expect(200)
      await http.get('/local').expect(429)
    })

    it('answers bad input from the request with a 400 problem naming the field', async () => {
      const { limiter } = limiterWith()
      const { http, hits } = await start({ app: { limiter, cost: (req) => Number(header('x-cost')(req)) } })
      const res = await http.get('/hello').set('x-cost', '-2').expect(400)
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(JSON.parse(res.text)).toMatchObject({ status: 400, field: 'cost', code: ErrorCode.InvalidCost })
      expect(hits.get('/hello')).toBeUndefined()
    })

    it("hands an unexpected error to the framework's error path", async () => {
      const { limiter } = limiterWith({ tiers: { free: { key: perSecond(5) } } })
      const { http, hits } = await start({
        routes: {
          '/throws': {
            limiter,
            subject: () => {
              throw new Error('subject lookup failed')
            },
          },
        },
      })
      await http.get('/throws').expect(500)
      expect(hits.size).toBe(0)
    })

    it('rejects bad options when the middleware is made', async () => {
      const tiered = createLimiter({ tiers: { free: { key: perSecond(5) } } })
      const bad: unknown[] = [
        { headers: 'draft-5' },
        { cost: -1 },
        { ipv6Subnet: 200 },
        { skip: 'yes' },
        { limiter: tiered, tier: 'platinum' },
        { tier: 'premium' }, // the default limiter has no tiers
      ]
      for (const options of bad) {
        await expect(async () =>
          makeApp({ app: options as SuiteLimitOptions, respond: () => ({}) }),
        ).rejects.toThrow(TollgateError)
      }
    })
    describeAdapterOptions(makeApp)
  })
}
