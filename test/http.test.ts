import { connect } from 'node:net'
import { createLimiter, type HeaderPair, type Limiter } from '@tollgate/core'
import { memoryStore } from '@tollgate/memory'
import fc from 'fast-check'
import supertest from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'
import { FRAMEWORKS, type Framework, type RunningApp, startApp } from './support/apps'
import { headerProblems } from './support/headers'
import { summary } from './support/summary'

/**
 * Identity (issue 6, item 5) and hostile HTTP headers (item 4) through the three adapters, over real
 * loopback sockets. Which bucket a request hit is read from the limiter's decision events.
 */

const running: RunningApp[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()))
})

function watchedLimiter(capacity = 100): { limiter: Limiter; keys: string[] } {
  const limiter = createLimiter({
    store: memoryStore({ maxKeys: 10_000 }),
    policy: { capacity, refill: { tokens: 1, per: '1h' } },
  })
  const keys: string[] = []
  limiter.on((event) => {
    if (event.type === 'decision') keys.push(event.decision.levels[0]?.key ?? '')
  })
  return { limiter, keys }
}

async function start(framework: Framework, options: Parameters<typeof startApp>[1]): Promise<RunningApp> {
  const app = await startApp(framework, options)
  running.push(app)
  return app
}

const hasIpv6Loopback = await (async () => {
  const { createServer } = await import('node:net')
  return new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(0, '::1', () => server.close(() => resolve(true)))
  })
})()

describe.each(FRAMEWORKS)('identity through @tollgate/%s (issue 6, item 5)', (framework) => {
  it('trust proxy off: a spoofed X-Forwarded-For is ignored', async () => {
    const { limiter, keys } = watchedLimiter()
    const app = await start(framework, { limiter, trustProxy: false })
    for (const spoof of ['9.9.9.9', '1.1.1.1, 2.2.2.2', '2001:db8::1']) {
      await supertest(app.url).get('/x').set('X-Forwarded-For', spoof).expect(200)
    }
    expect(keys).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1'])
  })

  it('trust proxy of one hop: the address our proxy appended is used, not the spoofable left one', async () => {
    const { limiter, keys } = watchedLimiter()
    const app = await start(framework, { limiter, trustProxy: 1 })
    await supertest(app.url).get('/x').set('X-Forwarded-For', '1.1.1.1, 2.2.2.2').expect(200)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '6.6.6.6, 2.2.2.2').expect(200)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '3.3.3.3').expect(200)
    expect(keys).toEqual(['2.2.2.2', '2.2.2.2', '3.3.3.3'])
  })

  it('addresses inside one IPv6 /56 share a bucket; the next /56 does not', async () => {
    const { limiter, keys } = watchedLimiter(3)
    const app = await start(framework, { limiter, trustProxy: 1 })
    const inside = ['2001:db8:1:100::1', '2001:db8:1:1ff:ffff:ffff:ffff:ffff', '2001:0DB8:0001:01a0::9']
    for (const address of inside)
      await supertest(app.url).get('/x').set('X-Forwarded-For', address).expect(200)
    // The shared bucket (capacity 3) is now empty for every address of the /56.
    await supertest(app.url).get('/x').set('X-Forwarded-For', '2001:db8:1:142::7').expect(429)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '2001:db8:1:200::1').expect(200)
    expect(new Set(keys.slice(0, 4))).toEqual(new Set(['2001:db8:1:100::/56']))
    expect(keys[4]).toBe('2001:db8:1:200::/56')
  })

  it('::ffff:1.2.3.4 and 1.2.3.4 share a bucket', async () => {
    const { limiter, keys } = watchedLimiter(2)
    const app = await start(framework, { limiter, trustProxy: 1 })
    await supertest(app.url).get('/x').set('X-Forwarded-For', '::ffff:1.2.3.4').expect(200)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '1.2.3.4').expect(200)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '::FFFF:1.2.3.4').expect(429)
    await supertest(app.url).get('/x').set('X-Forwarded-For', '::ffff:0102:0304').expect(429)
    expect(keys).toEqual(['1.2.3.4', '1.2.3.4', '1.2.3.4', '1.2.3.4'])
  })

  it('real sockets: an IPv4 client of a dual-stack server (::ffff:127.0.0.1) shares the bucket of 127.0.0.1', async () => {
    const { limiter, keys } = watchedLimiter(2)
    const v4 = await start(framework, { limiter, trustProxy: false, host: '127.0.0.1' })
    await supertest(v4.url).get('/x').expect(200)
    if (!hasIpv6Loopback) {
      summary(`identity ${framework}`, { dualStack: 'skipped: no IPv6 loopback here' })
      return
    }
    const dual = await start(framework, { limiter, trustProxy: false, host: '::' })
    await supertest(`http://127.0.0.1:${dual.port}`).get('/x').expect(200)
    await supertest(`http://127.0.0.1:${dual.port}`).get('/x').expect(429)
    const v6 = await start(framework, { limiter, trustProxy: false, host: '::1' })
    await supertest(v6.url).get('/x').expect(200)
    expect(keys).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '::/56'])
  })
})

/** Sends raw bytes (no client-side header validation) and reads the status line and headers. */
function rawRequest(port: number, head: Buffer): Promise<{ status: number; headers: HeaderPair[] }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const [statusLine = '', ...lines] = text.split('\r\n\r\n')[0]!.split('\r\n')
      const status = Number(statusLine.split(' ')[1])
      const headers = lines.map((line): HeaderPair => {
        const colon = line.indexOf(':')
        return [line.slice(0, colon), line.slice(colon + 1).trim()]
      })
      resolve({ status, headers })
    })
    socket.end(head)
  })
}

const RATE_HEADERS = new Set(['ratelimit-policy', 'ratelimit', 'retry-after'])
/** Header names as core writes them, for the header checker. */
const canonical = (name: string) =>
  name.toLowerCase() === 'ratelimit-policy'
    ? 'RateLimit-Policy'
    : name.toLowerCase() === 'ratelimit'
      ? 'RateLimit'
      : 'Retry-After'

describe('hostile HTTP headers through the adapters (issue 6, item 4)', () => {
  it('Authorization, X-Forwarded-For, Forwarded: long, non-ASCII, malformed — never a 500', async () => {
    const valueArb = fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
      { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '',
          ' ',
          ',',
          ', ,',
          'unknown',
          '[::1]:80',
          'for="_gazonk"',
          'for=192.0.2.60;proto=http;by=203.0.113.43',
          '::ffff:1.2.3.4',
          '1.1.1.1, 2.2.2.2',
          'Bearer ',
          'Bearer',
          'Basic Og==',
        ),
      },
      { weight: 2, arbitrary: fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended()) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom('a', 'é', '1.1.1.1, ', '🦀'), fc.integer({ min: 100, max: 12_000 }))
          .map(([s, n]) => s.repeat(n)),
      },
    )
    const requestArb = fc.record(
      { authorization: valueArb, 'x-forwarded-for': valueArb, forwarded: valueArb, 'x-real-ip': valueArb },
      { requiredKeys: [] },
    )
    const statuses = new Map<number, number>()
    let cases = 0
    for (const framework of FRAMEWORKS) {
      for (const trustProxy of [false, 1] as const) {
        const limiter = createLimiter({
          store: memoryStore({ maxKeys: 10_000 }),
          levels: ['user', 'global'],
          policy: { capacity: 5, refill: { tokens: 1, per: '1s' } },
        })
        // Tenants from the API key, as the examples do; no key falls back to the client address.
        const subject = (headers: Record<string, string | string[] | undefined>) => {
          const auth = headers.authorization
          return typeof auth === 'string' && auth.startsWith('Bearer ') ? { user: auth.slice(7) } : undefined
        }
        const app = await start(framework, { limiter, trustProxy, subject })
        await fc.assert(
          fc.asyncProperty(requestArb, async (fields) => {
            cases++
            // Header values as raw UTF-8 bytes: CR and LF would end the header, so they become spaces.
            const lines = Object.entries(fields).map(
              ([name, value]) => `${name}: ${value!.replace(/[\r\n]/g, ' ')}\r\n`,
            )
            const head = Buffer.from(
              `GET /x HTTP/1.1\r\nHost: localhost\r\n${lines.join('')}Connection: close\r\n\r\n`,
            )
            const { status, headers } = await rawRequest(app.port, head)
            statuses.set(status, (statuses.get(status) ?? 0) + 1)
            // 400: the parser or tollgate refused the request (e.g. an empty key); 431: headers too large.
            expect([200, 400, 429, 431]).toContain(status)
            const rate = headers.filter(([name]) => RATE_HEADERS.has(name.toLowerCase()))
            expect(headerProblems(rate.map(([name, value]): HeaderPair => [canonical(name), value]))).toEqual(
              [],
            )
            if (status === 200 || status === 429) expect(rate.length).toBeGreaterThanOrEqual(2)
          }),
          { numRuns: 500, seed: 6_2026 + cases, endOnFailure: true },
        )
        await app.close()
        running.splice(running.indexOf(app), 1)
      }
    }
    summary('http header fuzz', {
      cases,
      statuses: [...statuses].map(([s, n]) => `${s}:${n}`).join(','),
    })
  })
})
