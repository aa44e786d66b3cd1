import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { admit, holdRequest } from '../src/entries/node.js'
import type { PassOutcome } from '../src/http-types.js'

const servers: Server[] = []
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    server.close()
  }
})

/** One request to a server whose handler is `handle`; resolves when the response ends or the socket closes. */
async function exchange(
  handle: Parameters<typeof createServer>[1],
  abortAfterMs?: number,
): Promise<number | undefined> {
  const server = createServer(handle!)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
      res.on('close', () => resolve(res.statusCode))
    })
    req.on('error', () => resolve(undefined))
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs)
    req.end()
  })
}

const pass = (delayMs: number, events: string[]): PassOutcome =>
  ({
    action: 'pass',
    delayMs,
    headers: [],
    decision: {} as PassOutcome['decision'],
    settle: (status) => events.push(`settle ${status}`),
    abandon: () => events.push('abandon'),
  }) as PassOutcome

describe('@tollgate/core/node', () => {
  it('admits at once without a delay and settles with the status sent', async () => {
    const events: string[] = []
    const status = await exchange((_req, res) => {
      expect(admit(pass(0, events), res)).toBe(true)
      res.statusCode = 503
      res.end()
    })
    expect(status).toBe(503)
    await new Promise((resolve) => setImmediate(resolve))
    expect(events).toEqual(['settle 503'])
  })

  it('holds a delayed request, then admits it', async () => {
    const events: string[] = []
    const status = await exchange(async (_req, res) => {
      expect(await admit(pass(5, events), res)).toBe(true)
      res.end()
    })
    expect(status).toBe(200)
    await new Promise((resolve) => setImmediate(resolve))
    expect(events).toEqual(['settle 200'])
  })

  it('abandons a held request whose client leaves, and never settles it', async () => {
    const events: string[] = []
    let passed: boolean | undefined
    await exchange(async (_req, res) => {
      passed = await admit(pass(60_000, events), res)
    }, 20)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(passed).toBe(false)
    expect(events).toEqual(['abandon'])
  })

  it('settles with undefined when the client leaves before the response ends', async () => {
    const events: string[] = []
    await exchange((_req, res) => {
      admit(pass(0, events), res)
      res.write('partial')
    }, 20)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(events).toEqual(['settle undefined'])
  })

  it('holdRequest resolves false at once on a destroyed response', async () => {
    await exchange(async (_req, res) => {
      res.destroy()
      expect(await holdRequest(60_000, res)).toBe(false)
    }, 50)
  })
})
