import { describeAdapterConformance } from '@tollgate/testkit'
import Fastify, { type FastifyRequest } from 'fastify'
import tollgate, { type FastifyRouteRateLimitOptions } from '../src/index.js'

describeAdapterConformance('fastify', async (setup) => {
  const app = Fastify({ trustProxy: setup.trustProxy === true })
  const { refusal } = setup
  const handler: FastifyRouteRateLimitOptions['handler'] = refusal
    ? (_request, reply, decision) => {
        const { status, body } = refusal(decision)
        return reply.code(status).send(body)
      }
    : undefined
  await app.register(tollgate, setup.app ? { ...setup.app, handler } : { global: false, handler })
  const respond = async (request: FastifyRequest) =>
    setup.respond(request.routeOptions.url!, request.rateLimit)
  app.get('/hello', respond)
  for (const [path, options] of Object.entries(setup.routes ?? {})) {
    app.get(path, { config: { rateLimit: options } }, respond)
  }
  await app.ready()
  return { server: app.server, close: () => app.close() }
})
