import { describe, expect, it } from 'vitest'
import {
  createHttpGate,
  createLimiter,
  ErrorCode,
  TollgateError,
  UNEXPECTED_FORWARDED_FOR,
} from './internals.js'

const client = { ip: '10.0.0.1', untrustedForwardedFor: false }

describe('createHttpGate', () => {
  it('passes with headers, then refuses with a problem body', async () => {
    const gate = createHttpGate<{ path: string }>({
      limiter: createLimiter({ policy: { capacity: 1, refill: 1 } }),
    })
    const pass = await gate({ path: '/' }, client)
    expect(pass).toMatchObject({ action: 'pass', delayMs: 0 })
    const refuse = await gate({ path: '/' }, client)
    expect(refuse).toMatchObject({ action: 'refuse', status: 429, contentType: 'application/problem+json' })
    if (refuse.action !== 'refuse') throw new Error('unreachable')
    expect(refuse.headers).toContainEqual(['Retry-After', '1'])
  })

  it('keys by the client address, IPv6 by /56, and takes subject, cost, tier and skip from the request', async () => {
    const limiter = createLimiter({
      levels: ['user'],
      tiers: { free: { user: { capacity: 2, refill: 1 } }, pro: { user: { capacity: 9, refill: 1 } } },
    })
    const gate = createHttpGate<{ user?: string; heavy?: boolean; pro?: boolean; health?: boolean }>({
      limiter,
      subject: (req) => (req.user ? { user: req.user } : undefined),
      cost: (req) => (req.heavy ? 2 : 1),
      tier: (req) => (req.pro ? 'pro' : undefined),
      skip: (req) => req.health === true,
    })
    expect(await gate({ health: true }, client)).toEqual({ action: 'skip' })
    expect(await gate({ user: 'u', heavy: true }, client)).toMatchObject({
      action: 'pass',
      decision: { remaining: 0 },
    })
    expect(await gate({ user: 'p', pro: true }, client)).toMatchObject({
      action: 'pass',
      decision: { tier: 'pro', remaining: 8 },
    })
    const v6a = await gate({}, { ip: '2001:db8:1:100::1', untrustedForwardedFor: false })
    const v6b = await gate({}, { ip: '2001:db8:1:1ff::2', untrustedForwardedFor: false })
    expect(v6a.action === 'pass' && v6a.decision.levels[0]!.key).toBe('2001:db8:1:100::/56')
    expect(v6b).toMatchObject({ action: 'pass', decision: { remaining: 0 } })
  })

  it('warns once about X-Forwarded-For while the framework does not trust proxies', async () => {
    const warnings: string[] = []
    const gate = createHttpGate({ onWarning: (w) => warnings.push(w.code) })
    await gate({}, { ip: '10.0.0.2', untrustedForwardedFor: true })
    await gate({}, { ip: '10.0.0.2', untrustedForwardedFor: true })
    expect(warnings).toEqual([UNEXPECTED_FORWARDED_FOR])
  })

  it('rejects bad options at once, naming them', () => {
    for (const [options, field] of [
      [{ cost: -1 }, 'cost'],
      [{ cost: 'lots' }, 'cost'],
      [{ tier: 5 }, 'tier'],
      [{ skip: true }, 'skip'],
      [{ headers: 'draft-1' }, 'headers'],
      [{ ipv6Subnet: 200 }, 'ipv6Subnet'],
    ] as const) {
      try {
        createHttpGate(options as never)
        expect.unreachable(field)
      } catch (error) {
        expect(error).toBeInstanceOf(TollgateError)
        expect((error as TollgateError).field).toBe(field)
      }
    }
  })

  it('surfaces a bad per-request cost as a TollgateError', async () => {
    const gate = createHttpGate<{ n: number }>({ cost: (req) => req.n })
    await expect(gate({ n: -3 }, client)).rejects.toMatchObject({ code: ErrorCode.InvalidCost })
  })
})
