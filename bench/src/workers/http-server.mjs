// An HTTP server for one sample: a framework, bare or behind a limiter keyed by the client address.
//   regime 'pass': a limit far above the load (10⁹ per hour), never refused;
//   regime 'reject': 10 per hour, so all but the first 10 requests are refused.
// Every limiter gets the same limit, window and key (the client address, each library's default key).
// Prints READY once listening; on SIGTERM prints `COUNTS {"handled":N}` (requests the handler answered).

import fastifyRateLimit from '@fastify/rate-limit'
import { createLimiter } from '@tollgate/core'
import { rateLimit as tollgateExpress } from '@tollgate/express'
import tollgateFastify from '@tollgate/fastify'
import { rateLimit as tollgateKoa } from '@tollgate/koa'
import { memoryStore } from '@tollgate/memory'
import express from 'express'
import expressRateLimit from 'express-rate-limit'
import Fastify from 'fastify'
import Koa from 'koa'
import koaRateLimit from 'koa-ratelimit'
import { HOUR_MS, HTTP_LIMITS, workerConfig } from '../lib.mjs'

const { framework, variant, regime, port } = workerConfig()
const limit = HTTP_LIMITS[regime]
const windowMs = HOUR_MS
let handled = 0
const tollgateLimiter = () =>
  createLimiter({
    store: memoryStore(),
    policy: { capacity: limit, refill: { tokens: limit, per: windowMs } },
  })

async function expressApp() {
  const app = express()
  if (variant === 'tollgate') app.use(tollgateExpress({ limiter: tollgateLimiter() }))
  if (variant === 'peer') app.use(expressRateLimit({ windowMs, limit }))
  app.get('/', (_req, res) => {
    handled++
    res.send('ok')
  })
  await new Promise((resolve) => app.listen(port, '127.0.0.1', resolve))
}

async function koaApp() {
  const app = new Koa()
  if (variant === 'tollgate') app.use(tollgateKoa({ limiter: tollgateLimiter() }))
  if (variant === 'peer') {
    app.use(
      koaRateLimit({ driver: 'memory', db: new Map(), duration: windowMs, max: limit, id: (ctx) => ctx.ip }),
    )
  }
  app.use((ctx) => {
    handled++
    ctx.body = 'ok'
  })
  await new Promise((resolve) => app.listen(port, '127.0.0.1', resolve))
}

async function fastifyApp() {
  const app = Fastify({ logger: false })
  if (variant === 'tollgate') await app.register(tollgateFastify, { limiter: tollgateLimiter() })
  if (variant === 'peer') await app.register(fastifyRateLimit, { max: limit, timeWindow: windowMs })
  app.get('/', async () => {
    handled++
    return 'ok'
  })
  await app.listen({ port, host: '127.0.0.1' })
}

const apps = { express: expressApp, koa: koaApp, fastify: fastifyApp }
if (!apps[framework]) throw new Error(`unknown framework ${framework}`)
if (limit === undefined) throw new Error(`unknown regime ${regime}`)
await apps[framework]()
process.on('SIGTERM', () => {
  process.stdout.write(`COUNTS ${JSON.stringify({ handled })}\n`, () => process.exit(0))
})
process.stdout.write('READY\n')
