import {
  createLimiter,
  type Decision,
  ErrorCode,
  type LimiterOptions,
  type Store,
  TollgateError,
} from '@tollgate/core'
import { type HttpWarning, HttpWarningCode } from '@tollgate/core/http'
import { InProcessStore } from '@tollgate/core/store'
import { afterAll, describe, expect, it } from 'vitest'
import {
  type AdapterAppFactory,
  adapterHarness,
  header,
  QUOTA_EXCEEDED,
  type SuiteLimitOptions,
  type SuiteRequest,
} from './adapter-harness.js'

const perMinute = (capacity: number) => ({ capacity, refill: { tokens: capacity, per: '1m' as const } })
const perHour = (capacity: number) => ({ capacity, refill: { tokens: capacity, per: '1h' as const } })

/** Where the suite's limiters keep state: `make` gives each limiter a fresh store (undefined: in-process). */
export interface SuiteStore {
  readonly name: string
  make(): Store | undefined | Promise<Store | undefined>
  close?(): Promise<void>
}

/**
 * The options users of the peers reach for (issue 14): one-call setup, identify, per-route tiers that keep to
 * their own buckets, onRefused, allowList, unknown options, one limiter used twice on one request.
 */
export function describeAdapterOptions(
  makeApp: AdapterAppFactory,
  store: SuiteStore = { name: 'in-process', make: () => undefined },
): void {
  describe(`options on ${store.name}`, () => {
    const { start, limiterWith: onClock } = adapterHarness(makeApp)
    afterAll(async () => store.close?.())
    // Limits that refill over an hour or a minute: the store's clock (Redis's own) runs during a test.
    const limiterWith = async (options: LimiterOptions) => {
      const made = await store.make()
      return onClock(made ? { ...options, store: made } : options)
    }
    const made = (options: unknown) => makeApp({ app: options as SuiteLimitOptions, respond: () => ({}) })

    it('sets up in one call: rateLimit({ limit, per }) with no createLimiter', async () => {
      const { http } = await start({ app: { limit: 3, per: '1m' } })
      for (let i = 2; i >= 0; i--) {
        const res = await http.get('/hello').expect(200)
        expect(res.headers['ratelimit-policy']).toBe('"key";q=3;w=60')
        expect(res.body.remaining).toBe(i)
      }
      const refused = await http.get('/hello').expect(429)
      expect(refused.headers['retry-after']).toBe('20') // one token comes back every 60 s / 3
    })

    it('keeps two one-call limits of one app apart, each on its own budget', async () => {
      const { http } = await start({
        routes: { '/search': { limit: 3, per: '1m' }, '/export': { limit: 1, per: '1m' } },
      })
      expect((await http.get('/export').expect(200)).headers['ratelimit-policy']).toBe('"key";q=1;w=60')
      await http.get('/export').expect(429)
      for (let i = 2; i >= 0; i--) expect((await http.get('/search').expect(200)).body.remaining).toBe(i)
      await http.get('/search').expect(429)
    })

    it('keeps two limiters on one store apart by name, both on the default level key', async () => {
      // The issue 14 case: a per-IP limiter and an /export one on one store; before names they drained each other.
      const shared = (await store.make()) ?? new InProcessStore({ maxKeys: 1000 })
      const perIp = createLimiter({ store: shared, policy: perMinute(3) })
      const exporter = createLimiter({ store: shared, name: 'export', policy: perMinute(1) })
      const { http } = await start({
        routes: { '/search': { limiter: perIp }, '/export': { limiter: exporter } },
      })
      await http.get('/export').expect(200)
      await http.get('/export').expect(429)
      for (let i = 2; i >= 0; i--) expect((await http.get('/search').expect(200)).body.remaining).toBe(i)
      await http.get('/search').expect(429)
      expect(() => createLimiter({ store: shared, policy: perMinute(3) })).toThrow(
        expect.objectContaining({ code: ErrorCode.DuplicateName, field: 'name' }),
      )
      await perIp.close()
      await exporter.close()
    })

    it('calls identify once per request, async, for subject, tier and cost', async () => {
      const { limiter } = await limiterWith({
        levels: ['user', 'org'],
        tiers: {
          free: { user: perHour(5), org: perHour(50) },
          pro: { user: perHour(20), org: perHour(50) },
        },
      })
      const calls: string[] = []
      const identify = async (req: SuiteRequest) => {
        const user = header('x-user')(req) ?? 'anonymous'
        calls.push(user)
        await new Promise((resolve) => setImmediate(resolve)) // an API-key lookup
        return { subject: { user, org: 'acme' }, tier: user === 'paul' ? 'pro' : undefined, cost: 2 }
      }
      const { http } = await start({ app: { limiter, identify } })
      const alice = await http.get('/hello').set('x-user', 'alice').expect(200)
      expect(alice.body).toMatchObject({ remaining: 3, keys: ['alice', 'acme'] })
      const paul = await http.get('/hello').set('x-user', 'paul').expect(200)
      // A tier from identify counts in the tier's own buckets.
      expect(paul.body).toMatchObject({ remaining: 18, keys: ['[pro]paul', '[pro]acme'] })
      expect(calls).toEqual(['alice', 'paul'])
    })

    it("keeps a route's tier to its own buckets: it never rewrites another route's bucket", async () => {
      const { limiter } = await limiterWith({
        tiers: { standard: { key: perMinute(10) }, strict: { key: perMinute(3) } },
      })
      const { http } = await start({
        routes: { '/open': { limiter }, '/strict': { limiter, tier: 'strict' } },
      })
      await http.get('/open').expect(200)
      expect((await http.get('/strict').expect(200)).body.remaining).toBe(2)
      // Before route-scoped buckets, one /strict request clamped this client's 10/min bucket to 3, then 1.
      expect((await http.get('/open').expect(200)).body.remaining).toBe(8)
      for (let i = 0; i < 2; i++) await http.get('/strict').expect(200)
      await http.get('/strict').expect(429)
      expect((await http.get('/open').expect(200)).body.remaining).toBe(7)
    })

    it('calls onRefused with the request and the decision; a throwing hook changes nothing', async () => {
      const { limiter } = await limiterWith({ policy: perHour(1) })
      const seen: [string | undefined, Decision][] = []
      const warnings: HttpWarning[] = []
      const onRefused = (req: SuiteRequest, decision: Decision) => {
        seen.push([header('x-trace')(req), decision])
        throw new Error('alerting is down')
      }
      const { http } = await start({ app: { limiter, onRefused, onWarning: (w) => warnings.push(w) } })
      await http.get('/hello').set('x-trace', 'a').expect(200)
      const res = await http.get('/hello').set('x-trace', 'b').expect(429)
      expect(JSON.parse(res.text)).toMatchObject({ type: QUOTA_EXCEEDED, status: 429 })
      expect(seen.map(([trace, d]) => [trace, d.allowed, d.binding])).toEqual([['b', false, 'key']])
      expect(warnings).toMatchObject([
        { code: HttpWarningCode.HookFailed, error: { message: 'alerting is down' } },
      ])
    })

    it('never limits an allowList of addresses, CIDR ranges and keys', async () => {
      const { limiter } = await limiterWith({ policy: perHour(1) })
      const allowList = ['10.1.0.0/16', '2001:db8::/32', '192.0.2.7', 'vip']
      const subject = (req: SuiteRequest) => header('x-key')(req)
      const { http } = await start({ app: { limiter, allowList, subject }, trustProxy: true })
      const from = (address: string) => http.get('/hello').set('X-Forwarded-For', address)
      for (const address of ['10.1.2.3', '::ffff:10.1.200.1', '2001:db8:5::1', '192.0.2.7']) {
        for (let i = 0; i < 3; i++)
          expect((await from(address).expect(200)).headers.ratelimit).toBeUndefined()
      }
      for (let i = 0; i < 3; i++) await from('10.2.0.1').set('x-key', 'vip').expect(200)
      await from('10.2.0.1').expect(200)
      await from('10.2.0.1').expect(429)
      await from('192.0.2.8').expect(200)
      await from('192.0.2.8').expect(429)
    })

    it("refuses unknown options, naming the option and tollgate's equivalent", async () => {
      const cases: [unknown, string, RegExp][] = [
        [{ windowMs: 60_000, max: 5 }, 'windowMs', /per/],
        [{ max: 5 }, 'max', /limit/],
        [{ timeWindow: '1 minute' }, 'timeWindow', /per/],
        [{ keyGenerator: () => 'k' }, 'keyGenerator', /identify|subject/],
        [{ whitelist: ['127.0.0.1'] }, 'whitelist', /allowList/],
        [{ standardHeaders: true }, 'standardHeaders', /headers/],
        [{ skipFailed: true }, 'skipFailed', /the options are .*skipFailedRequests/],
      ]
      for (const [options, field, message] of cases) {
        const error = await Promise.resolve()
          .then(() => made(options))
          .then(
            () => undefined,
            (e: unknown) => e,
          )
        expect(error, field).toBeInstanceOf(TollgateError)
        expect(error).toMatchObject({ code: ErrorCode.InvalidOption, field })
        expect((error as Error).message).toMatch(message)
      }
    })

    it('charges one limiter once per request: a second use warns once and charges nothing', async () => {
      const { limiter } = await limiterWith({ policy: perHour(5) })
      const warnings: string[] = []
      const onWarning = (w: HttpWarning) => warnings.push(w.code)
      const { http } = await start({
        app: { limiter, onWarning },
        routes: { '/export': { limiter, cost: 3, onWarning } },
      })
      const first = await http.get('/export').expect(200)
      expect(first.headers.ratelimit).toBe('"key";r=4;t=720') // the global use's headers, not overwritten
      expect((await http.get('/export').expect(200)).body.remaining).toBe(3)
      expect(warnings).toEqual([HttpWarningCode.DoubleCount])
    })

    it("joins a second limiter's RateLimit fields to the first's instead of overwriting them", async () => {
      const { limiter: global } = await limiterWith({ levels: ['client'], policy: perHour(10) })
      const { limiter: exports } = await limiterWith({ levels: ['export'], policy: perHour(2) })
      const { http } = await start({ app: { limiter: global }, routes: { '/export': { limiter: exports } } })
      const res = await http.get('/export').expect(200)
      expect(res.headers['ratelimit-policy']).toBe('"client";q=10;w=3600, "export";q=2;w=3600')
      expect(res.headers.ratelimit).toBe('"client";r=9;t=360, "export";r=1;t=1800')
      await http.get('/export').expect(200)
      const refused = await http.get('/export').expect(429)
      // The first limiter charged the request the second refused: two limiters are two budgets.
      expect(refused.headers.ratelimit).toBe('"client";r=7;t=1080, "export";r=0;t=1800')
      expect(refused.headers['retry-after']).toBe('1800')
    })
  })
}
