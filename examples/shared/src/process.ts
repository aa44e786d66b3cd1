import { randomBytes } from 'node:crypto'
import { ErrorCode, TollgateError } from '@tollgate/core'

export interface ExampleConfig {
  port: number
  host: string
  adminToken: string
  /** True when the token was generated: print it at start. */
  generatedToken: boolean
  /** EXAMPLE_DEBUG_ROUTES=1 adds GET /debug/throw, a handler that throws (the e2e tests use it). */
  debugRoutes: boolean
}

/** PORT (default 3000), HOST (default 127.0.0.1, loopback), ADMIN_TOKEN (generated when unset), EXAMPLE_DEBUG_ROUTES. */
export function exampleConfig(env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TollgateError(ErrorCode.InvalidOption, `PORT must be a port number; got ${env.PORT}`, {
      field: 'PORT',
      value: env.PORT,
    })
  }
  const adminToken = env.ADMIN_TOKEN || randomBytes(18).toString('base64url')
  return {
    port,
    host: env.HOST || '127.0.0.1',
    adminToken,
    generatedToken: !env.ADMIN_TOKEN,
    debugRoutes: env.EXAMPLE_DEBUG_ROUTES === '1',
  }
}

/** The start-up lines every example prints; the e2e tests wait for "listening on". */
export function announce(framework: string, config: ExampleConfig, url: string, storeName: string): void {
  console.log(`tollgate ${framework} example listening on ${url} (store: ${storeName})`)
  if (config.generatedToken) console.log(`ADMIN_TOKEN=${config.adminToken}`)
  console.log(`try: curl -i -H 'Authorization: Bearer free-alice' ${url}/api/hello`)
  console.log(`ops page: ${url}/ops (asks for the admin token)`)
}

/** Stops cleanly on SIGINT / SIGTERM. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false
  const handler = () => {
    if (stopping) return
    stopping = true
    stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
}
