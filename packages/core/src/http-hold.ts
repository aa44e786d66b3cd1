import type { ServerResponse } from 'node:http'
import type { PassOutcome } from './http-types.js'

/**
 * Resolves true after `ms`, or false as soon as the client goes away (the response closes first): a request
 * held by a leaky bucket in delay mode then never reaches the handler.
 */
export function holdRequest(ms: number, res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false)
  return new Promise((resolve) => {
    const done = (passed: boolean) => {
      clearTimeout(timer)
      res.off('close', abandon)
      resolve(passed)
    }
    const abandon = () => done(false)
    const timer = setTimeout(() => done(true), ms)
    res.once('close', abandon)
  })
}

/** Calls `settle` once with the status sent, or undefined when the connection closed before the response ended. */
export function settleWhenDone(res: ServerResponse, settle: (status: number | undefined) => void): void {
  let settled = false
  const once = (status: number | undefined) => {
    if (settled) return
    settled = true
    settle(status)
  }
  res.once('finish', () => once(res.statusCode))
  res.once('close', () => once(res.writableFinished ? res.statusCode : undefined))
}

/**
 * What an adapter does with a pass: holds it for `delayMs` (a client that leaves meanwhile gets its token back),
 * arranges the refund rules for when the response is sent, and says whether to run the handler.
 */
export function admit(outcome: PassOutcome, res: ServerResponse): boolean | Promise<boolean> {
  if (outcome.delayMs <= 0) {
    if (outcome.settle) settleWhenDone(res, outcome.settle)
    return true
  }
  return holdRequest(outcome.delayMs, res).then((passed) => {
    if (!passed) outcome.abandon?.()
    else if (outcome.settle) settleWhenDone(res, outcome.settle)
    return passed
  })
}
