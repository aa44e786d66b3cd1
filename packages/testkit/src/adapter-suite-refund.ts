import type { PolicyInput } from '@tollgate/core'
import { createLimiter, type Decision } from '@tollgate/core'
import { expect, it } from 'vitest'
import {
  type AdapterAppFactory,
  describeOnEachStore,
  leaveWhenDecided,
  type SuiteStores,
} from './adapter-harness.js'
import { manualClock } from './clock.js'
import { eventually } from './conformance/context.js'

export interface RefundSuiteOptions {
  /** Stores to run on; `make` gives each test a fresh one. Default: the limiter's in-process store only. */
  stores?: SuiteStores
}

/**
 * Skip rules and refunds through real HTTP (issue 14): skipFailedRequests, skipSuccessfulRequests and
 * refundWhen give the token back when the response is sent (limiter.refund), and so does a delayed request
 * whose client went away. Needs limiter.refund from core.
 */
export function describeAdapterRefunds(
  name: string,
  makeApp: AdapterAppFactory,
  options: RefundSuiteOptions = {},
): void {
  describeOnEachStore(`adapter refunds: ${name}`, makeApp, options.stores, (storeFactory, { start }) => {
    // Redis decides on its own clock, which runs: a bucket refilling 3 an hour stays put for a test's length.
    async function limiterWith(policy: PolicyInput = { capacity: 3, refill: { tokens: 3, per: '1h' } }) {
      const store = await storeFactory.make()
      const clock = manualClock()
      const decided: Decision[] = []
      const limiter = createLimiter({
        ...(store && { store }),
        clock: clock.now,
        policy,
        onEvent: (event) => event.type === 'decision' && decided.push(event.decision),
      })
      // Refunds land after the response is sent: wait on the bucket, never on a sleep.
      const remaining = async () => (await limiter.check('127.0.0.1', { cost: 0 })).remaining
      return { limiter, decided, remaining }
    }

    it('skipFailedRequests gives back the token of a 4xx/5xx response, not of a 2xx', async () => {
      const { limiter, remaining } = await limiterWith()
      const { http } = await start({ app: { limiter, skipFailedRequests: true } })
      await http.get('/hello').set('x-status', '500').expect(500)
      await http.get('/hello').set('x-status', '404').expect(404)
      await eventually(async () => expect(await remaining()).toBe(3))
      await http.get('/hello').expect(200)
      await http.get('/hello').set('x-status', '302').expect(302)
      await eventually(async () => expect(await remaining()).toBe(1))
    })

    it('skipSuccessfulRequests gives back the token of a response below 400', async () => {
      const { limiter, remaining } = await limiterWith()
      const { http } = await start({ app: { limiter, skipSuccessfulRequests: true } })
      for (let i = 0; i < 5; i++) await http.get('/hello').expect(200)
      await eventually(async () => expect(await remaining()).toBe(3))
      // Failures count: three 401s spend the bucket, and the fourth is refused.
      for (let i = 0; i < 3; i++) await http.get('/hello').set('x-status', '401').expect(401)
      await eventually(async () => expect(await remaining()).toBe(0))
      await http.get('/hello').set('x-status', '401').expect(429)
    })

    it('refundWhen(status, req) decides per response', async () => {
      const { limiter, remaining } = await limiterWith()
      const refundWhen = (status: number) => status === 304
      const { http } = await start({ app: { limiter, refundWhen } })
      await http.get('/hello').set('x-status', '304').expect(304)
      await http.get('/hello').set('x-status', '304').expect(304)
      await eventually(async () => expect(await remaining()).toBe(3))
      await http.get('/hello').expect(200)
      await eventually(async () => expect(await remaining()).toBe(2))
    })

    it('refunds the token of a delayed request whose client went away', async () => {
      const { limiter, decided, remaining } = await limiterWith({
        algorithm: 'leaky-bucket',
        mode: 'delay',
        capacity: 5,
        refill: { tokens: 1, per: '1s' },
      })
      const { http, port, hits } = await start({ app: { limiter } })
      await http.get('/hello').expect(200)
      await leaveWhenDecided(port, decided, 2)
      // Held about 1 s (less by what the store's clock ran meanwhile, on Redis); its client left at once.
      expect(decided[1]!.delayMs).toBeGreaterThan(500)
      expect(decided[1]!.delayMs).toBeLessThanOrEqual(1000)
      // Its place in the queue comes back well before the queue drains by itself (1 s a place)...
      await eventually(async () => expect(await remaining()).toBe(4), 400)
      // ...so the next request waits about 1 s, not about 2.
      const third = await http.get('/hello').expect(200)
      expect(third.body.delayMs).toBeLessThanOrEqual(1000)
      expect(hits.get('/hello')).toBe(2)
    })
  })
}
