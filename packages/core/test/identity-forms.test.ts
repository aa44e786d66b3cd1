import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { describe, expect, it } from 'vitest'
import { ErrorCode, ipKey, TollgateError } from './internals.js'

/** What the full parse says dotted (or IPv4-mapped) text is: its IPv4, the text when invalid; undefined for IPv6. */
function parsed(text: string): string | undefined {
  if (!ipaddr.isValid(text)) return text
  const address = ipaddr.process(text)
  return address.kind() === 'ipv4' ? address.toString() : undefined
}

describe('ipKey on the forms its fast paths must not take', () => {
  it('reads leading zeros as the full parse does (octal), in any octet', () => {
    expect(ipKey('01.2.3.4')).toBe('1.2.3.4')
    expect(ipKey('1.2.3.04')).toBe('1.2.3.4')
    expect(ipKey('010.1.1.1')).toBe('8.1.1.1')
  })

  it('reads the short IPv4 forms (two or three parts) as the full parse does', () => {
    expect(ipKey('1.2')).toBe('1.0.0.2')
    expect(ipKey('1.2.3')).toBe('1.2.0.3')
  })

  it('agrees with the full parse on any dotted text made of octet-like parts', () => {
    const part = fc.constantFrom(
      ...[
        '0',
        '00',
        '01',
        '010',
        '08',
        '1',
        '9',
        '19',
        '25',
        '199',
        '200',
        '249',
        '250',
        '255',
        '256',
        '260',
      ],
      ...['2a5', '25a', '24a', '1a1', '1a', 'a', 'x', '0x1f', ''],
    )
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('', '::ffff:'),
        (parts, prefix) => {
          const text = prefix + parts.join('.')
          const expected = parsed(text)
          if (expected !== undefined) expect(ipKey(text)).toBe(expected)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('strips brackets only when both are there', () => {
    expect(ipKey('[2001:db8::1]')).toBe('2001:db8::/56')
    expect(ipKey('[2001:db8::1')).toBe('[2001:db8::1')
    expect(ipKey('x2001:db8::1]')).toBe('x2001:db8::1]')
    expect(ipKey('[2001:db8::12')).toBe('[2001:db8::12')
  })

  it('clears the host bits inside a partial byte of the prefix', () => {
    expect(ipKey('2001:db8:abcd:12ff::1', 60)).toBe('2001:db8:abcd:12f0::/60')
    expect(ipKey('2001:db8:abcd:12ff::1', 57)).toBe('2001:db8:abcd:1280::/57')
  })

  it('says what prefix lengths it takes', () => {
    try {
      ipKey('::1', 1.5)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(TollgateError)
      expect(error).toMatchObject({ code: ErrorCode.InvalidOption, field: 'ipv6Subnet' })
      expect((error as Error).message).toContain('a whole number from 1 to 128, or false')
    }
  })
})
