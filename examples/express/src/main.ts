import { createServer } from 'node:http'
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
  readBody,
  routeLimit,
} from '@tollgate/example-shared'
import { rateLimit } from '@tollgate/express'
import express, { type Response } from 'express'

const config = exampleConfig()
const { limiter, storeName, close } = await createExampleLimiter()
const admin = createAdmin(limiter, config.adminToken)
const send = (res: Response, result: JsonResult) =>
  res.status(result.status).type(result.contentType).send(JSON.stringify(result.body))

const app = express()
app.get('/health', (_req, res) => send(res, health()))
for (const route of ['hello', 'search'] as const) {
  app.get(`/api/${route}`, rateLimit(routeLimit(limiter, ROUTE_COST[route])), (req, res) =>
    send(res, apiReply(route, req.headers, typeof req.query.q === 'string' ? req.query.q : undefined)),
  )
}
app.put('/admin/orgs/:org/tier', async (req, res) =>
  send(res, await admin.setOrgTier(req.headers, req.params.org, await readBody(req))),
)
app.put('/admin/tiers/:tier', async (req, res) =>
  send(res, await admin.updateTier(req.headers, req.params.tier, await readBody(req))),
)
app.get('/admin/orgs/:org', async (req, res) => send(res, await admin.getOrg(req.headers, req.params.org)))

const server = createServer(app)
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo
  announce('express', config, `http://${address}:${port}`, storeName)
})
onShutdown(async () => {
  await new Promise((resolve) => server.close(resolve))
  await close()
})
