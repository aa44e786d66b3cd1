import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { describe, expect, it } from 'vitest'
import { ErrorCode, ipKey } from './internals.js'

describe('ipKey', () => {
  it('keeps IPv4 and maps IPv4-mapped IPv6 onto it', () => {
    expect(ipKey('1.2.3.4')).toBe('1.2.3.4')
    expect(ipKey('::ffff:1.2.3.4')).toBe('1.2.3.4')
    expect(ipKey('::FFFF:102:304')).toBe('1.2.3.4')
  })
  it('keys IPv6 by its /56 (or the prefix given)', () => {
    expect(ipKey('2001:db8:abcd:12ff:1:2:3:4')).toBe('2001:db8:abcd:1200::/56')
    expect(ipKey('2001:db8:abcd:1234::9')).toBe(ipKey('2001:db8:abcd:12ab::1'))
    expect(ipKey('2001:db8:abcd:1334::9')).not.toBe(ipKey('2001:db8:abcd:1234::9'))
    expect(ipKey('2001:db8:abcd:12ff:1:2:3:4', 64)).toBe('2001:db8:abcd:12ff::/64')
    expect(ipKey('[2001:db8::1]', false)).toBe('2001:db8:0:0:0:0:0:1')
  })
  it('passes an unparseable address through as its own key', () => {
    expect(ipKey('not-an-ip')).toBe('not-an-ip')
  })
  it('rejects a bad prefix length', () => {
    expect(() => ipKey('::1', 0)).toThrowError(
      expect.objectContaining({ code: ErrorCode.InvalidOption, field: 'ipv6Subnet' }),
    )
    expect(() => ipKey('::1', 129)).toThrowError(expect.objectContaining({ code: ErrorCode.InvalidOption }))
  })
  it('gives the same key on its fast paths as a full parse does', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.constantFrom('', '::ffff:', '::FFFF:'),
        fc.integer({ min: 1, max: 128 }),
        (v4, prefix, subnet) => {
          expect(ipKey(prefix + v4, subnet)).toBe(ipaddr.process(prefix + v4).toString())
        },
      ),
      { numRuns: 2000 },
    )
    fc.assert(
      fc.property(fc.ipV6(), (v6) => {
        expect(ipKey(v6)).toBe(ipKey(v6)) // memoised answer equals the first
        expect(ipKey(v6, 128)).toBe(
          ipaddr.process(v6).kind() === 'ipv4'
            ? ipaddr.process(v6).toString()
            : ipaddr.process(v6).toNormalizedString(),
        )
      }),
      { numRuns: 2000 },
    )
  })
})
