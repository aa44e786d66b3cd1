import {
  type ClientInfo,
  createHttpGate,
  type Decision,
  ErrorCode,
  type HttpLimitOptions,
  invalid,
  routeOverScope,
  withSharedLimiter,
} from '@tollgate/core/http'
import { admit } from '@tollgate/core/node'
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'

/** What a route may set under `config: { rateLimit: { ... } }`; it is merged over the plugin's options. */
export interface FastifyRouteRateLimitOptions extends HttpLimitOptions<FastifyRequest> {
  /** Replaces the refusal response (429, or 503 when the store is down); the headers are already set. */
  handler?: (request: FastifyRequest, reply: FastifyReply, decision: Decision) => unknown
}

export interface FastifyRateLimitOptions extends FastifyRouteRateLimitOptions {
  /** Limit every route of the plugin's scope (default true); false: only routes with `config.rateLimit`. */
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

function limitHook(options: FastifyRouteRateLimitOptions): onRequestAsyncHookHandler {
  const gate = createHttpGate<FastifyRequest>(options, { adapterOptions: ['handler'] })
  const handler = options.handler
  return async function tollgate(request, reply) {
    const outcome = await gate(request, clientInfo(request))
    if (outcome.action === 'skip') return
    request.rateLimit = outcome.decision ?? request.rateLimit
    for (const [name, value] of outcome.headers) reply.header(name, value)
    if (outcome.action === 'pass') {
      // A client gone during the hold ends the lifecycle here, without the handler.
      if (!(await admit(outcome, reply.raw))) reply.hijack()
      return
    }
    if (handler && outcome.decision) {
      await handler(request, reply, outcome.decision)
      return reply
    }
    return reply.code(outcome.status).type(outcome.contentType).send(JSON.stringify(outcome.body))
  }
}

function register(fastify: FastifyInstance, pluginOptions: FastifyRateLimitOptions | undefined): void {
  const { global = true, ...options } = pluginOptions ?? {}
  if (typeof global !== 'boolean') throw invalid(ErrorCode.InvalidOption, 'global', global, 'true or false')
  // Made now, so bad options fail at registration. Routes without options of their own share this hook; routes
  // with some share its limiter (a one-call `limit`/`per` makes one limiter for the whole scope).
  const defaults = withSharedLimiter(options)
  const sharedHook = limitHook(defaults)
  const routeHooks = new WeakMap<FastifyRouteRateLimitOptions, onRequestAsyncHookHandler>()
  const hookFor = (route: FastifyRouteRateLimitOptions) =>
    routeHooks.get(route) ?? routeHooks.set(route, limitHook(routeOverScope(defaults, route))).get(route)!
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

const plugin: FastifyPluginAsync<FastifyRateLimitOptions> = async (fastify, options) =>
  register(fastify, options)

/** The Fastify plugin: `app.register(tollgate, { limit: 100, per: '15m' })`; per route `config: { rateLimit: { cost } }`. */
const tollgate = fp(plugin, { fastify: '5.x', name: '@tollgate/fastify' })

export default tollgate
export type { Decision, HeaderFormat, Identity } from '@tollgate/core/http'
export { tollgate }
