import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Router from '@koa/router'
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
import { rateLimit } from '@tollgate/koa'
import Koa, { type Context } from 'koa'

const config = exampleConfig()
const example = await createExampleLimiter()
const { limiter, storeName, close } = example
const admin = createAdmin(limiter, config.adminToken)
const opsPage = loadOpsPage()
const metrics = createMetrics(example)
const send = (ctx: Context, result: JsonResult) => {
  ctx.status = result.status
  ctx.set(result.headers ?? {})
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
// The admin operations check the token first and only then read the body (at most 64 KiB, else 413).
router.put('/admin/orgs/:org/tier', async (ctx) =>
  send(ctx, await admin.setOrgTier(ctx.headers, ctx.params.org!, () => readBody(ctx.req))),
)
router.put('/admin/tiers/:tier', async (ctx) =>
  send(ctx, await admin.updateTier(ctx.headers, ctx.params.tier!, () => readBody(ctx.req))),
)
router.get('/admin/orgs', async (ctx) => send(ctx, await admin.listOrgs(ctx.headers)))
router.get('/admin/orgs/:org', async (ctx) => send(ctx, await admin.getOrg(ctx.headers, ctx.params.org!)))
router.get('/admin/tiers', async (ctx) => send(ctx, await admin.listTiers(ctx.headers)))
// The ops page itself holds no data: it asks for the token and sends it with each admin call.
router.get('/ops', (ctx) => {
  ctx.set(opsPage.headers)
  ctx.body = opsPage.html
})
// Prometheus scrapes the limiter's metrics here (no tenant key is ever a label).
router.get('/metrics', async (ctx) => {
  ctx.type = metrics.contentType
  ctx.body = await metrics.scrape()
})
if (config.debugRoutes) router.get('/debug/throw', debugThrow)
if (config.debugRoutes) router.get('/debug/clock', (ctx) => send(ctx, debugClock(ctx.query.advance)))

const app = new Koa()
// Every error becomes a problem+json answer, never Koa's text pages or a stack.
app.use(async (ctx, next) => {
  try {
    await next()
  } catch (error) {
    send(ctx, errorResult(error))
  }
})
app.use(router.routes())
app.use((ctx) => send(ctx, unmatchedRoute(ctx.method, ctx.originalUrl))) // no route took it: 404 / 405
const server = createServer(app.callback())
// What a client sends past an answer is read and dropped, so it sees the answer and can reuse the connection.
discardUnreadBodies(server)
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo
  announce('koa', config, `http://${address}:${port}`, storeName)
})
onShutdown(async () => {
  await new Promise((resolve) => server.close(resolve))
  await close()
})
