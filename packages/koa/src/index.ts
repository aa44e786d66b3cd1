import type { ServerResponse } from 'node:http'
import {
  type ClientInfo,
  createHttpGate,
  type Decision,
  type HttpLimitOptions,
  invalidRequestProblem,
  isClientError,
  PROBLEM_CONTENT_TYPE,
} from '@tollgate/core'
import type { Context, Middleware, Next } from 'koa'

export interface KoaRateLimitOptions extends HttpLimitOptions<Context> {
  /**
   * Replaces the refusal response (429, or 503 under `onStoreError: 'closed'`). The RateLimit and
   * Retry-After headers are already set when it runs; `decision.degraded` tells a store outage apart.
   */
  handler?: (ctx: Context, decision: Decision) => void | Promise<void>
}

/** What Koa resolved about the client under its own `app.proxy` setting. */
function clientInfo(ctx: Context): ClientInfo {
  return { ip: ctx.ip, untrustedForwardedFor: ctx.get('X-Forwarded-For') !== '' && !ctx.app.proxy }
}

/**
 * Resolves after `ms`, or early with false when the client goes away: a request held by a leaky bucket
 * in delay mode then never reaches the rest of the chain. (Core has no timers, so each adapter holds for itself.)
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

/**
 * Koa middleware: `app.use(rateLimit({ limiter }))`, or per route with a router
 * `router.get('/search', rateLimit({ limiter, tier: 'premium', cost: 5 }), handler)`.
 * The decision is on `ctx.state.rateLimit`.
 */
export function rateLimit(options: KoaRateLimitOptions = {}): Middleware {
  const gate = createHttpGate<Context>(options)
  const handler = options.handler

  return async function tollgate(ctx: Context, next: Next): Promise<void> {
    let outcome: Awaited<ReturnType<typeof gate>>
    try {
      outcome = await gate(ctx, clientInfo(ctx))
    } catch (error) {
      if (!isClientError(error)) throw error
      ctx.status = 400
      ctx.type = PROBLEM_CONTENT_TYPE
      ctx.body = JSON.stringify(invalidRequestProblem(error.message, error.field, error.code))
      return
    }
    if (outcome.action === 'skip') return next()
    ctx.state.rateLimit = outcome.decision
    for (const [name, value] of outcome.headers) ctx.set(name, value)
    if (outcome.action === 'pass') {
      if (outcome.delayMs > 0 && !(await hold(outcome.delayMs, ctx.res))) return
      return next()
    }
    if (handler) return handler(ctx, outcome.decision)
    ctx.status = outcome.status
    ctx.type = outcome.contentType
    ctx.body = JSON.stringify(outcome.body)
  }
}

export type { Decision, HeaderFormat } from '@tollgate/core'
