import type { Decision, HttpLimitOptions } from '@tollgate/core/http'
import type { FastifyReply, FastifyRequest } from 'fastify'

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
