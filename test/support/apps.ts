import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Limiter, Subject } from '@tollgate/core'
import { rateLimit as expressRateLimit } from '@tollgate/express'
import tollgate from '@tollgate/fastify'
import { rateLimit as koaRateLimit } from '@tollgate/koa'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'

export const FRAMEWORKS = ['express', 'koa', 'fastify'] as const
export type Framework = (typeof FRAMEWORKS)[number]

export interface AppOptions {
  limiter: Limiter
  /** Trust one proxy hop on loopback (the framework's own setting), or none. */
  trustProxy: false | 1
  /** The chain's keys from the Authorization header; undefined falls back to the client address. */
  subject?: (headers: Record<string, string | string[] | undefined>) => Subject | undefined
  host?: string
}

export interface RunningApp {
  readonly host: string
  readonly port: number
  readonly url: string
  close(): Promise<void>
}

const quiet = () => {}

async function listen(server: Server, host: string): Promise<RunningApp> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** One GET /x route behind the framework's tollgate adapter, listening on a free loopback port. */
export async function startApp(framework: Framework, options: AppOptions): Promise<RunningApp> {
  const host = options.host ?? '127.0.0.1'
  const subject = options.subject
  const limit = {
    limiter: options.limiter,
    onWarning: quiet,
    ...(subject
      ? { subject: (req: { headers: Record<string, string | string[] | undefined> }) => subject(req.headers) }
      : {}),
  }
  if (framework === 'express') {
    const app = express()
    app.set('trust proxy', options.trustProxy)
    app.use(expressRateLimit(limit))
    app.get('/x', (_req, res) => {
      res.json({ ok: true })
    })
    return listen(createServer(app), host)
  }
  if (framework === 'koa') {
    const app = new Koa({ proxy: options.trustProxy !== false, maxIpsCount: options.trustProxy || 0 })
    app.silent = true
    app.use(koaRateLimit({ ...limit, subject: limit.subject ? (ctx) => limit.subject!(ctx.req) : undefined }))
    app.use((ctx) => {
      ctx.body = { ok: true }
    })
    return listen(createServer(app.callback()), host)
  }
  // Fastify's numeric trustProxy did not trust the loopback peer here (5.12: req.ip stayed 127.0.0.1), so one
  // trusted hop is said the way Fastify documents best: the proxy's own address.
  const app = Fastify({ trustProxy: options.trustProxy === false ? false : '127.0.0.1' })
  await app.register(tollgate, limit)
  app.get('/x', async () => ({ ok: true }))
  await app.listen({ port: 0, host })
  const { port } = app.server.address() as AddressInfo
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => app.close(),
  }
}
