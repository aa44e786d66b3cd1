import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import { invalidRequestProblem, PROBLEM_CONTENT_TYPE, type ProblemDetails } from '@tollgate/core'

/** A response the framework glue sends as is. */
export interface JsonResult {
  status: number
  contentType: string
  body: unknown
  /** Extra response headers (e.g. `Allow` on a 405). */
  headers?: Readonly<Record<string, string>>
}

export const json = (status: number, body: unknown): JsonResult => ({
  status,
  contentType: 'application/json',
  body,
})

export const problem = (body: ProblemDetails, headers?: Record<string, string>): JsonResult => ({
  status: body.status,
  contentType: PROBLEM_CONTENT_TYPE,
  body,
  ...(headers ? { headers } : {}),
})

/** A problem with the status's standard title (`about:blank` problems use it, RFC 9457 §4.2.1). */
const statusProblem = (status: number, detail: string, headers?: Record<string, string>): JsonResult =>
  problem({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail }, headers)

export const unauthorized = (detail: string): JsonResult => statusProblem(401, detail)
export const notFound = (detail: string): JsonResult => statusProblem(404, detail)
export const badRequest = (detail: string, field: string, code?: string): JsonResult =>
  problem(invalidRequestProblem(detail, field, code))

/** Request bodies (admin JSON) are small: anything larger is refused with a 413. */
export const BODY_LIMIT = 65_536

export const payloadTooLarge = (limit = BODY_LIMIT): JsonResult =>
  statusProblem(413, `The request body is over the limit of ${limit} bytes`)

/**
 * What the server still reads, and throws away, of a body it answered without reading whole (a 401 or a
 * 413): the client then finishes sending and reads the answer, and its connection stays usable. A longer
 * body has its connection cut.
 */
export const DISCARD_LIMIT = 1_048_576

/**
 * Call once per server. After each response, the unread rest of its request body is discarded, up to
 * DISCARD_LIMIT bytes. (Node drains only a body nobody began to read, and without a bound; a body read in
 * part and left paused would stall the next request on the connection.)
 */
export function discardUnreadBodies(server: Server): void {
  server.on('request', (req: IncomingMessage, res) => {
    res.once('finish', () => {
      if (req.complete) return
      let size = 0
      req.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > DISCARD_LIMIT) req.socket.destroy()
      })
      req.resume()
    })
  })
}

/** Thrown by the examples' own code when a request must end with a given problem (a body over the limit). */
export class ProblemError extends Error {
  constructor(readonly result: JsonResult) {
    super(String((result.body as ProblemDetails).title))
    this.name = 'ProblemError'
  }
}

/**
 * Reads a raw request body as UTF-8 text (for frameworks that have not parsed it), at most `limit` bytes.
 * A declared Content-Length over the limit is refused before a byte is read; a longer stream stops being
 * read at the limit.
 */
export function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<string> {
  if (Number(req.headers['content-length']) > limit)
    return Promise.reject(new ProblemError(payloadTooLarge(limit)))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const settle = (error: Error | undefined) => {
      req.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose)
      if (error) {
        req.pause()
        reject(error)
      } else resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) settle(new ProblemError(payloadTooLarge(limit)))
      else chunks.push(chunk)
    }
    const onEnd = () => settle(undefined)
    const onClose = () => settle(new Error('the client went away before its request body ended'))
    req.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose)
  })
}

/** Every route the examples serve, for the 404 / 405 answers (each main.ts registers the same ones). */
export const ROUTES: readonly { method: 'GET' | 'PUT'; path: string }[] = [
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/api/hello' },
  { method: 'GET', path: '/api/search' },
  { method: 'GET', path: '/admin/orgs' },
  { method: 'GET', path: '/admin/orgs/:org' },
  { method: 'PUT', path: '/admin/orgs/:org/tier' },
  { method: 'GET', path: '/admin/tiers' },
  { method: 'PUT', path: '/admin/tiers/:tier' },
  { method: 'GET', path: '/ops' },
  { method: 'GET', path: '/metrics' },
]

const matches = (pattern: string, path: string): boolean => {
  const want = pattern.split('/')
  const got = path.split('/')
  return want.length === got.length && want.every((part, i) => part.startsWith(':') || part === got[i])
}

/**
 * The answer to a request no route took: 405 with `Allow` when the path exists under another method,
 * else 404. Neither echoes the path back.
 */
export function unmatchedRoute(method: string, url: string): JsonResult {
  const path = url.split('?')[0]!.replace(/(.)\/+$/, '$1')
  const allowed = ROUTES.filter((route) => matches(route.path, path)).map((route) => route.method)
  if (allowed.length === 0) return notFound('No such route')
  const allow = [...new Set(allowed.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])))].join(', ')
  return statusProblem(405, `${method} is not allowed here; allowed: ${allow}`, { allow })
}

/**
 * The answer to an error thrown anywhere in a request: the examples' own problems as they are, a client
 * error the framework raised (a bad URL, a body over the limit) as a problem with its status, anything
 * else as a 500 with no internals: the error goes to the log, never into the response.
 */
export function errorResult(error: unknown, log: (error: unknown) => void = console.error): JsonResult {
  if (error instanceof ProblemError) return error.result
  const status = statusOf(error)
  if (status === 413) return payloadTooLarge()
  if (status !== undefined && status >= 400 && status < 500 && STATUS_CODES[status]) {
    return statusProblem(status, 'The request could not be processed')
  }
  log(error)
  return statusProblem(500, 'Something went wrong on our side; it has been logged')
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown }
  const value = typeof status === 'number' ? status : statusCode
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined
}
