import { describe, expect, it } from 'vitest'
import { Breaker } from '../src/breaker.js'

describe('Breaker (time passed in)', () => {
  it('stays closed through fewer failures than the threshold, reporting degraded once', () => {
    const breaker = new Breaker(3, 1000)
    expect(breaker.failure(0, 'call')).toEqual([{ type: 'degraded' }])
    expect(breaker.failure(1, 'call')).toEqual([])
    expect(breaker.state).toBe('closed')
    expect(breaker.admit(2).admission).toBe('call')
  })

  it('opens at the threshold, sends everything to the fallback until the cooldown, then lets one probe through', () => {
    const breaker = new Breaker(2, 1000)
    breaker.failure(0, 'call')
    expect(breaker.failure(10, 'call')).toEqual([{ type: 'breaker', state: 'open' }])
    expect(breaker.state).toBe('open')
    expect(breaker.admit(500).admission).toBe('fallback')
    expect(breaker.retryAfterMs(500)).toBe(1000)
    expect(breaker.admit(1009).admission).toBe('fallback')
    const probe = breaker.admit(1010)
    expect(probe).toEqual({ admission: 'probe', transitions: [{ type: 'breaker', state: 'half-open' }] })
    expect(breaker.state).toBe('half-open')
    // Only one probe at a time.
    expect(breaker.admit(1011).admission).toBe('fallback')
  })

  it('closes and reports recovery with the time spent degraded when a probe succeeds', () => {
    const breaker = new Breaker(1, 100)
    breaker.failure(50, 'call')
    expect(breaker.admit(150).admission).toBe('probe')
    expect(breaker.success(160, 'probe')).toEqual([
      { type: 'breaker', state: 'closed' },
      { type: 'recovered', downMs: 110 },
    ])
    expect(breaker.state).toBe('closed')
    expect(breaker.admit(161).admission).toBe('call')
  })

  it('reopens for a whole cooldown when the probe fails', () => {
    const breaker = new Breaker(1, 100)
    breaker.failure(0, 'call')
    expect(breaker.admit(100).admission).toBe('probe')
    expect(breaker.failure(105, 'probe')).toEqual([{ type: 'breaker', state: 'open' }])
    expect(breaker.admit(204).admission).toBe('fallback')
    expect(breaker.admit(205).admission).toBe('probe')
  })

  it('forgets earlier failures after a success', () => {
    const breaker = new Breaker(2, 100)
    breaker.failure(0, 'call')
    expect(breaker.success(1, 'call')).toEqual([{ type: 'recovered', downMs: 1 }])
    expect(breaker.failure(2, 'call')).toEqual([{ type: 'degraded' }])
    expect(breaker.state).toBe('closed')
  })
})
