import { describe, expect, it } from 'vitest'
import { Breaker } from '../src/breaker.js'

describe('Breaker transitions, one probe at a time', () => {
  it('knows it is failing from the first failure until a success', () => {
    const breaker = new Breaker(3, 100)
    expect(breaker.failing()).toBe(false)
    breaker.failure(0, 'call')
    expect(breaker.failing()).toBe(true)
    breaker.success(1, 'call')
    expect(breaker.failing()).toBe(false)
  })

  it('reports nothing for a success when nothing was wrong', () => {
    const breaker = new Breaker(1, 100)
    expect(breaker.success(5, 'call')).toEqual([])
    expect(breaker.state).toBe('closed')
  })

  it('lets a new probe through once a successful probe has closed it and it opens again', () => {
    const breaker = new Breaker(1, 100)
    breaker.failure(0, 'call')
    expect(breaker.admit(100).admission).toBe('probe')
    breaker.success(101, 'probe')
    expect(breaker.failure(102, 'call')).toEqual([{ type: 'degraded' }, { type: 'breaker', state: 'open' }])
    expect(breaker.admit(202)).toEqual({
      admission: 'probe',
      transitions: [{ type: 'breaker', state: 'half-open' }],
    })
  })

  it('keeps the probe in flight as the one probe when an older call ends first', () => {
    // A call admitted before the breaker opened succeeds while the probe is still out.
    const closedByCall = new Breaker(1, 100)
    closedByCall.failure(0, 'call')
    expect(closedByCall.admit(100).admission).toBe('probe')
    closedByCall.success(101, 'call')
    closedByCall.failure(102, 'call')
    expect(closedByCall.admit(202).admission).toBe('fallback')
    // Or fails: the breaker stays open, and still only that probe may reach the store.
    const failedCall = new Breaker(1, 100)
    failedCall.failure(0, 'call')
    expect(failedCall.admit(100).admission).toBe('probe')
    expect(failedCall.failure(101, 'call')).toEqual([])
    expect(failedCall.admit(201).admission).toBe('fallback')
    expect(failedCall.state).toBe('half-open')
  })

  it('reports opening once, not again for late failures while open', () => {
    const breaker = new Breaker(1, 100)
    expect(breaker.failure(0, 'call')).toEqual([{ type: 'degraded' }, { type: 'breaker', state: 'open' }])
    expect(breaker.failure(50, 'call')).toEqual([])
    expect(breaker.admit(149).admission).toBe('fallback')
    expect(breaker.retryAfterMs(149)).toBe(100)
    expect(breaker.retryAfterMs(60)).toBe(100)
    expect(new Breaker(1, 0).retryAfterMs(0)).toBe(1)
  })
})
