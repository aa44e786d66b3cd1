import { createLimiter, type Limiter, type LimiterOptions, type Store } from '@tollgate/core'
import { afterEach, describe } from 'vitest'
import { manualClock } from '../clock.js'
import { describeAdministration } from './administration.js'
import { describeBlocking } from './blocking.js'
import { describeChainsAndTiers } from './chains-and-tiers.js'
import { describeChanges } from './changes.js'
import type { ConformanceOptions, StoreFactory, SuiteContext } from './context.js'
import { describeNames } from './names.js'
import { describeOneBucket } from './one-bucket.js'
import { describeProperties } from './properties.js'
import { describeThirtyDays } from './thirty-days.js'

export { type ConformanceOptions, eventually, type StoreFactory, seeded } from './context.js'

/**
 * The one suite every Store runs: single buckets, edge cases, chains, tiers, CRUD, changes at their moments,
 * limiter names sharing a store, concurrency, model-based properties against an independent reference, and 30 simulated days.
 */
export function describeStoreConformance(
  name: string,
  makeStore: StoreFactory,
  options: ConformanceOptions = {},
): void {
  const runs = options.propertyRuns ?? 60
  const timeout = options.timeoutMs ?? 60_000

  describe(`Store conformance: ${name}`, { timeout }, () => {
    const opened: Store[] = []
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close?.()
    })
    const ctx: SuiteContext = {
      makeStore,
      runs,
      opened,
      async setup(limiterOptions: Omit<LimiterOptions, 'store' | 'clock'> = {}) {
        const clock = manualClock()
        const store = await makeStore(clock)
        opened.push(store)
        const limiter = createLimiter({ ...limiterOptions, store, clock: clock.now, onStoreError: 'closed' })
        return { clock, store, limiter }
      },
      async admitted(limiter: Limiter, subject: Parameters<Limiter['check']>[0], attempts: number, cost = 1) {
        let count = 0
        for (let i = 0; i < attempts; i++) if ((await limiter.check(subject, { cost })).allowed) count++
        return count
      },
    }
    describeOneBucket(ctx)
    describeChainsAndTiers(ctx)
    describeAdministration(ctx)
    describeChanges(ctx)
    describeNames(ctx)
    describeBlocking(ctx)
    describeProperties(ctx)
    describeThirtyDays(ctx)
  })
}
