import { ErrorCode, invalid } from './errors.js'

/** Milliseconds as a number, or a string such as `'1s'`, `'500ms'`, `'1.5m'`, `'1h'`, `'1d'`. */
export type Duration = number | `${number}${DurationUnit}`
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd'

const unitMs: Record<DurationUnit, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const durationPattern = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*$/

/** Reads a duration into milliseconds (possibly fractional). Throws ERR_TOLLGATE_INVALID_DURATION. */
export function parseDuration(value: unknown, field = 'duration'): number {
  let ms: number
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string') {
    const match = durationPattern.exec(value)
    if (!match)
      throw invalid(
        ErrorCode.InvalidDuration,
        field,
        value,
        "a number of ms or a string like '1s', '500ms', '1m', '1h', '1d'",
      )
    ms = Number(match[1]) * unitMs[match[2] as DurationUnit]
  } else {
    throw invalid(
      ErrorCode.InvalidDuration,
      field,
      value,
      "a number of ms or a string like '1s', '500ms', '1m', '1h', '1d'",
    )
  }
  if (!Number.isFinite(ms) || ms <= 0)
    throw invalid(ErrorCode.InvalidDuration, field, value, 'a positive, finite duration')
  return ms
}
