import { createServer } from 'node:http'
import type { AdapterAppFactory } from '@tollgate/testkit'
import express, { type Request, type Response } from 'express'
import { type ExpressRateLimitOptions, rateLimit } from '../src/index.js'

/** The shared adapter suites' app, in Express. */
export const expressApp: AdapterAppFactory = (setup) => {
  const app = express()
  if (setup.trustProxy) app.set('trust proxy', true)
  const { refusal } = setup
  const limit = (options: ExpressRateLimitOptions) =>
    rateLimit({
      ...options,
      ...(refusal && {
        handler: (_req, res, decision) => {
          const { status, body } = refusal(decision)
          res.status(status).json(body)
        },
      }),
    })
  const respond = (req: Request, res: Response) =>
    res.status(Number(req.headers['x-status'] ?? 200)).json(setup.respond(req.path, req.rateLimit))
  if (setup.app) app.use(limit(setup.app))
  app.get('/hello', respond)
  for (const [path, options] of Object.entries(setup.routes ?? {})) app.get(path, limit(options), respond)
  return { server: createServer(app) }
}
