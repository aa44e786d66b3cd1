import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  announce,
  apiReply,
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
  readBody,
  routeLimit,
  unmatchedRoute,
} from '@tollgate/example-shared'
import { rateLimit } from '@tollgate/express'
import express, { type NextFunction, type Request, type Response } from 'express'

const config = exampleConfig()
const example = await createExampleLimiter()
const { limiter, storeName, close } = example
const admin = createAdmin(limiter, config.adminToken)
const opsPage = loadOpsPage()
const metrics = createMetrics(example)
const send = (res: Response, result: JsonResult) =>
  res
    .status(result.status)
    .set(result.headers ?? {})
    .type(result.contentType)
    .send(JSON.stringify(result.body))

const app = express()
app.disable('x-powered-by')
app.get('/health', (_req, res) => send(res, health()))
for (const route of ['hello', 'search'] as const) {
  app.get(`/api/${route}`, rateLimit(routeLimit(limiter, ROUTE_COST[route])), (req, res) =>
    send(res, apiReply(route, req.headers, typeof req.query.q === 'string' ? req.query.q : undefined)),
  )
}
// The admin operations check the token first and only then read the body (at most 64 KiB, else 413).
app.put('/admin/orgs/:org/tier', async (req, res) =>
  send(res, await admin.setOrgTier(req.headers, req.params.org, () => readBody(req))),
)
app.put('/admin/tiers/:tier', async (req, res) =>
  send(res, await admin.updateTier(req.headers, req.params.tier, () => readBody(req))),
)
app.get('/admin/orgs', async (req, res) => send(res, await admin.listOrgs(req.headers)))
app.get('/admin/orgs/:org', async (req, res) => send(res, await admin.getOrg(req.headers, req.params.org)))
app.get('/admin/tiers', async (req, res) => send(res, await admin.listTiers(req.headers)))
// The ops page itself holds no data: it asks for the token and sends it with each admin call.
app.get('/ops', (_req, res) => res.set(opsPage.headers).send(opsPage.html))
// Prometheus scrapes the limiter's metrics here (no tenant key is ever a label).
app.get('/metrics', async (_req, res) => res.type(metrics.contentType).send(await metrics.scrape()))
if (config.debugRoutes) app.get('/debug/throw', debugThrow)
if (config.debugRoutes) app.get('/debug/clock', (req, res) => send(res, debugClock(req.query.advance)))

// Every other answer is problem+json too, never Express's HTML pages: 404 / 405, then any error.
app.use((req, res) => send(res, unmatchedRoute(req.method, req.originalUrl)))
app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (res.headersSent) return next(error)
  send(res, errorResult(error))
})

const server = createServer(app)
// What a client sends past an answer is read and dropped, so it sees the answer and can reuse the connection.
discardUnreadBodies(server)
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo
  announce('express', config, `http://${address}:${port}`, storeName)
})
onShutdown(async () => {
  await new Promise((resolve) => server.close(resolve))
  await close()
})
