import { ErrorCode } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { expectCode, perSecond, type SuiteContext } from './context.js'

export function describeAdministration(ctx: SuiteContext): void {
  const { setup, admitted } = ctx
  describe('bucket administration', () => {
    it('creates, reads, updates and deletes per-tenant buckets with typed errors', async () => {
      const { limiter } = await setup({ levels: ['user'], policy: perSecond(10, 10) })
      await limiter.createBucket({ level: 'user', key: 'vip' }, perSecond(3, 1))
      await expectCode(
        limiter.createBucket({ level: 'user', key: 'vip' }, perSecond(3, 1)),
        ErrorCode.BucketExists,
      )
      expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
        custom: true,
        limit: 3,
        remaining: 3,
      })
      expect(await admitted(limiter, 'vip', 5)).toBe(3)
      await limiter.updateBucket({ level: 'user', key: 'vip' }, perSecond(6, 1))
      expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
        limit: 6,
        remaining: 0,
      })
      await limiter.deleteBucket({ level: 'user', key: 'vip' })
      // Back on the level's policy from that moment, with the tokens it held (none): no free refill.
      expect(await limiter.getBucket({ level: 'user', key: 'vip' })).toMatchObject({
        custom: false,
        limit: 10,
        remaining: 0,
      })
      await expectCode(limiter.deleteBucket({ level: 'user', key: 'vip' }), ErrorCode.UnknownBucket)
      await expectCode(
        limiter.updateBucket({ level: 'user', key: 'nobody' }, perSecond(1, 1)),
        ErrorCode.UnknownBucket,
      )
      await expectCode(
        limiter.createBucket({ level: 'team', key: 'x' }, perSecond(1, 1)),
        ErrorCode.UnknownLevel,
      )
      const bad = await expectCode(
        limiter.createBucket(
          { level: 'user', key: 'y' },
          { capacity: 2, refill: { tokens: 1, per: 'soon' as '1s' } },
        ),
        ErrorCode.InvalidPolicy,
      )
      expect(bad.field).toBe('policy.refill.per')
      await expectCode(
        limiter
          .getBucket({ level: 'user', key: 'y' })
          .then(() => limiter.updateBucket({ level: 'user', key: 'y' }, perSecond(1, 1))),
        ErrorCode.UnknownBucket,
      )
    })
  })
}
