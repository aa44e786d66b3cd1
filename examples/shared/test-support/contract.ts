import type { ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROUTES } from '../src/http.js'
import { ADMIN_TOKEN, startExample, stop } from './example-process.js'
import { parseExposition, total } from './exposition.js'

const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded'
const FREE_POLICY = '"user";q=10;w=1, "org";q=50;w=1, "global";q=5000;w=1'
const ENTERPRISE_POLICY = '"user";q=1000;w=1, "org";q=5000;w=1, "global";q=5000;w=1'
const STATE = /^"user";r=\d+;t=\d+, "org";r=\d+;t=\d+, "global";r=\d+;t=\d+$/

/** The status of a GET sent from a given loopback address (a client of its own for the anonymous, per-IP bucket). */
function statusFrom(base: string, path: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { localAddress }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

/** What no answer of an example may carry: an HTML page, a stack frame, a file path. */
const INTERNALS = /<html|<!doctype|<body|\bat .+:\d+:\d+|file:\/\/|\/[\w.-]+\/[\w.-]+\.(?:ts|js|mjs|cjs)\b/i

/** Asserts a problem+json answer with this status and no internals; returns its body. */
async function expectProblem(res: Response, status: number): Promise<Record<string, unknown>> {
  const text = await res.text()
  expect(res.status, text).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(text).not.toMatch(INTERNALS)
  const body = JSON.parse(text) as Record<string, unknown>
  expect(body).toMatchObject({ status, title: expect.any(String) })
  return body
}

/**
 * Sends an admin PUT that declares a body of `declaredBytes` but sends only its first bytes and never the
 * rest: a server that reads the body before answering never answers (the test then times out).
 */
function putWithUnfinishedBody(
  url: string,
  token: string,
  declaredBytes: number,
): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/admin/tiers/free`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': String(declaredBytes),
      },
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
      })
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), text })
        req.destroy()
      })
    })
    req.on('error', reject)
    req.write('{"capacity":')
  })
}

/**
 * The contract every example API keeps (see its README), driven over real HTTP against the started
 * example. Refusals are provoked by cost, never by racing the refill clock: each loop is bounded.
 */
export function describeExampleContract(
  framework: string,
  exampleDir: string,
  options: { store: 'memory' | 'redis' } = { store: 'memory' },
): void {
  describe(`example API contract: ${framework} on ${options.store}`, () => {
    let url = ''
    let redis: RedisServer | undefined
    const children: ChildProcess[] = []
    beforeAll(async () => {
      if (options.store === 'redis') redis = await startRedis()
      const started = await startExample(exampleDir, redis?.url)
      children.push(started.child)
      expect(started.output()).toContain(`(store: ${options.store})`)
      url = started.url
    }, 40_000)
    afterAll(async () => {
      for (const child of children) await stop(child)
      await redis?.stop()
    })

    const get = (path: string, key?: string) =>
      fetch(url + path, { headers: key ? { authorization: `Bearer ${key}` } : {} })
    const admin = (method: string, path: string, body?: unknown, token = ADMIN_TOKEN) =>
      fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      })
    /** Requests until the first refusal (at most 30), returning it. */
    async function untilRefused(path: string, key?: string): Promise<Response> {
      for (let i = 0; i < 30; i++) {
        const res = await get(path, key)
        if (res.status !== 200) return res
        await res.arrayBuffer()
      }
      throw new Error(`no refusal in 30 requests to ${path}`)
    }

    it('never limits GET /health', async () => {
      for (let i = 0; i < 30; i++) expect((await get('/health')).status).toBe(200)
    })

    it('answers a tenant with the RateLimit headers of its user → org → global chain', async () => {
      const res = await get('/api/hello', 'free-alice')
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit-policy')).toBe(FREE_POLICY)
      expect(res.headers.get('ratelimit')).toMatch(STATE)
      expect(await res.json()).toMatchObject({ route: 'hello', caller: 'alice' })
    })

    it('charges 5 for /api/search', async () => {
      const res = await get('/api/search?q=tolls', 'premium-bob')
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit-policy')).toBe(
        '"user";q=100;w=1, "org";q=500;w=1, "global";q=5000;w=1',
      )
      expect(res.headers.get('ratelimit')).toMatch(/^"user";r=95;t=1, "org";r=495;t=1, "global";r=\d+;t=1$/)
      expect(await res.json()).toMatchObject({ route: 'search', cost: 5, query: 'tolls' })
    })

    it('refuses a free user over the user level with a 429 problem and Retry-After', async () => {
      const res = await untilRefused('/api/search', 'free-dave')
      expect(res.status).toBe(429)
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      // Refused by cost: fewer than the 5 tokens a search costs were left at the user level (0 when the
      // searches came within a tenth of a second; a loaded machine lets a token or more refill between them).
      expect(res.headers.get('ratelimit')).toMatch(/^"user";r=[0-4];t=\d+, /)
      expect(await res.json()).toMatchObject({
        type: QUOTA_EXCEEDED,
        status: 429,
        'violated-policies': ['user'],
      })
      // alice shares dave's org, not his user bucket.
      expect((await get('/api/hello', 'free-alice')).status).toBe(200)
    })

    it('answers an unknown key with a 401 problem', async () => {
      const res = await get('/api/hello', 'no-such-key')
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      expect(res.headers.get('ratelimit')).toMatch(/^"user";r=\d+;t=\d+, "global";/)
      expect(await res.json()).toMatchObject({ status: 401, title: 'Unauthorized' })
      // An inherited property name is not a key either.
      await expectProblem(await get('/api/hello', '__proto__'), 401)
    })

    it('limits requests without a key per client address at capacity 5', async () => {
      const first = await get('/api/hello')
      expect(first.status).toBe(200)
      expect(first.headers.get('ratelimit-policy')).toBe('"user";q=5;w=5, "global";q=5000;w=1')
      const res = await untilRefused('/api/hello')
      expect(res.status).toBe(429)
      expect(await res.json()).toMatchObject({ type: QUOTA_EXCEEDED, 'violated-policies': ['user'] })
    })

    it('guards the admin routes with ADMIN_TOKEN', async () => {
      const res = await admin('GET', '/admin/orgs/acme', undefined, 'wrong')
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      // Tokens of another length, a prefix and an extension of the right one: all 401, none a 500.
      for (const token of [ADMIN_TOKEN.slice(0, -1), `${ADMIN_TOKEN}x`, 'x'.repeat(500)]) {
        await expectProblem(await admin('GET', '/admin/orgs/acme', undefined, token), 401)
      }
      await expectProblem(await fetch(`${url}/admin/orgs/acme`), 401)
    })

    it('checks the admin token before reading a body', async () => {
      const denied = await putWithUnfinishedBody(url, 'wrong', 100 * 1024)
      expect(denied.status).toBe(401)
      expect(denied.contentType).toMatch(/^application\/problem\+json/)
      // Authorized, a declared 100 KB is refused as it arrives, before a byte of it is read.
      const tooLarge = await putWithUnfinishedBody(url, ADMIN_TOKEN, 100 * 1024)
      expect(tooLarge.status).toBe(413)
      expect(tooLarge.contentType).toMatch(/^application\/problem\+json/)
    })

    it('answers a 100 KB admin body with a 413 problem, sent whole or in chunks', async () => {
      const big = JSON.stringify({
        capacity: 20,
        refill: { tokens: 20, per: '1s' },
        pad: 'x'.repeat(100 * 1024),
      })
      await expectProblem(await admin('PUT', '/admin/tiers/free', big), 413)
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          const chunk = new TextEncoder().encode(big.slice(0, 10 * 1024))
          for (let i = 0; i < 10; i++) controller.enqueue(chunk)
          controller.close()
        },
      })
      const res = await fetch(`${url}/admin/tiers/free`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: chunked,
        duplex: 'half',
      } as RequestInit)
      await expectProblem(res, 413)
      // The client's next body is read as usual (a connection left with unread bytes would hang it).
      await expectProblem(await admin('PUT', '/admin/orgs/acme/tier', '{"tier":'), 400)
      // Nothing changed: the free tier still has its limits.
      expect((await get('/api/hello', 'free-alice')).headers.get('ratelimit-policy')).toBe(FREE_POLICY)
    })

    it('answers malformed JSON with a 400 problem', async () => {
      for (const body of ['{"tier":', '{not json', '', 'null']) {
        const problem = await expectProblem(await admin('PUT', '/admin/orgs/acme/tier', body), 400)
        expect(problem).toMatchObject({ field: 'body' })
      }
    })

    it('answers an unknown route with a 404 problem that does not echo the path', async () => {
      for (const path of ['/nope', '/api/hello/extra', '/admin', '/<script>alert(1)</script>']) {
        const body = await expectProblem(await get(path), 404)
        expect(JSON.stringify(body)).not.toContain('script')
      }
      await expectProblem(await admin('GET', '/admin/orgs/nobody'), 404)
    })

    it('answers a wrong method with a 405 problem and Allow, on every route', async () => {
      for (const route of ROUTES) {
        const path = route.path.replace(':org', 'acme').replace(':tier', 'free')
        const wrong = route.method === 'GET' ? 'POST' : 'DELETE'
        const res = await admin(wrong, path, route.method === 'GET' ? '{}' : undefined)
        expect(res.headers.get('allow'), `${wrong} ${path}`).toContain(route.method)
        await expectProblem(res, 405)
        // The route exists under its own method.
        const right = await admin(route.method, path, route.method === 'PUT' ? '{}' : undefined)
        expect(right.status, `${route.method} ${path}`).not.toBe(405)
      }
    })

    it('answers a handler that throws with a 500 problem carrying no internals', async () => {
      const body = await expectProblem(await get('/debug/throw'), 500)
      expect(JSON.stringify(body)).not.toContain('on purpose')
      // The server goes on serving.
      expect((await get('/health')).status).toBe(200)
    })

    it('answers bad admin bodies with a 400 problem naming the field', async () => {
      const cases: [string, string, unknown, string][] = [
        ['PUT', '/admin/tiers/free', { capacity: -1, refill: { tokens: 20, per: '1s' } }, 'capacity'],
        ['PUT', '/admin/tiers/free', { capacity: 20, refill: { tokens: 20, per: 'soon' } }, 'refill.per'],
        ['PUT', '/admin/tiers/free', '{not json', 'body'],
        ['PUT', '/admin/orgs/acme/tier', { tier: 'gold' }, 'tier'],
        ['PUT', '/admin/orgs/acme/tier', [], 'body'],
      ]
      for (const [method, path, body, field] of cases) {
        const res = await admin(method, path, body)
        expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400)
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
        expect(await res.json()).toMatchObject({ status: 400, field })
      }
      expect((await admin('PUT', '/admin/tiers/platinum', { capacity: 1, refill: 1 })).status).toBe(404)
    })

    it('shows an org’s tier and bucket state', async () => {
      const res = await admin('GET', '/admin/orgs/acme')
      expect(res.status).toBe(200)
      const body = (await res.json()) as { bucket: { remaining: number }; users: { key: string }[] }
      expect(body).toMatchObject({
        org: 'acme',
        tier: 'free',
        bucket: { level: 'org', key: 'acme', limit: 50 },
      })
      expect(body.bucket.remaining).toBeLessThanOrEqual(50)
      expect(body.users.map((u) => u.key)).toEqual(['alice', 'dave'])
    })

    it('serves the limiter’s metrics to Prometheus, naming no tenant', async () => {
      const res = await get('/metrics')
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      const text = await res.text()
      const samples = parseExposition(text)
      // Earlier tests were admitted and refused (free-dave's searches over his user level, anonymous calls).
      expect(total(samples, 'tollgate_decisions_total', { outcome: 'admitted' })).toBeGreaterThan(5)
      expect(
        total(samples, 'tollgate_decisions_total', { level: 'user', outcome: 'refused', tier: 'free' }),
      ).toBeGreaterThanOrEqual(1)
      expect(
        total(samples, 'tollgate_decisions_total', { outcome: 'refused', tier: 'anonymous' }),
      ).toBeGreaterThanOrEqual(1)
      expect(total(samples, 'tollgate_store_duration_seconds_count')).toBeGreaterThan(5)
      expect(total(samples, 'tollgate_breaker_state', { state: 'closed' })).toBe(1)
      if (options.store === 'memory') expect(total(samples, 'tollgate_memory_store_keys')).toBeGreaterThan(0)
      // Levels, tiers, outcomes: never a user, an org or an address.
      expect(text).not.toMatch(/alice|dave|bob|carol|acme|globex|initech|127\.0\.0\.1|::1/)
    })

    it('lists the tiers with their limits per level, for the ops page', async () => {
      await expectProblem(await fetch(`${url}/admin/tiers`), 401)
      const res = await admin('GET', '/admin/tiers')
      expect(res.status).toBe(200)
      const body = (await res.json()) as { levels: string[]; tiers: { name: string }[] }
      expect(body.levels).toEqual(['user', 'org', 'global'])
      expect(body.tiers.map((t) => t.name)).toEqual(['free', 'premium', 'enterprise', 'anonymous'])
      expect(body.tiers[1]).toEqual({
        name: 'premium',
        plan: true,
        limits: {
          user: { capacity: 100, perSecond: 100 },
          org: { capacity: 500, perSecond: 500 },
          global: { capacity: 5000, perSecond: 5000 },
        },
      })
      // The anonymous tier is no plan an org can move to. Every level has a policy in every tier; its org
      // policy never applies (anonymous requests carry no org: see the anonymous RateLimit-Policy above).
      expect(body.tiers[3]).toEqual({
        name: 'anonymous',
        plan: false,
        limits: {
          user: { capacity: 5, perSecond: 1 },
          org: { capacity: 25, perSecond: 5 },
          global: { capacity: 5000, perSecond: 5000 },
        },
      })
    })

    it('lists every org with its tier and its users’ buckets per level', async () => {
      await expectProblem(await fetch(`${url}/admin/orgs`), 401)
      const res = await admin('GET', '/admin/orgs')
      expect(res.status).toBe(200)
      type Bucket = { level: string; remaining: number; limit: number }
      const { orgs } = (await res.json()) as {
        orgs: { org: string; tier: string; users: { user: string; buckets: Bucket[] }[] }[]
      }
      expect(orgs.map((o) => [o.org, o.tier, o.users.map((u) => u.user)])).toEqual([
        ['acme', 'free', ['alice', 'dave']],
        ['globex', 'premium', ['bob']],
        ['initech', 'enterprise', ['carol']],
      ])
      const bob = orgs[1]!.users[0]!.buckets
      expect(bob.map((b) => [b.level, b.limit])).toEqual([
        ['user', 100],
        ['org', 500],
        ['global', 5000],
      ])
      // Spending shows here too; the ops page test sees it fall, on a tier that does not refill meanwhile.
      for (const bucket of bob) expect(bucket.remaining).toBeLessThanOrEqual(bucket.limit)
    })

    it('serves the ops page without data, under a strict content security policy', async () => {
      const res = await fetch(`${url}/ops`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^text\/html/)
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("default-src 'none'")
      expect(csp).toMatch(/script-src 'sha256-[\w+/=]+'(;|$)/)
      expect(csp).toContain("connect-src 'self'")
      expect(res.headers.get('set-cookie')).toBeNull()
      const html = await res.text()
      expect(html).toContain('<title>tollgate ops</title>')
      expect(html).not.toContain('acme') // the page holds no data: it asks for the token, then the API
      expect(html).not.toContain('innerHTML')
    })

    it('moves an org to another tier at runtime', async () => {
      expect((await admin('PUT', '/admin/orgs/acme/tier', { tier: 'premium' })).status).toBe(200)
      const res = await get('/api/hello', 'free-alice')
      expect(res.headers.get('ratelimit-policy')).toBe(
        '"user";q=100;w=1, "org";q=500;w=1, "global";q=5000;w=1',
      )
      expect(await (await admin('GET', '/admin/orgs/acme')).json()).toMatchObject({ tier: 'premium' })
      expect((await admin('PUT', '/admin/orgs/acme/tier', { tier: 'free' })).status).toBe(200)
      expect((await get('/api/hello', 'free-alice')).headers.get('ratelimit-policy')).toBe(FREE_POLICY)
    })

    it('moves an org to premium at that moment: its users get premium’s refill over the next 400 ms', async () => {
      const refused = await untilRefused('/api/hello', 'free-alice') // alice's 10 at free are used up
      expect(refused.status).toBe(429)
      await refused.arrayBuffer()
      const changedAt = Date.now()
      expect((await admin('PUT', '/admin/orgs/acme/tier', { tier: 'premium' })).status).toBe(200)
      // Nobody asks for 400 ms of the example's test clock (no sleeping): then a burst.
      expect((await get('/debug/clock?advance=400')).status).toBe(200)
      let admitted = 0
      for (let i = 0; i < 80; i++) {
        const res = await get('/api/hello', 'free-alice')
        if (res.status === 200) admitted++
        await res.arrayBuffer()
      }
      // 400 ms at premium's 100/s: 40 (free's rate would give 4), plus what real time added meanwhile.
      const realMs = Date.now() - changedAt
      expect(admitted).toBeGreaterThanOrEqual(40)
      expect(admitted).toBeLessThanOrEqual(40 + Math.ceil(realMs / 10) + 1)
      expect((await admin('PUT', '/admin/orgs/acme/tier', { tier: 'free' })).status).toBe(200)
    })

    if (options.store === 'redis') {
      // It starts a second example through tsx, which alone can outlast the default 5 s on a loaded machine.
      it('shares one budget and one registry between two servers on the same Redis', async () => {
        const second = await startExample(exampleDir, redis!.url)
        children.push(second.child)
        // An anonymous client from an address no other test uses has a full bucket of 5 (1 token/s);
        // alternating between the two servers, one shared budget admits 5, two separate ones would admit 10.
        const started = Date.now()
        let admitted = 0
        for (let i = 0; i < 10; i++) {
          const status = await statusFrom(i % 2 === 0 ? url : second.url, '/api/hello', '127.0.0.42')
          if (status === 200) admitted++
        }
        const refilled = Math.floor((Date.now() - started) / 1000)
        expect(admitted).toBeGreaterThanOrEqual(5)
        expect(admitted).toBeLessThanOrEqual(5 + refilled)
        // A tier change made through one server is what the other one applies.
        expect((await admin('PUT', '/admin/orgs/globex/tier', { tier: 'enterprise' })).status).toBe(200)
        let policy: string | null = null
        for (let i = 0; i < 50 && policy !== ENTERPRISE_POLICY; i++) {
          const res = await fetch(`${second.url}/api/hello`, {
            headers: { authorization: 'Bearer premium-bob' },
          })
          policy = res.headers.get('ratelimit-policy')
          await res.arrayBuffer()
          if (policy !== ENTERPRISE_POLICY) await new Promise((resolve) => setTimeout(resolve, 20))
        }
        expect(policy).toBe(ENTERPRISE_POLICY)
      }, 40_000)
    }

    it('changes a tier’s limits at runtime, the org level following at 5×', async () => {
      const limits = { capacity: 2000, refill: { tokens: 2000, per: '1s' } }
      expect((await admin('PUT', '/admin/tiers/enterprise', limits)).status).toBe(200)
      const res = await get('/api/hello', 'enterprise-carol')
      expect(res.headers.get('ratelimit-policy')).toBe(
        '"user";q=2000;w=1, "org";q=10000;w=1, "global";q=5000;w=1',
      )
    })

    if (options.store === 'redis') {
      // Last: it stops Redis.
      it('answers an admin call failing on a dead Redis with a 500 problem, no internals; metrics show the outage', async () => {
        await redis!.stop()
        const body = await expectProblem(
          await admin('PUT', '/admin/orgs/acme/tier', { tier: 'premium' }),
          500,
        )
        expect(JSON.stringify(body)).not.toMatch(/redis|ECONN|stream|offline|127\.0\.0\.1|:\d{4,5}\b/i)
        // Decisions go on in-process meanwhile (onStoreError 'local'), and the metrics say so.
        expect((await get('/api/hello', 'free-alice')).status).toBe(200)
        const samples = parseExposition(await (await get('/metrics')).text())
        expect(total(samples, 'tollgate_store_errors_total')).toBeGreaterThanOrEqual(1)
        expect(total(samples, 'tollgate_fallback_decisions_total', { mode: 'local' })).toBeGreaterThanOrEqual(
          1,
        )
        expect(total(samples, 'tollgate_decisions_total', { outcome: 'degraded' })).toBeGreaterThanOrEqual(1)
      })
    }
  })
}
