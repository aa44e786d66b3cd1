import { createLimiter, ErrorCode, type Store } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import type { ManualClock } from '../clock.js'
import { expectCode, perSecond, type SuiteContext } from './context.js'

/** Limiters sharing one store: each name is a namespace of its own, and one name is one limiter. */
export function describeNames(ctx: SuiteContext): void {
  const { setup, admitted } = ctx
  describe('limiter names', () => {
    const perIpTiers = { free: { key: perSecond(3, 1) }, pro: { key: perSecond(5, 1) } }
    const exportTiers = { free: { key: perSecond(1, 1) }, pro: { key: perSecond(2, 1) } }
    /** The app's second limiter, for /export, named apart from the per-IP one. */
    const exportLimiter = (store: Store, clock: ManualClock) =>
      createLimiter({ store, clock: clock.now, name: 'export', tiers: exportTiers, onStoreError: 'closed' })

    it('keeps two limiters on the default level apart: buckets, assignments, custom buckets, tiers', async () => {
      // The per-IP limiter and the /export one of an app, both on the default level `key`, one client.
      const { store, limiter: perIp, clock } = await setup({ tiers: perIpTiers })
      const exporter = exportLimiter(store, clock)
      expect(exporter.name).toBe('export')
      expect(perIp.name).toBe('default')
      expect(await admitted(perIp, '127.0.0.1', 5)).toBe(3)
      expect(await admitted(exporter, '127.0.0.1', 5)).toBe(1)
      expect(await admitted(perIp, '127.0.0.2', 1)).toBe(1)
      expect(await exporter.check('127.0.0.2', { cost: 0 })).toMatchObject({ remaining: 1, limit: 1 })

      await exporter.setTier('127.0.0.1', 'pro')
      expect(await perIp.getTier('127.0.0.1')).toBeUndefined()
      await exporter.createBucket({ level: 'key', key: '10.0.0.1' }, perSecond(9, 9))
      expect(await perIp.getBucket({ level: 'key', key: '10.0.0.1' })).toMatchObject({
        custom: false,
        limit: 3,
      })
      await expectCode(perIp.deleteBucket({ level: 'key', key: '10.0.0.1' }), ErrorCode.UnknownBucket)
      await exporter.updateLimits('free', { key: perSecond(7, 7) })
      expect(await exporter.check('10.9.9.9', { cost: 0 })).toMatchObject({ limit: 7 })
      expect(await perIp.check('10.9.9.9', { cost: 0 })).toMatchObject({ limit: 3 })
      expect(await perIp.check('127.0.0.1', { cost: 0 })).toMatchObject({
        tier: 'free',
        remaining: 0,
        limit: 3,
      })
      await exporter.close()
    })

    it('refuses a second limiter with a name in use on the store, the default one included, until closed', async () => {
      const { store, limiter, clock } = await setup({ tiers: exportTiers })
      const policy = perSecond(10, 10)
      const refused = await expectCode(() => createLimiter({ store, policy }), ErrorCode.DuplicateName)
      expect(refused).toMatchObject({ field: 'name', value: 'default' })
      const exporter = exportLimiter(store, clock)
      const again = await expectCode(
        () => createLimiter({ store, name: 'export', policy }),
        ErrorCode.DuplicateName,
      )
      expect(again).toMatchObject({ field: 'name', value: 'export' })
      expect(await admitted(exporter, 'k', 2)).toBe(1)
      await exporter.setTier('k', 'pro')

      // Closed, its name is free again, and its buckets and entries are where it left them.
      await exporter.close()
      const reopened = exportLimiter(store, clock)
      expect(await reopened.check('k', { cost: 0 })).toMatchObject({ tier: 'pro', remaining: 0, limit: 2 })
      expect(await limiter.check('k', { cost: 0 })).toMatchObject({ tier: 'free', remaining: 1, limit: 1 })
      await reopened.close()
    })
  })
}
