import type { AddressInfo } from 'node:net'
import {
  announce,
  apiReply,
  BODY_LIMIT,
  createAdmin,
  createExampleLimiter,
  createMetrics,
  debugClock,
  debugThrow,
  discardUnreadBodies,
  errorResult,
  exampleConfig,
  health,
  type JsonResult,
  loadOpsPage,
  onShutdown,
  ROUTE_COST,
  routeLimit,
  unmatchedRoute,
} from '@tollgate/example-shared'
import tollgate from '@tollgate/fastify'
import Fastify, { type FastifyReply } from 'fastify'

const config = exampleConfig()
const example = await createExampleLimiter()
const { limiter, storeName, close } = example
const admin = createAdmin(limiter, config.adminToken)
const opsPage = loadOpsPage()
const metrics = createMetrics(example)
const send = (reply: FastifyReply, result: JsonResult) =>
  reply
    .code(result.status)
    .headers(result.headers ?? {})
    .type(result.contentType)
    .send(JSON.stringify(result.body))

// Bodies over 64 KiB end in a 413; a URL the router cannot read ends in a 400: both problem+json.
const app = Fastify({
  bodyLimit: BODY_LIMIT,
  frameworkErrors: (error, _request, reply) => send(reply, errorResult(error)),
})
// What a client sends past an answer is read and dropped, so it sees the answer and can reuse the connection.
discardUnreadBodies(app.server)
// Every other answer is problem+json too, never Fastify's own JSON errors: 404 / 405, then any error.
app.setNotFoundHandler((request, reply) => send(reply, unmatchedRoute(request.method, request.url)))
app.setErrorHandler((error, _request, reply) => {
  // Fastify closes the connection after a body error while the client may still be sending, which then sees
  // EPIPE instead of the 413: the server discards the rest instead (up to DISCARD_LIMIT, see above).
  reply.removeHeader('connection')
  send(reply, errorResult(error))
})
// Bodies reach the shared admin validation as text, so a malformed one gets the same 400 problem everywhere.
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
// Registered with global: false, only routes that set config.rateLimit are limited (/health and /admin are not).
await app.register(tollgate, { limiter, global: false })

type Params = { Params: Record<string, string>; Body: string | undefined }
app.get('/health', async (_request, reply) => send(reply, health()))
for (const route of ['hello', 'search'] as const) {
  app.get<{ Querystring: { q?: string } }>(
    `/api/${route}`,
    { config: { rateLimit: routeLimit(limiter, ROUTE_COST[route]) } },
    async (request, reply) => send(reply, apiReply(route, request.headers, request.query.q)),
  )
}
await app.register(async (adminRoutes) => {
  // Fastify reads a body before the handler runs: the token is checked first, as the request arrives.
  adminRoutes.addHook('onRequest', async (request, reply) => {
    const denied = admin.authorize(request.headers)
    if (denied) return send(reply, denied)
  })
  const body = (request: { body: string | undefined }) => async () => request.body
  adminRoutes.put<Params>('/admin/orgs/:org/tier', async (request, reply) =>
    send(reply, await admin.setOrgTier(request.headers, request.params.org!, body(request))),
  )
  adminRoutes.put<Params>('/admin/tiers/:tier', async (request, reply) =>
    send(reply, await admin.updateTier(request.headers, request.params.tier!, body(request))),
  )
  adminRoutes.get('/admin/orgs', async (request, reply) => send(reply, await admin.listOrgs(request.headers)))
  adminRoutes.get<Params>('/admin/orgs/:org', async (request, reply) =>
    send(reply, await admin.getOrg(request.headers, request.params.org!)),
  )
  adminRoutes.get('/admin/tiers', async (request, reply) =>
    send(reply, await admin.listTiers(request.headers)),
  )
})
// The ops page itself holds no data: it asks for the token and sends it with each admin call.
app.get('/ops', async (_request, reply) => reply.headers(opsPage.headers).send(opsPage.html))
// Prometheus scrapes the limiter's metrics here (no tenant key is ever a label).
app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.scrape()))
if (config.debugRoutes) app.get('/debug/throw', debugThrow)
if (config.debugRoutes)
  app.get('/debug/clock', async (request, reply) =>
    send(reply, debugClock((request.query as { advance?: string }).advance)),
  )

await app.listen({ port: config.port, host: config.host })
const { address, port } = app.server.address() as AddressInfo
announce('fastify', config, `http://${address}:${port}`, storeName)
onShutdown(async () => {
  await app.close()
  await close()
})
