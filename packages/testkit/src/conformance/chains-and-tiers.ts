import { ErrorCode } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { expectCode, perSecond, type SuiteContext } from './context.js'

export function describeChainsAndTiers(ctx: SuiteContext): void {
  const { setup, admitted } = ctx
  describe('chains', () => {
    const chain = {
      levels: ['user', 'org', 'global'] as const,
      policies: {
        user: perSecond(5, 5),
        org: perSecond(8, 8),
        global: perSecond(100, 100),
      },
    }

    it('charges every level or none, and names the level that bound', async () => {
      const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
      expect(await admitted(limiter, { user: 'alice', org: 'acme' }, 5)).toBe(5)
      const refusedByUser = await limiter.check({ user: 'alice', org: 'acme' })
      expect(refusedByUser).toMatchObject({ allowed: false, binding: 'user' })
      // dave shares the org: 3 left there
      expect(await admitted(limiter, { user: 'dave', org: 'acme' }, 5)).toBe(3)
      const refusedByOrg = await limiter.check({ user: 'dave', org: 'acme' })
      expect(refusedByOrg.binding).toBe('org')
      expect(refusedByOrg.levels.map((l) => [l.level, l.allowed, l.remaining])).toEqual([
        ['user', true, 2],
        ['org', false, 0],
        ['global', true, 92],
      ])
      // nothing was charged by the refusals: user dave still has 2, global still 92
      const peek = await limiter.check({ user: 'dave', org: 'other' }, { cost: 0 })
      expect(peek.levels.map((l) => l.remaining)).toEqual([2, 8, 92])
    })

    it('skips a level the subject has no key for, and keys a level named global by itself', async () => {
      const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
      const d = await limiter.check({ user: 'solo' })
      expect(d.levels.map((l) => `${l.level}=${l.key}`)).toEqual(['user=solo', 'global=global'])
    })

    it('refuses unknown levels and non-string keys in a subject', async () => {
      const { limiter } = await setup({ levels: [...chain.levels], policies: chain.policies })
      await expectCode(limiter.check({ usr: 'x' }), ErrorCode.UnknownLevel)
      // A typo beside a level's key is refused too and charges nothing (4 of 5 left after the next check); a
      // level given as undefined is no typo.
      await expectCode(limiter.check({ user: 'typo', usr: 'x' }), ErrorCode.UnknownLevel)
      expect((await limiter.check({ user: 'typo', org: undefined })).levels[0]).toMatchObject({
        key: 'typo',
        remaining: 4,
      })
      await expectCode(limiter.check({ user: 7 as unknown as string }), ErrorCode.InvalidKey)
      await expectCode(limiter.check({ user: '' }), ErrorCode.InvalidKey)
      await expectCode(limiter.check(42 as unknown as string), ErrorCode.InvalidSubject)
    })
  })

  describe('tiers and the registry', () => {
    const tiers = {
      free: { user: perSecond(10, 10) },
      premium: { user: perSecond(100, 100) },
      enterprise: { user: perSecond(1000, 1000) },
    }
    // A chain's tiers give every level a policy; an org's is ten of its users', so the user level binds here.
    const chainTiers = {
      free: { ...tiers.free, org: perSecond(100, 100) },
      premium: { ...tiers.premium, org: perSecond(1000, 1000) },
      enterprise: { ...tiers.enterprise, org: perSecond(10_000, 10_000) },
    }

    it('uses the default tier, assignments at any level, and a forced tier', async () => {
      const { limiter } = await setup({ levels: ['user', 'org'], tiers: chainTiers, defaultTier: 'free' })
      expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({ tier: 'free', limit: 10 })
      await limiter.setTier({ level: 'org', key: 'acme' }, 'premium')
      expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({
        tier: 'premium',
        limit: 100,
      })
      await limiter.setTier({ level: 'user', key: 'u1' }, 'enterprise')
      expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({
        tier: 'enterprise',
        limit: 1000,
      })
      expect(await limiter.check({ user: 'u1', org: 'acme' }, { tier: 'free' })).toMatchObject({
        tier: 'free',
        limit: 10,
      })
      expect(await limiter.getTier({ level: 'org', key: 'acme' })).toBe('premium')
      await limiter.setTier({ level: 'user', key: 'u1' }, null)
      expect(await limiter.check({ user: 'u1', org: 'acme' })).toMatchObject({ tier: 'premium' })
    })

    it('refuses unknown tiers and levels with typed errors', async () => {
      const { limiter } = await setup({ levels: ['user', 'org'], tiers: chainTiers })
      await expectCode(limiter.setTier('u1', 'platinum'), ErrorCode.UnknownTier)
      await expectCode(limiter.check('u1', { tier: 'platinum' }), ErrorCode.UnknownTier)
      await expectCode(limiter.updateLimits('platinum', { user: perSecond(1, 1) }), ErrorCode.UnknownTier)
      await expectCode(limiter.updateLimits('free', { team: perSecond(1, 1) }), ErrorCode.UnknownLevel)
      await expectCode(
        limiter.updateLimits('free', { user: { capacity: -1, refill: 1 } }),
        ErrorCode.InvalidPolicy,
      )
      await expectCode(limiter.setTier({ level: 'team', key: 'x' }, 'free'), ErrorCode.UnknownLevel)
      expect(await limiter.check('u1')).toMatchObject({ tier: 'free', limit: 10 })
    })

    it('changes a tier at runtime without a free refill, clamping tokens to the new capacity', async () => {
      const { clock, limiter } = await setup({ levels: ['user'], tiers })
      expect(await admitted(limiter, 'u1', 10)).toBe(10)
      await limiter.updateLimits('free', { user: perSecond(50, 50) })
      // exhausted stays exhausted; refills at the new rate
      expect(await limiter.check('u1')).toMatchObject({ allowed: false, limit: 50 })
      clock.advance(20)
      expect(await limiter.check('u1')).toMatchObject({ allowed: true, remaining: 0, limit: 50 })
      // a half-used bucket shrinking keeps at most the new capacity
      expect(await admitted(limiter, 'u2', 3)).toBe(3)
      await limiter.updateLimits('free', { user: perSecond(4, 4) })
      expect(await limiter.check('u2', { cost: 0 })).toMatchObject({ remaining: 4 })
      expect(await admitted(limiter, 'u2', 10)).toBe(4)
      // an idle, full bucket takes the new plan whole
      await limiter.updateLimits('free', { user: perSecond(20, 20) })
      expect(await limiter.check('fresh', { cost: 0 })).toMatchObject({ remaining: 20 })
    })

    it('keeps history when a tenant moves between tiers', async () => {
      const { limiter } = await setup({ levels: ['user'], tiers })
      expect(await admitted(limiter, 'u1', 8)).toBe(8)
      await limiter.setTier('u1', 'premium')
      // 2 tokens were left; moving up grants no refill beyond them
      expect(await limiter.check('u1', { cost: 0 })).toMatchObject({ remaining: 2, limit: 100 })
    })
  })
}
