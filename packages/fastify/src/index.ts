import type { ServerResponse } from 'node:http'
import {
  type ClientInfo,
  createHttpGate,
  type Decision,
  ErrorCode,
  type HttpLimitOptions,
  invalidRequestProblem,
  isClientError,
  PROBLEM_CONTENT_TYPE,
  TollgateError,
} from '@tollgate/core'
import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'

/** What a route may set under `config: { rateLimit: { ... } }`; it is merged over the plugin's options. */
export interface FastifyRouteRateLimitOptions extends HttpLimitOptions<FastifyRequest> {
  /**
   * Replaces the refusal response (429, or 503 under `onStoreError: 'closed'`). The RateLimit and
   * Retry-After headers are already set when it runs; `decision.degraded` tells a store outage apart.
   */
  handler?: (request: FastifyRequest, reply: FastifyReply, decision: Decision) => unknown
}

export interface FastifyRateLimitOptions extends FastifyRouteRateLimitOptions {
  /**
   * Limit every route of the scope the plugin is registered in (default true). With false only routes
   * that set `config.rateLimit` are limited.
   */
  global?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The rate-limit decision for this request, set by `@tollgate/fastify`. */
    rateLimit?: Decision
  }
  interface FastifyContextConfig {
    /** Per-route options merged over the plugin's, or false to leave the route unlimited. */
    rateLimit?: FastifyRouteRateLimitOptions | false
  }
}

/** What Fastify resolved about the client under its own `trustProxy` setting. */
function clientInfo(request: FastifyRequest): ClientInfo {
  const forwarded = request.headers['x-forwarded-for'] !== undefined
  // `ips` exists only with trustProxy, and holds more than the peer only when the peer is trusted.
  const ips = (request as { ips?: string[] }).ips
  return { ip: request.ip, untrustedForwardedFor: forwarded && (!ips || ips.length < 2) }
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

function limitHook(options: FastifyRouteRateLimitOptions): onRequestAsyncHookHandler {
  const gate = createHttpGate<FastifyRequest>(options)
  const handler = options.handler
  return async function tollgate(request, reply) {
    let outcome: Awaited<ReturnType<typeof gate>>
    try {
      outcome = await gate(request, clientInfo(request))
    } catch (error) {
      if (!isClientError(error)) throw error
      return reply
        .code(400)
        .type(PROBLEM_CONTENT_TYPE)
        .send(JSON.stringify(invalidRequestProblem(error.message, error.field, error.code)))
    }
    if (outcome.action === 'skip') return
    request.rateLimit = outcome.decision
    for (const [name, value] of outcome.headers) reply.header(name, value)
    if (outcome.action === 'pass') {
      if (outcome.delayMs > 0 && !(await hold(outcome.delayMs, reply.raw))) {
        // The client is gone: end the lifecycle here without running the handler.
        reply.hijack()
        return reply
      }
      return
    }
    if (handler) {
      await handler(request, reply, outcome.decision)
      return reply
    }
    return reply.code(outcome.status).type(outcome.contentType).send(JSON.stringify(outcome.body))
  }
}

function register(fastify: FastifyInstance, pluginOptions: FastifyRateLimitOptions | undefined): void {
  const { global = true, ...defaults } = pluginOptions ?? {}
  if (typeof global !== 'boolean') {
    throw new TollgateError(ErrorCode.InvalidOption, `global must be true or false; got ${String(global)}`, {
      field: 'global',
      value: global,
    })
  }
  // Made now, so bad options fail at registration; routes without their own options share it.
  const sharedHook = limitHook(defaults)
  const routeHooks = new WeakMap<FastifyRouteRateLimitOptions, onRequestAsyncHookHandler>()
  const hookFor = (routeOptions: FastifyRouteRateLimitOptions) => {
    let hook = routeHooks.get(routeOptions)
    if (!hook) {
      hook = limitHook({ ...defaults, ...routeOptions })
      routeHooks.set(routeOptions, hook)
    }
    return hook
  }
  if (!fastify.hasRequestDecorator('rateLimit')) fastify.decorateRequest('rateLimit', undefined)

  // Routes seen now get their gate at once, so bad per-route options fail at start-up, not on a request.
  fastify.addHook('onRoute', (route) => {
    const routeOptions = route.config?.rateLimit
    if (routeOptions) hookFor(routeOptions)
  })
  // A scope hook, not a per-route one: it covers every route of this scope and its children, including
  // routes declared before the plugin finished loading, and no route outside the scope.
  fastify.addHook('onRequest', function tollgateScope(request, reply) {
    const routeOptions = request.routeOptions.config.rateLimit
    if (routeOptions === false || (routeOptions === undefined && !global)) return Promise.resolve()
    return (routeOptions ? hookFor(routeOptions) : sharedHook).call(this, request, reply)
  })
}

const plugin: FastifyPluginCallback<FastifyRateLimitOptions> = (fastify, options, done) => {
  try {
    register(fastify, options)
    done()
  } catch (error) {
    done(error as Error)
  }
}

/** The Fastify plugin: `app.register(tollgate, { limiter })`; per route `config: { rateLimit: { tier, cost } }`. */
const tollgate = fp(plugin, { fastify: '5.x', name: '@tollgate/fastify' })

export default tollgate
export type { Decision, HeaderFormat } from '@tollgate/core'
export { tollgate }
