import type { ClientInfo, Decision, HttpLimitOptions, HttpOutcome } from '@tollgate/core/http'
import { createHttpGate, problemJson } from '@tollgate/core/http'
import { admit } from '@tollgate/core/node'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

declare global {
  namespace Express {
    interface Request {
      /** The rate-limit decision for this request, set by `@tollgate/express`. */
      rateLimit?: Decision
    }
  }
}

export interface ExpressRateLimitOptions extends HttpLimitOptions<Request> {
  /**
   * Replaces the refusal response (429, or 503 under `onStoreError: 'closed'`). The RateLimit and
   * Retry-After headers are already set when it runs; `decision.degraded` tells a store outage apart.
   */
  handler?: (req: Request, res: Response, decision: Decision) => void | Promise<void>
}

/** What Express resolved about the client under its own `trust proxy` setting. */
function clientInfo(req: Request): ClientInfo {
  // The trust setting matters only when the header came: most requests skip the lookup.
  if (req.headers['x-forwarded-for'] === undefined) return { ip: req.ip, untrustedForwardedFor: false }
  const trusts = req.app.get('trust proxy fn') as ((address: string, hop: number) => boolean) | undefined
  const peerTrusted = trusts ? trusts(req.socket.remoteAddress ?? '', 0) : false
  return { ip: req.ip, untrustedForwardedFor: !peerTrusted }
}

/**
 * Express middleware: `app.use(rateLimit({ limit: 100, per: '15m' }))`, or per route
 * `app.get('/search', rateLimit({ limiter, cost: 5 }), handler)`. The decision is on `req.rateLimit`.
 */
export function rateLimit(options: ExpressRateLimitOptions = {}): RequestHandler {
  const gate = createHttpGate<Request>(options, { adapterOptions: ['handler'] })
  const handler = options.handler

  // Synchronous when the gate decided without waiting: the request reaches next() on the same tick.
  function respond(outcome: HttpOutcome, req: Request, res: Response, next: NextFunction): unknown {
    if (outcome.action === 'skip') return next()
    req.rateLimit = outcome.decision ?? req.rateLimit
    for (const [name, value] of outcome.headers) res.setHeader(name, value)
    if (outcome.action === 'pass') {
      const admitted = admit(outcome, res)
      if (typeof admitted === 'boolean') return admitted ? next() : undefined
      return admitted.then((passed) => (passed ? next() : undefined))
    }
    if (handler && outcome.decision) return handler(req, res, outcome.decision)
    res.status(outcome.status).type(outcome.contentType).send(problemJson(outcome.body))
  }

  return (req, res, next) => {
    const outcome = gate(req, clientInfo(req))
    if ('then' in outcome) {
      outcome.then((o) => respond(o, req, res, next)).catch(next)
      return
    }
    const done = respond(outcome, req, res, next) as PromiseLike<unknown> | undefined
    if (done && typeof done.then === 'function') done.then(undefined, next)
  }
}

export type { Decision, HeaderFormat, Identity } from '@tollgate/core/http'
