import { describe, expect, it } from 'vitest'
import { ErrorCode, parseDuration } from './internals.js'
import { failure } from './thrown.js'

describe('parseDuration, the whole grammar', () => {
  it('reads decimals with several digits, a leading dot, and spaces around the parts', () => {
    expect(parseDuration('1.25s')).toBe(1250)
    expect(parseDuration('.25s')).toBe(250)
    expect(parseDuration(' 2 m ')).toBe(120_000)
    expect(parseDuration(0.5)).toBe(0.5)
  })

  it('rejects text after the unit', () => {
    expect(failure(() => parseDuration('1sx')).code).toBe(ErrorCode.InvalidDuration)
    expect(failure(() => parseDuration('1s 2')).code).toBe(ErrorCode.InvalidDuration)
  })

  it('names the field (default "duration") and says what it expects', () => {
    const text = failure(() => parseDuration('soon'))
    expect(text).toMatchObject({ code: ErrorCode.InvalidDuration, field: 'duration' })
    expect(text.message).toContain("'500ms'")
    const other = failure(() => parseDuration(undefined, 'window'))
    expect(other).toMatchObject({ code: ErrorCode.InvalidDuration, field: 'window' })
    expect(other.message).toContain("'500ms'")
    expect(failure(() => parseDuration(0)).message).toContain('a positive, finite duration')
    expect(failure(() => parseDuration(Number.POSITIVE_INFINITY)).message).toContain('positive, finite')
  })

  it('takes only numbers and strings, not objects that print like a duration', () => {
    const lookalike = { toString: () => '1s' }
    expect(failure(() => parseDuration(lookalike)).code).toBe(ErrorCode.InvalidDuration)
  })
})
