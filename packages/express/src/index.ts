import type { ServerResponse } from 'node:http'
import {
  type ClientInfo,
  createHttpGate,
  type Decision,
  type HttpLimitOptions,
  type HttpOutcome,
  invalidRequestProblem,
  isClientError,
  PROBLEM_CONTENT_TYPE,
} from '@tollgate/core'
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
  const forwarded = req.headers['x-forwarded-for'] !== undefined
  const trusts = req.app.get('trust proxy fn') as ((address: string, hop: number) => boolean) | undefined
  const peerTrusted = trusts ? trusts(req.socket.remoteAddress ?? '', 0) : false
  return { ip: req.ip, untrustedForwardedFor: forwarded && !peerTrusted }
}

/**
 * Resolves after `ms`, or early with false when the client goes away: a request held by a leaky bucket
 * in delay mode then never reaches the handler. (Core has no timers, so each adapter holds for itself.)
 */
function hold(ms: number, res: ServerResponse): Promise<boolean> {
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

function applyHeaders(res: Response, outcome: Exclude<HttpOutcome, { action: 'skip' }>): void {
  for (const [name, value] of outcome.headers) res.setHeader(name, value)
}

/**
 * Express middleware: `app.use(rateLimit({ limiter }))`, or per route
 * `app.get('/search', rateLimit({ limiter, tier: 'premium', cost: 5 }), handler)`.
 */
export function rateLimit(options: ExpressRateLimitOptions = {}): RequestHandler {
  const gate = createHttpGate<Request>(options)
  const handler = options.handler

  async function limit(req: Request, res: Response, next: NextFunction): Promise<void> {
    const outcome = await gate(req, clientInfo(req))
    if (outcome.action === 'skip') return next()
    req.rateLimit = outcome.decision
    applyHeaders(res, outcome)
    if (outcome.action === 'pass') {
      if (outcome.delayMs > 0 && !(await hold(outcome.delayMs, res))) return
      return next()
    }
    if (handler) return handler(req, res, outcome.decision)
    res.status(outcome.status).type(outcome.contentType).send(JSON.stringify(outcome.body))
  }

  return (req, res, next) => {
    limit(req, res, next).catch((error: unknown) => {
      if (isClientError(error) && !res.headersSent) {
        res
          .status(400)
          .type(PROBLEM_CONTENT_TYPE)
          .send(JSON.stringify(invalidRequestProblem(error.message, error.field, error.code)))
        return
      }
      next(error)
    })
  }
}

export type { Decision, HeaderFormat } from '@tollgate/core'
