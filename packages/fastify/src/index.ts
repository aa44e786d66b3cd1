import {
  type ClientInfo,
  createHttpGate,
  ErrorCode,
  type HttpOutcome,
  invalid,
  problemJson,
  routeOverScope,
  withSharedLimiter,
} from '@tollgate/core/http'
import { admit } from '@tollgate/core/node'
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRateLimitOptions, FastifyRouteRateLimitOptions } from './options.js'

/** What Fastify resolved about the client under its own `trustProxy` setting. */
function clientInfo(request: FastifyRequest): ClientInfo {
  const forwarded = request.headers['x-forwarded-for'] !== undefined
  // `ips` exists only with trustProxy, and holds more than the peer only when the peer is trusted.
  const ips = (request as { ips?: string[] }).ips
  return { ip: request.ip, untrustedForwardedFor: forwarded && (!ips || ips.length < 2) }
}

const noop = () => {}

// Fastify lowercases every header name it is given; given lowercase, that is a no-op and the name stays
// the interned constant (half the cost of reply.header for two headers). Names come from a fixed set.
const lowerNames = new Map<string, string>()
function lowerName(name: string): string {
  let lower = lowerNames.get(name)
  if (lower === undefined) {
    lower = name.toLowerCase()
    lowerNames.set(name, lower)
  }
  return lower
}

/** A callback-style hook: done() on the same tick when the gate decided without waiting, else a Promise. */
function limitHook(options: FastifyRouteRateLimitOptions): onRequestHookHandler {
  const gate = createHttpGate<FastifyRequest>(options, { adapterOptions: ['handler'] })
  const handler = options.handler
  function respond(outcome: HttpOutcome, request: FastifyRequest, reply: FastifyReply, done: () => void) {
    if (outcome.action === 'skip') return done()
    request.rateLimit = outcome.decision ?? request.rateLimit
    for (const [name, value] of outcome.headers) reply.header(lowerName(name), value)
    if (outcome.action === 'pass') {
      const admitted = admit(outcome, reply.raw)
      if (admitted === true) return done()
      // A client gone during the hold ends the lifecycle here, without the handler.
      return Promise.resolve(admitted).then((passed) => {
        if (!passed) reply.hijack()
      })
    }
    if (handler && outcome.decision) {
      const decision = outcome.decision
      return Promise.resolve(handler(request, reply, decision)).then(() => reply)
    }
    return reply.code(outcome.status).type(outcome.contentType).send(problemJson(outcome.body))
  }
  return function tollgate(request, reply, done) {
    const outcome = gate(request, clientInfo(request))
    // Settled later, the returned Promise continues the lifecycle, so done is not called as well.
    if ('then' in outcome) return outcome.then((o) => respond(o, request, reply, noop))
    return respond(outcome, request, reply, done)
  }
}

function register(fastify: FastifyInstance, pluginOptions: FastifyRateLimitOptions | undefined): void {
  const { global = true, ...options } = pluginOptions ?? {}
  if (typeof global !== 'boolean') throw invalid(ErrorCode.InvalidOption, 'global', global, 'true or false')
  // Made now, so bad options fail at registration. Routes without options of their own share this hook; routes
  // with some share its limiter (a one-call `limit`/`per` makes one limiter for the whole scope).
  const defaults = withSharedLimiter(options)
  const sharedHook = limitHook(defaults)
  const routeHooks = new WeakMap<FastifyRouteRateLimitOptions, onRequestHookHandler>()
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
  fastify.addHook('onRequest', function tollgateScope(request, reply, done) {
    const routeOptions = request.routeOptions.config.rateLimit
    if (routeOptions === false || (routeOptions === undefined && !global)) return done()
    return (routeOptions ? hookFor(routeOptions) : sharedHook).call(this, request, reply, done)
  })
}

const plugin: FastifyPluginAsync<FastifyRateLimitOptions> = async (fastify, options) =>
  register(fastify, options)

/** The Fastify plugin: `app.register(tollgate, { limit: 100, per: '15m' })`; per route `config: { rateLimit: { cost } }`. */
const tollgate = fp(plugin, { fastify: '5.x', name: '@tollgate/fastify' })

export default tollgate
export type { Decision, HeaderFormat, Identity } from '@tollgate/core/http'
export type { FastifyRateLimitOptions, FastifyRouteRateLimitOptions } from './options.js'
export { tollgate }
