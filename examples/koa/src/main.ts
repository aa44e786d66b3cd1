import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Router from '@koa/router'
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
import { rateLimit } from '@tollgate/koa'
import Koa, { type Context } from 'koa'

const config = exampleConfig()
const { limiter, storeName, close } = await createExampleLimiter()
const admin = createAdmin(limiter, config.adminToken)
const send = (ctx: Context, result: JsonResult) => {
  ctx.status = result.status
  ctx.type = result.contentType
  ctx.body = JSON.stringify(result.body)
}

const router = new Router()
router.get('/health', (ctx) => send(ctx, health()))
for (const route of ['hello', 'search'] as const) {
  router.get(`/api/${route}`, rateLimit(routeLimit(limiter, ROUTE_COST[route])), (ctx) =>
    send(ctx, apiReply(route, ctx.headers, typeof ctx.query.q === 'string' ? ctx.query.q : undefined)),
  )
}
router.put('/admin/orgs/:org/tier', async (ctx) =>
  send(ctx, await admin.setOrgTier(ctx.headers, ctx.params.org!, await readBody(ctx.req))),
)
router.put('/admin/tiers/:tier', async (ctx) =>
  send(ctx, await admin.updateTier(ctx.headers, ctx.params.tier!, await readBody(ctx.req))),
)
router.get('/admin/orgs/:org', async (ctx) => send(ctx, await admin.getOrg(ctx.headers, ctx.params.org!)))

const app = new Koa()
app.use(router.routes())
const server = createServer(app.callback())
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo
  announce('koa', config, `http://${address}:${port}`, storeName)
})
onShutdown(async () => {
  await new Promise((resolve) => server.close(resolve))
  await close()
})
