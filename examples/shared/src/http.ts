import type { IncomingMessage } from 'node:http'
import {
  ErrorCode,
  invalidRequestProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  TollgateError,
} from '@tollgate/core'

/** A response the framework glue sends as is. */
export interface JsonResult {
  status: number
  contentType: string
  body: unknown
}

export const json = (status: number, body: unknown): JsonResult => ({
  status,
  contentType: 'application/json',
  body,
})

export const problem = (body: ProblemDetails): JsonResult => ({
  status: body.status,
  contentType: PROBLEM_CONTENT_TYPE,
  body,
})

export const unauthorized = (detail: string): JsonResult =>
  problem({ type: 'about:blank', title: 'Unauthorized', status: 401, detail })
export const notFound = (detail: string): JsonResult =>
  problem({ type: 'about:blank', title: 'Not Found', status: 404, detail })
export const badRequest = (detail: string, field: string, code?: string): JsonResult =>
  problem(invalidRequestProblem(detail, field, code))

/** Reads a raw request body as text (for frameworks that have not parsed it), at most 64 KiB. */
export async function readBody(req: IncomingMessage, limit = 65_536): Promise<string> {
  let text = ''
  for await (const chunk of req) {
    text += chunk
    if (text.length > limit)
      throw new TollgateError(ErrorCode.InvalidOption, 'body is too large', { field: 'body' })
  }
  return text
}
