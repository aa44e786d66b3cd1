import { createServer } from 'node:http'
import Router from '@koa/router'
import type { AdapterAppFactory } from '@tollgate/testkit'
import Koa, { type Context } from 'koa'
import { type KoaRateLimitOptions, rateLimit } from '../src/index.js'

/** The shared adapter suites' app, in Koa. */
export const koaApp: AdapterAppFactory = (setup) => {
  const app = new Koa()
  app.proxy = setup.trustProxy === true
  app.silent = true
  const { refusal } = setup
  const limit = (options: KoaRateLimitOptions) =>
    rateLimit({
      ...options,
      ...(refusal && {
        handler: (ctx, decision) => {
          const { status, body } = refusal(decision)
          ctx.status = status
          ctx.body = body
        },
      }),
    })
  const respond = (ctx: Context) => {
    ctx.body = setup.respond(ctx.path, ctx.state.rateLimit)
    ctx.status = Number(ctx.get('x-status') || 200)
  }
  const router = new Router()
  if (setup.app) app.use(limit(setup.app))
  router.get('/hello', respond)
  for (const [path, options] of Object.entries(setup.routes ?? {})) router.get(path, limit(options), respond)
  app.use(router.routes())
  return { server: createServer(app.callback()) }
}
