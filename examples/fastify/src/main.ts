import type { AddressInfo } from 'node:net'
import {
  announce,
  apiReply,
  createAdmin,
  createExampleLimiter,
  exampleConfig,
  health,
  type JsonResult,
  onShutdown,
  ROUTE_COST,
  routeLimit,
} from '@tollgate/example-shared'
import tollgate from '@tollgate/fastify'
import Fastify, { type FastifyReply } from 'fastify'

const config = exampleConfig()
const { limiter, storeName, close } = await createExampleLimiter()
const admin = createAdmin(limiter, config.adminToken)
const send = (reply: FastifyReply, result: JsonResult) =>
  reply.code(result.status).type(result.contentType).send(JSON.stringify(result.body))

const app = Fastify()
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
app.put<Params>('/admin/orgs/:org/tier', async (request, reply) =>
  send(reply, await admin.setOrgTier(request.headers, request.params.org!, request.body)),
)
app.put<Params>('/admin/tiers/:tier', async (request, reply) =>
  send(reply, await admin.updateTier(request.headers, request.params.tier!, request.body)),
)
app.get<Params>('/admin/orgs/:org', async (request, reply) =>
  send(reply, await admin.getOrg(request.headers, request.params.org!)),
)

await app.listen({ port: config.port, host: config.host })
const { address, port } = app.server.address() as AddressInfo
announce('fastify', config, `http://${address}:${port}`, storeName)
onShutdown(async () => {
  await app.close()
  await close()
})
