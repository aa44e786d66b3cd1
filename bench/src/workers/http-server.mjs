// An HTTP server for one sample: a framework, bare or behind a limiter, in pass mode (never limited) or
// reject mode (a limit of 1 per hour: after the first request every one is refused). Prints READY.

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
import { workerConfig } from '../lib.mjs'

const { framework, variant, mode, port } = workerConfig()
const HOUR_MS = 3_600_000
// pass: more than any run can spend; reject: one request per hour.
const limit = mode === 'pass' ? 1_000_000_000 : 1
const tollgateLimiter = () =>
  createLimiter({
    store: memoryStore(),
    policy: { capacity: limit, refill: { tokens: limit, per: mode === 'pass' ? '1s' : '1h' } },
  })

async function expressApp() {
  const app = express()
  if (variant === 'tollgate') app.use(tollgateExpress({ limiter: tollgateLimiter() }))
  if (variant === 'peer') app.use(expressRateLimit({ windowMs: HOUR_MS, limit }))
  app.get('/', (_req, res) => {
    res.send('ok')
  })
  await new Promise((resolve) => app.listen(port, '127.0.0.1', resolve))
}

async function koaApp() {
  const app = new Koa()
  if (variant === 'tollgate') app.use(tollgateKoa({ limiter: tollgateLimiter() }))
  if (variant === 'peer') {
    app.use(
      koaRateLimit({ driver: 'memory', db: new Map(), duration: HOUR_MS, max: limit, id: (ctx) => ctx.ip }),
    )
  }
  app.use((ctx) => {
    ctx.body = 'ok'
  })
  await new Promise((resolve) => app.listen(port, '127.0.0.1', resolve))
}

async function fastifyApp() {
  const app = Fastify({ logger: false })
  if (variant === 'tollgate') await app.register(tollgateFastify, { limiter: tollgateLimiter() })
  if (variant === 'peer') await app.register(fastifyRateLimit, { max: limit, timeWindow: HOUR_MS })
  app.get('/', async () => 'ok')
  await app.listen({ port, host: '127.0.0.1' })
}

const apps = { express: expressApp, koa: koaApp, fastify: fastifyApp }
if (!apps[framework]) throw new Error(`unknown framework ${framework}`)
await apps[framework]()
process.on('SIGTERM', () => process.exit(0))
process.stdout.write('READY\n')
