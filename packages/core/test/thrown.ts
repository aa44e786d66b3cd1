import { expect } from 'vitest'
import { TollgateError } from './internals.js'

/** The TollgateError `fn` throws; fails the test when it throws something else or nothing. */
export function failure(fn: () => unknown): TollgateError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    return error as TollgateError
  }
  throw new Error('nothing thrown')
}
