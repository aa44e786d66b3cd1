import { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import supertest from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'
import { type DocBlock, writeBlocks } from '../../scripts/check-docs.mjs'

// Every block that is not an excerpt runs. A block starts its server as a reader would (`app.listen(3000)`);
// here every listen goes to a free loopback port instead, so blocks never collide with each other or the demo.
const started: Server[] = []
const listen = Server.prototype.listen as (this: Server, ...args: unknown[]) => Server
Server.prototype.listen = function (this: Server, ...args: unknown[]) {
  started.push(this)
  const callback = args.find((arg) => typeof arg === 'function') as (() => void) | undefined
  return listen.call(this, 0, '127.0.0.1', callback)
} as typeof Server.prototype.listen

afterEach(async () => {
  for (const server of started.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

async function listening(): Promise<Server> {
  for (let i = 0; i < 200 && !started.some((s) => s.listening); i++)
    await new Promise((r) => setTimeout(r, 5))
  const server = started.find((s) => s.listening)
  if (!server) throw new Error('the block started no server')
  return server
}

const blocks = writeBlocks()
const runnable = (kind: DocBlock['kind']) =>
  blocks.filter((b) => b.kind === kind).map((b) => [b.name, b] as const)

describe('docs: quick starts', () => {
  it('has one in the README and in each adapter README', () => {
    const sources = new Set(blocks.filter((b) => b.kind === 'quickstart').map((b) => b.source))
    for (const page of [
      'README.md',
      'packages/express/README.md',
      'packages/koa/README.md',
      'packages/fastify/README.md',
    ])
      expect(sources, page).toContain(page)
  })

  it.each(runnable('quickstart'))('%s starts, answers, and refuses past its limit', async (_name, block) => {
    await import(block.file)
    const { port } = (await listening()).address() as AddressInfo
    const http = supertest(`http://127.0.0.1:${port}`)
    const first = await http.get('/').expect(200)
    const quota = /q=(\d+)/.exec(String(first.headers['ratelimit-policy']))
    expect(quota, 'a RateLimit-Policy with a quota').not.toBeNull()
    for (let i = 1; i < Number(quota![1]); i++) await http.get('/').expect(200)
    const refused = await http.get('/').expect(429)
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
  })
})

describe('docs: blocks that run', () => {
  it.each(runnable('run'))('%s runs', async (_name, block) => {
    await expect(import(block.file)).resolves.toBeDefined()
  })
})
