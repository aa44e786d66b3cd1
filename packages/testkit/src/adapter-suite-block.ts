import { createLimiter, type Decision } from '@tollgate/core'
import { expect, it } from 'vitest'
import { type AdapterAppFactory, describeOnEachStore, QUOTA_EXCEEDED } from './adapter-harness.js'
import type { RefundSuiteOptions } from './adapter-suite-refund.js'
import { manualClock } from './clock.js'

export const ABNORMAL_USAGE = 'https://iana.org/assignments/http-problem-types#abnormal-usage-detected'

/**
 * Blocking repeat offenders through real HTTP (issue 14): createLimiter's `block` answers 429 with the
 * remaining block as Retry-After and `t`, an abnormal-usage-detected problem, and `onRefused` sees
 * `decision.blocked`. On a store in this process the manual clock also shows the block lifting at its end
 * (Redis decides on its own clock, which runs: there the block's figures hold to the second).
 */
export function describeAdapterBlocking(
  name: string,
  makeApp: AdapterAppFactory,
  options?: RefundSuiteOptions,
) {
  describeOnEachStore(`adapter blocking: ${name}`, makeApp, options?.stores, (storeFactory, { start }) => {
    it('answers a blocked client 429 with the remaining block as Retry-After, and onRefused knows', async () => {
      const store = await storeFactory.make()
      const clock = manualClock()
      const limiter = createLimiter({
        ...(store && { store }),
        clock: clock.now,
        // A token every 30 s: the second refusal within a minute blocks for 15 minutes.
        policy: { capacity: 2, refill: { tokens: 2, per: '1m' } },
        block: { after: 2, within: '1m', for: '15m' },
      })
      const refused: Decision[] = []
      const { http } = await start({ app: { limiter, onRefused: (_req, d) => void refused.push(d) } })
      await http.get('/hello').expect(200)
      await http.get('/hello').expect(200)
      const first = await http.get('/hello').expect(429)
      expect(first.body.type).toBe(QUOTA_EXCEEDED)
      expect(first.headers['retry-after']).toBe('30')
      const blocked = await http.get('/hello').expect(429)
      expect(blocked.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(blocked.headers['retry-after']).toBe('900')
      expect(blocked.headers.ratelimit).toBe('"key";r=0;t=900')
      expect(blocked.body).toMatchObject({
        type: ABNORMAL_USAGE,
        status: 429,
        blocked: true,
        retryAfter: 900,
        'violated-policies': ['key'],
      })
      expect(refused.map((d) => d.blocked)).toEqual([false, true])
      // Still blocked, and still counting down, however often it asks.
      clock.advance(300_000)
      const later = await http.get('/hello').expect(429)
      if (store) return
      expect(later.headers['retry-after']).toBe('600')
      clock.advance(600_000)
      await http.get('/hello').expect(200)
    })
  })
}
