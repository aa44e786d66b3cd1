import { describe, expect, it } from 'vitest'
import { perSecond, type SuiteContext } from './context.js'

export function describeChanges(ctx: SuiteContext): void {
  const { setup, admitted } = ctx
  describe('when a change takes effect', () => {
    const tiers = {
      free: { user: perSecond(10, 10) },
      premium: { user: perSecond(100, 100) },
    }
    // A chain's tiers give every level a policy; an org's is ten of its users', so the user level binds.
    const chainTiers = {
      free: { ...tiers.free, org: perSecond(100, 100) },
      premium: { ...tiers.premium, org: perSecond(1000, 1000) },
    }

    it('moves an exhausted org to premium at that moment, however late the next request', async () => {
      const { clock, limiter } = await setup({
        levels: ['user', 'org'],
        tiers: chainTiers,
        defaultTier: 'free',
      })
      const subject = { user: 'u1', org: 'acme' }
      expect(await admitted(limiter, subject, 10)).toBe(10)
      await limiter.setTier({ level: 'org', key: 'acme' }, 'premium')
      clock.advance(400)
      // 400 ms at premium's 100/s: 40 tokens, not the 4 free's rate would give.
      expect(await admitted(limiter, subject, 100)).toBe(40)
    })

    it('applies several changes between two touches each at its own moment', async () => {
      const { clock, limiter } = await setup({ levels: ['user'], policy: perSecond(30, 10) })
      expect(await admitted(limiter, 'u1', 30)).toBe(30)
      await limiter.createBucket({ level: 'user', key: 'u1' }, perSecond(100, 100)) // 0 of 100
      clock.advance(100) // +10 at 100/s
      await limiter.updateBucket({ level: 'user', key: 'u1' }, perSecond(50, 5)) // 10 of 50
      clock.advance(1000) // +5 at 5/s
      await limiter.deleteBucket({ level: 'user', key: 'u1' }) // back to 30 at 10/s, 15 held
      clock.advance(200) // +2
      expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 17, limit: 30 })
      expect(await admitted(limiter, 'u1', 40)).toBe(17)
    })

    it('applies a tier limit change to a bucket nobody touched since', async () => {
      const { clock, limiter } = await setup({ levels: ['user'], tiers })
      expect(await admitted(limiter, 'u1', 10)).toBe(10)
      await limiter.updateLimits('free', { user: perSecond(50, 50) })
      clock.advance(7 * 86_400_000) // a week later the bucket is full at the new capacity
      expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 50, limit: 50 })
      expect(await admitted(limiter, 'u2', 3)).toBe(3)
      await limiter.updateLimits('free', { user: perSecond(4, 1) })
      clock.advance(1000)
      expect(await limiter.check('u2', { cost: 0 })).toMatchObject({ remaining: 4, limit: 4 })
    })

    it('reads write nothing: getBucket and peeks leave every later decision as it was', async () => {
      const { clock, limiter } = await setup({ levels: ['user'], tiers })
      expect(await admitted(limiter, 'u1', 6)).toBe(6)
      await limiter.setTier('u1', 'premium')
      clock.advance(30)
      for (let i = 0; i < 5; i++) {
        await limiter.getBucket({ level: 'user', key: 'u1' })
        await limiter.check('u1', { cost: 0 })
        clock.advance(1)
      }
      // 4 left at the change, then 35 ms at 100/s: 3 more (38.5 rounds down).
      expect(await admitted(limiter, 'u1', 20)).toBe(7)
    })
  })
}
