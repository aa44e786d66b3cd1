import ipaddr from 'ipaddr.js'
import { ErrorCode, invalid } from './errors.js'

/**
 * The rate-limit key of a client address: IPv4 as is; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as its IPv4
 * (else a client doubles its budget by switching forms, CVE-2026-30827); IPv6 by its /`ipv6Subnet` prefix
 * (default 56: one host owns at least a /64 and rotates addresses inside it at will). `false` keys each
 * IPv6 address alone. An unparseable address is returned as given, so it still gets a bucket of its own.
 */
export function ipKey(ip: string, ipv6Subnet: number | false = 56): string {
  if (ipv6Subnet !== false && (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128)) {
    throw invalid(ErrorCode.InvalidOption, 'ipv6Subnet', ipv6Subnet, 'a whole number from 1 to 128, or false')
  }
  // Fast paths for the common forms (parsing costs microseconds on every request): plain IPv4, and IPv4
  // mapped into IPv6 as a server listening on '::' sees it. Anything else goes through ipaddr.js, memoised.
  // Stryker disable next-line ConditionalExpression: a fast path: skipped, the full parse gives the same key (the property tests pin that)
  if (ipv4.test(ip)) return ip
  // Stryker disable next-line all: a fast path: a mapped address it misses goes to the full parse, which maps it to the same IPv4 (the property tests pin that)
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && ipv4.test(ip.slice(7)))
    return ip.slice(7)
  // Stryker disable next-line all: only keeps long text out of the memo; the key is the same either way
  if (ip.length > 64) return parseKey(ip, ipv6Subnet)
  const memoKey = `${ipv6Subnet}|${ip}`
  const known = memo.get(memoKey)
  // Stryker disable next-line ConditionalExpression: a memo: recomputing gives the same key
  if (known !== undefined) return known
  const key = parseKey(ip, ipv6Subnet)
  // Stryker disable next-line ConditionalExpression,EqualityOperator: the memo's bound changes memory only, never a key
  if (memo.size >= 10_000) memo.clear()
  memo.set(memoKey, key)
  return key
}

/** Dotted-quad IPv4 without leading zeros (those go to ipaddr.js, which reads them its own way). */
const ipv4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const memo = new Map<string, string>()

function parseKey(ip: string, ipv6Subnet: number | false): string {
  const text = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip
  if (!ipaddr.isValid(text)) return ip
  const address = ipaddr.process(text)
  if (address.kind() === 'ipv4') return address.toString()
  if (ipv6Subnet === false || ipv6Subnet === 128) return address.toNormalizedString()
  const bytes = address.toByteArray()
  for (let bit = ipv6Subnet; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7))
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Subnet}`
}
