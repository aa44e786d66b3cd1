import type { ClientInfo, Decision, HttpLimitOptions, HttpOutcome } from '@tollgate/core/http'
import { createHttpGate, problemJson } from '@tollgate/core/http'
import { admit } from '@tollgate/core/node'
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
 * Koa middleware: `app.use(rateLimit({ limit: 100, per: '15m' }))`, or per route with a router
 * `router.get('/search', rateLimit({ limiter, cost: 5 }), handler)`. Every function option gets `ctx`.
 * The decision is on `ctx.state.rateLimit`. Errors other than bad request input go to Koa's error handling.
 */
export function rateLimit(options: KoaRateLimitOptions = {}): Middleware {
  const gate = createHttpGate<Context>(options, { adapterOptions: ['handler'] })
  const handler = options.handler

  // Synchronous when the gate decided without waiting: no Promise of its own before next().
  function respond(outcome: HttpOutcome, ctx: Context, next: Next): unknown {
    if (outcome.action === 'skip') return next()
    ctx.state.rateLimit = outcome.decision ?? ctx.state.rateLimit
    for (const [name, value] of outcome.headers) ctx.response.set(name, value)
    if (outcome.action === 'pass') {
      const admitted = admit(outcome, ctx.res)
      if (typeof admitted === 'boolean') return admitted ? next() : undefined
      return admitted.then((passed) => (passed ? next() : undefined))
    }
    if (handler && outcome.decision) return handler(ctx, outcome.decision)
    ctx.status = outcome.status
    ctx.type = outcome.contentType
    ctx.body = problemJson(outcome.body)
  }

  return function tollgate(ctx: Context, next: Next) {
    const outcome = gate(ctx, clientInfo(ctx))
    return 'then' in outcome ? outcome.then((o) => respond(o, ctx, next)) : respond(outcome, ctx, next)
  }
}

export type { Decision, HeaderFormat, Identity } from '@tollgate/core/http'
