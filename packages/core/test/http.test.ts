import { describe, expect, it } from 'vitest'
import { HttpWarningCode } from '../src/entries/http.js'
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

  it('returns a bad per-request cost, key or subject as a 400 problem outcome, not a throw', async () => {
    const gate = createHttpGate<{ n: number; key?: string }>({
      identify: (req) => ({ subject: req.key, cost: req.n }),
    })
    expect(await gate({ n: -3 }, client)).toMatchObject({
      action: 'refuse',
      decision: undefined,
      status: 400,
      contentType: 'application/problem+json',
      body: { status: 400, field: 'cost', code: ErrorCode.InvalidCost },
    })
    expect(await gate({ n: 1, key: '' }, client)).toMatchObject({
      status: 400,
      body: { code: ErrorCode.InvalidKey },
    })
  })

  it("refuses unknown options, naming express-rate-limit's and @fastify/rate-limit's equivalents", () => {
    expect(() => createHttpGate({ windowMs: 1000 } as never)).toThrow(/Unknown option windowMs: .*per/)
    expect(() => createHttpGate({ timeWindow: 1000 } as never)).toThrow(/per/)
    expect(() => createHttpGate({ nope: 1 } as never)).toThrow(
      /Unknown option "nope"; the options are limiter/,
    )
    expect(() => createHttpGate({ handler: () => {} } as never)).toThrow(TollgateError)
    expect(() =>
      createHttpGate({ handler: () => {} } as never, { adapterOptions: ['handler'] }),
    ).not.toThrow()
  })

  it('builds a limiter from { limit, per } and refuses it beside a limiter', async () => {
    const gate = createHttpGate({ limit: 2, per: '1h' })
    expect(await gate({}, client)).toMatchObject({ action: 'pass', decision: { limit: 2, remaining: 1 } })
    expect(() => createHttpGate({ limit: 2, limiter: createLimiter() })).toThrow(/limit must be left out/)
    expect(() => createHttpGate({ limit: 0 })).toThrow(/limit must be a whole number/)
    expect(() => createHttpGate({ per: '1m' })).toThrow(/limit must be given with per/)
    expect(() => createHttpGate({ limit: 3, per: 'soon' as never })).toThrow(TollgateError)
  })

  it('matches an allowList by address, CIDR (IPv4-mapped included) and key', async () => {
    const gate = createHttpGate<{ key?: string }>({
      limit: 1,
      allowList: ['10.0.0.0/8', '::ffff:192.0.2.0/120', '2001:db8::/32', 'vip'],
      subject: (req) => req.key,
    })
    for (const ip of ['10.9.9.9', '192.0.2.77', '::ffff:10.0.0.1', '2001:db8:1::1'])
      expect(await gate({}, { ip, untrustedForwardedFor: false })).toEqual({ action: 'skip' })
    expect(await gate({ key: 'vip' }, { ip: '198.51.100.1', untrustedForwardedFor: false })).toEqual({
      action: 'skip',
    })
    expect((await gate({}, { ip: '198.51.100.1', untrustedForwardedFor: false })).action).toBe('pass')
    expect(() => createHttpGate({ allowList: '10.0.0.0/8' as never })).toThrow(/allowList must be an array/)
    expect(() => createHttpGate({ allowList: [''] })).toThrow(/allowList\[0\]/)
  })

  it('settles refunds by status; a throwing refundWhen is reported and refunds nothing', async () => {
    const warnings: string[] = []
    const limiter = createLimiter({ policy: { capacity: 2, refill: 1 } })
    const gate = createHttpGate({
      limiter,
      refundWhen: (status) => {
        if (status === 418) throw new Error('teapot')
        return status === 304
      },
      onWarning: (w) => warnings.push(w.code),
    })
    const first = await gate({}, client)
    const second = await gate({}, client)
    if (first.action !== 'pass' || second.action !== 'pass') throw new Error('unreachable')
    first.settle!(418)
    second.settle!(304)
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(warnings).toEqual([HttpWarningCode.HookFailed])
    // Only the 304's token came back.
    expect((await limiter.check(client.ip, { cost: 0 })).remaining).toBe(1)
    const noRules = await createHttpGate({ limiter })({}, client)
    expect(noRules).toMatchObject({ action: 'pass', settle: undefined, abandon: undefined })
  })

  it('refuses at creation a tier the limiter does not have', () => {
    const tiered = createLimiter({ tiers: { free: { key: { capacity: 1, refill: 1 } } } })
    expect(() => createHttpGate({ limiter: tiered, tier: 'gold' })).toThrow(/"gold" cannot work.*"free"/)
    expect(() => createHttpGate({ tier: () => 'free' })).toThrow(/defines no tiers/)
    expect(() => createHttpGate({ limiter: tiered, tier: 'free' })).not.toThrow()
  })
})
