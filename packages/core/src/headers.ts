import type { Decision, LevelDecision } from './decision.js'
import { ErrorCode, invalid } from './errors.js'
import { windowSeconds } from './policy.js'

/**
 * Header forms:
 * - `ietf`: draft-ietf-httpapi-ratelimit-headers-11 structured fields, one named policy per chain level:
 *   `RateLimit-Policy: "user";q=10;w=1, "org";q=50;w=1` and `RateLimit: "user";r=9;t=1, "org";r=49;t=1`.
 * - `draft-8`: the same shape, as express-rate-limit's `draft-8` users know it.
 * - `draft-7`: `RateLimit-Policy: 10;w=1` and `RateLimit: limit=10, remaining=9, reset=1` (binding level).
 * - `draft-6`: `RateLimit-Policy` with `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (binding level).
 * - `legacy`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds).
 * `Retry-After` (delay-seconds, rounded up) is added on every refusal that can ever pass.
 * Every number is a non-negative integer: remaining rounds down, times round up.
 */
export type HeaderFormat = 'ietf' | 'draft-8' | 'draft-7' | 'draft-6' | 'legacy'
export const HEADER_FORMATS: readonly HeaderFormat[] = ['ietf', 'draft-8', 'draft-7', 'draft-6', 'legacy']

export type HeaderPair = [name: string, value: string]

/** Validates a `headers` option: a format, a list of formats, or false. */
export function headerFormats(option: unknown, field = 'headers'): HeaderFormat[] {
  if (option === false) return []
  if (option === undefined || option === true) return ['ietf']
  const list = Array.isArray(option) ? option : [option]
  for (const format of list) {
    if (!HEADER_FORMATS.includes(format as HeaderFormat)) {
      throw invalid(
        ErrorCode.InvalidOption,
        field,
        format,
        `one of ${HEADER_FORMATS.map((f) => `'${f}'`).join(', ')} or false`,
      )
    }
  }
  const formats = [...new Set(list as HeaderFormat[])]
  // ietf/draft-8, draft-7 and draft-6 all write RateLimit-Policy (and some RateLimit): only one can be sent.
  const rateLimitForms = new Set(
    formats.filter((f) => f !== 'legacy').map((f) => (f === 'draft-8' ? 'ietf' : f)),
  )
  if (rateLimitForms.size > 1) {
    throw invalid(
      ErrorCode.InvalidOption,
      field,
      option,
      "at most one of 'ietf' (or 'draft-8'), 'draft-7', 'draft-6', plus 'legacy'",
    )
  }
  return formats
}

/** Structured-field Integers have at most 15 digits; nothing tollgate sends may be longer (or in exponent form). */
const maxHeaderInteger = 999_999_999_999_999
// Stryker disable next-line EqualityOperator: at ms = 0 both branches give 0
const seconds = (ms: number): number => (ms <= 0 ? 0 : Math.min(Math.ceil(ms / 1000), maxHeaderInteger))

/** A structured-field String: printable ASCII with `"` and `\` escaped; anything else becomes `?`. */
function sfString(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/** ms until one token is back at a level that has none left (its effective window when r = 0). */
function emptyWindowMs(level: LevelDecision): number {
  const { policy } = level
  // Stryker disable next-line ConditionalExpression: without it a rate-0 level gives NaN, which is not finite either, so t is left out the same way
  if (policy.tokens === 0) return Number.POSITIVE_INFINITY
  const untilOne = level.resetAfterMs - ((policy.capacity - 1) * policy.per) / policy.tokens
  return Math.max(level.retryAfterMs, untilOne, 0)
}

/** `t` of the RateLimit field: for an exhausted level the seconds until it serves again, else until it is full. */
function effectiveWindowSeconds(level: LevelDecision): number | undefined {
  const ms = level.remaining === 0 ? emptyWindowMs(level) : level.resetAfterMs
  return Number.isFinite(ms) ? seconds(ms) : undefined
}

// Level names and policies come from the limiter's configuration: their header text is built once, not per request.
const quotedNames = new Map<string, string>()
function quotedName(name: string): string {
  let quoted = quotedNames.get(name)
  if (quoted === undefined) {
    quoted = sfString(name)
    // Stryker disable next-line all: the bound changes memory only, never a header
    if (quotedNames.size >= 10_000) quotedNames.clear()
    quotedNames.set(name, quoted)
  }
  return quoted
}

interface PolicyText {
  readonly level: string
  readonly limit: number
  readonly item: string
}
const policyTexts = new WeakMap<object, PolicyText>()
function policyItem(level: LevelDecision): string {
  const known = policyTexts.get(level.policy)
  if (known !== undefined && known.level === level.level && known.limit === level.limit) return known.item
  const w = windowSeconds(level.policy)
  const item = `${quotedName(level.level)};q=${level.limit}${w === undefined ? '' : `;w=${w}`}`
  policyTexts.set(level.policy, { level: level.level, limit: level.limit, item })
  return item
}

function stateItem(level: LevelDecision): string {
  const t = effectiveWindowSeconds(level)
  return t === undefined
    ? `${quotedName(level.level)};r=${level.remaining}`
    : `${quotedName(level.level)};r=${level.remaining};t=${t}`
}

function bindingLevel(decision: Decision): LevelDecision {
  const levels = decision.levels
  for (let i = 0; i < levels.length; i++) if (levels[i]!.level === decision.binding) return levels[i]!
  return levels[0]!
}

/** The older forms' figures, from the binding level. */
function bindingFigures(decision: Decision) {
  const binding = bindingLevel(decision)
  const w = windowSeconds(binding.policy)
  return {
    binding,
    policyShort: `${binding.limit}${w === undefined ? '' : `;w=${w}`}`,
    reset: effectiveWindowSeconds(binding),
  }
}

/** The headers for a decision: one format (`'ietf'`), several in the order given, or false (Retry-After only). */
export function rateLimitHeaders(
  decision: Decision,
  format: HeaderFormat | readonly HeaderFormat[] | false = ['ietf'],
): HeaderPair[] {
  const formats = Array.isArray(format) ? (format as readonly HeaderFormat[]) : headerFormats(format)
  const pairs: HeaderPair[] = []
  const levels = decision.levels
  if (levels.length > 0) {
    let figures: ReturnType<typeof bindingFigures> | undefined
    let named = false
    for (const format of formats) {
      switch (format) {
        case 'ietf':
        case 'draft-8': {
          if (named) break
          named = true
          let policy = policyItem(levels[0]!)
          let state = stateItem(levels[0]!)
          for (let i = 1; i < levels.length; i++) {
            policy += `, ${policyItem(levels[i]!)}`
            state += `, ${stateItem(levels[i]!)}`
          }
          pairs.push(['RateLimit-Policy', policy], ['RateLimit', state])
          break
        }
        case 'draft-7': {
          figures ??= bindingFigures(decision)
          const { binding, reset } = figures
          pairs.push(['RateLimit-Policy', figures.policyShort])
          pairs.push([
            'RateLimit',
            `limit=${binding.limit}, remaining=${binding.remaining}${reset === undefined ? '' : `, reset=${reset}`}`,
          ])
          break
        }
        case 'draft-6': {
          figures ??= bindingFigures(decision)
          const { binding, reset } = figures
          pairs.push(['RateLimit-Policy', figures.policyShort])
          pairs.push(['RateLimit-Limit', String(binding.limit)])
          pairs.push(['RateLimit-Remaining', String(binding.remaining)])
          if (reset !== undefined) pairs.push(['RateLimit-Reset', String(reset)])
          break
        }
        case 'legacy': {
          figures ??= bindingFigures(decision)
          const { binding } = figures
          pairs.push(['X-RateLimit-Limit', String(binding.limit)])
          pairs.push(['X-RateLimit-Remaining', String(binding.remaining)])
          if (Number.isFinite(binding.resetAfterMs)) {
            pairs.push(['X-RateLimit-Reset', String(Math.ceil((decision.now + binding.resetAfterMs) / 1000))])
          }
          break
        }
      }
    }
  }
  if (!decision.allowed) {
    const retryAfter = retryAfterSeconds(decision)
    if (retryAfter !== undefined) pairs.push(['Retry-After', String(retryAfter)])
  }
  return pairs
}

/** Retry-After in whole seconds (at least 1) for a refusal that can pass later; undefined otherwise. */
export function retryAfterSeconds(decision: Decision): number | undefined {
  if (decision.allowed || !Number.isFinite(decision.retryAfterMs)) return undefined
  return Math.max(1, seconds(decision.retryAfterMs))
}
