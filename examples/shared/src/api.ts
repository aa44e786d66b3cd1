import type { IncomingHttpHeaders } from 'node:http'
import { type JsonResult, json, unauthorized } from './http.js'
import { advanceTestClock } from './limiter.js'
import { API_KEYS, caller, ROUTE_COST } from './tenants.js'

/** The answer of an API route, after the limit admitted it: 401 for an unknown key, else who called. */
export function apiReply(
  route: keyof typeof ROUTE_COST,
  headers: IncomingHttpHeaders,
  query?: string,
): JsonResult {
  const who = caller(headers)
  if (who.kind === 'unknown-key')
    return unauthorized(`Unknown API key. Demo keys: ${Object.keys(API_KEYS).join(', ')}`)
  const base = { route, cost: ROUTE_COST[route], caller: who.kind === 'tenant' ? who.user : 'anonymous' }
  if (route === 'hello') return json(200, { ...base, message: `hello, ${base.caller}` })
  return json(200, { ...base, query: query ?? '', results: [] })
}

export const health = (): JsonResult => json(200, { status: 'ok' })

/**
 * GET /debug/throw, served only with EXAMPLE_DEBUG_ROUTES=1: fails as a bug would, with a file path in its
 * message, to show that the 500 answer carries none of it.
 */
export async function debugThrow(): Promise<never> {
  throw new Error(`debug route failed on purpose in ${import.meta.url}`)
}

/**
 * GET /debug/clock?advance=<ms>, served only with EXAMPLE_DEBUG_ROUTES=1 and EXAMPLE_TEST_CLOCK=1: lets time
 * pass on the test clock (the e2e tests wait for refills this way, never by sleeping).
 */
export function debugClock(advance: unknown): JsonResult {
  const ms = Number(advance)
  if (process.env.EXAMPLE_TEST_CLOCK !== '1' || !Number.isInteger(ms) || ms < 0) {
    return json(404, { type: 'about:blank', title: 'Not Found', status: 404 })
  }
  advanceTestClock(ms)
  return json(200, { advancedMs: ms })
}
