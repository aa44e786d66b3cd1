import type { AdapterAppFactory } from '@tollgate/testkit'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import tollgate, { type FastifyRouteRateLimitOptions } from '../src/index.js'

/** The shared adapter suites' app, in Fastify. */
export const fastifyApp: AdapterAppFactory = async (setup) => {
  const app = Fastify({ trustProxy: setup.trustProxy === true })
  const { refusal } = setup
  const handler: FastifyRouteRateLimitOptions['handler'] = refusal
    ? (_request, reply, decision) => {
        const { status, body } = refusal(decision)
        return reply.code(status).send(body)
      }
    : undefined
  const withHandler = <T extends object>(options: T) => (handler ? { ...options, handler } : options)
  await app.register(tollgate, setup.app ? withHandler(setup.app) : withHandler({ global: false }))
  const respond = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.code(Number(request.headers['x-status'] ?? 200))
    return setup.respond(request.routeOptions.url!, request.rateLimit)
  }
  app.get('/hello', respond)
  for (const [path, options] of Object.entries(setup.routes ?? {})) {
    if (!setup.app) app.get(path, { config: { rateLimit: withHandler(options) } }, respond)
    else {
      // A second limit layered on one route: the plugin again, in a child scope holding the route.
      await app.register(async (child) => {
        await child.register(tollgate, withHandler(options))
        child.get(path, respond)
      })
    }
  }
  await app.ready()
  return { server: app.server, close: () => app.close() }
}
