import type { HeaderPair } from '@tollgate/core'

/** RFC 9651 §3.3.1: at most 15 digits, and tollgate's figures are never negative. */
const sfNonNegativeInteger = /^(0|[1-9]\d{0,14})$/
/** RFC 9651 §3.3.3: printable ASCII, with `"` and `\` escaped. */
const sfString = /^"(?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"$/
const sfKey = /^[a-z*][a-z0-9_\-.*]*$/
const delaySeconds = /^(0|[1-9]\d*)$/

/**
 * Checks one Structured Field List whose members are Strings with integer parameters, the shape of
 * `RateLimit` and `RateLimit-Policy`; returns the problem or undefined.
 */
function checkNamedList(value: string, required: string, optional: readonly string[]): string | undefined {
  const members = value.split(/, (?=")/)
  for (const member of members) {
    const match = /^("(?:[^"\\]|\\.)*")((?:;[^;]+)*)$/.exec(member)
    if (!match) return `member ${JSON.stringify(member)} is not a String with parameters`
    if (!sfString.test(match[1]!)) return `name ${match[1]} is not a structured-field String`
    const params = match[2]!.split(';').slice(1)
    const seen = new Set<string>()
    for (const param of params) {
      const [key, number, ...rest] = param.split('=')
      if (rest.length || key === undefined || number === undefined || !sfKey.test(key))
        return `parameter ${param} is malformed`
      if (!sfNonNegativeInteger.test(number))
        return `parameter ${key}=${number} is not a non-negative Integer`
      if (key !== required && !optional.includes(key)) return `unexpected parameter ${key}`
      seen.add(key)
    }
    if (!seen.has(required)) return `member ${member} lacks ${required}`
  }
  return undefined
}

/**
 * The problems in a set of rate-limit headers (empty when none): malformed structured fields, NaN,
 * negative or fractional numbers, an empty value, a character that HTTP forbids in a field value.
 */
export function headerProblems(pairs: readonly HeaderPair[]): string[] {
  const problems: string[] = []
  for (const [name, value] of pairs) {
    const fail = (why: string) => problems.push(`${name}: ${JSON.stringify(value)}: ${why}`)
    if (value.length === 0 || /[^\x20-\x7e]/.test(value)) {
      fail('empty or not visible ASCII')
      continue
    }
    if (/NaN|Infinity|-\d|\d\.\d/.test(value.replace(/"(?:[^"\\]|\\.)*"/g, '""')))
      fail('NaN, infinite, negative or fractional')
    const problem = (() => {
      switch (name) {
        case 'RateLimit-Policy':
          // draft-7/draft-6 form `10;w=1` or the named list of draft-8/ietf
          if (value.startsWith('"')) return checkNamedList(value, 'q', ['w'])
          return /^(0|[1-9]\d{0,14})(;w=(0|[1-9]\d{0,14}))?$/.test(value)
            ? undefined
            : 'malformed short policy'
        case 'RateLimit':
          if (value.startsWith('"')) return checkNamedList(value, 'r', ['t'])
          return /^limit=\d+, remaining=\d+(, reset=\d+)?$/.test(value)
            ? undefined
            : 'malformed draft-7 RateLimit'
        case 'RateLimit-Limit':
        case 'RateLimit-Remaining':
        case 'RateLimit-Reset':
        case 'X-RateLimit-Limit':
        case 'X-RateLimit-Remaining':
        case 'X-RateLimit-Reset':
          return sfNonNegativeInteger.test(value) ? undefined : 'not a non-negative integer'
        case 'Retry-After':
          return delaySeconds.test(value) && value !== '0' ? undefined : 'not delay-seconds ≥ 1'
        default:
          return `unexpected header`
      }
    })()
    if (problem) fail(problem)
  }
  return problems
}
