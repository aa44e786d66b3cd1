import { createHash } from 'node:crypto'
import { createClient, createCluster } from '@redis/client'
import {
  type CheckOptions,
  createLimiter,
  ErrorCode,
  normalizePolicy,
  type Policy,
  type Subject,
  TollgateError,
} from '@tollgate/core'
import { InProcessStore, type Store } from '@tollgate/core/store'
import { consumeOps, manualClock, type RedisServer, startRedis, type TestOp } from '@tollgate/testkit'
import fc from 'fast-check'
import { Cluster, Redis } from 'ioredis'
import { createClient as createClientV5, createCluster as createClusterV5 } from 'redis-v5'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisClient, redisStore } from '../src/index.js'
import { connect, recordFcalls, uniquePrefix } from './helpers.js'

let server: RedisServer
let client: Redis

beforeAll(async () => {
  server = await startRedis()
  client = await connect(server.port)
})

afterAll(async () => {
  await client?.quit()
  await server?.stop()
})

const policy = (capacity: number, tokens: number, per: string | number = '1s'): Policy =>
  normalizePolicy({ capacity, refill: { tokens, per } })
const op = (key: string, p: Policy, cost = 1, level = 'user'): TestOp => ({ level, key, policy: p, cost })

function expectOptionError(make: () => unknown, field: string): TollgateError {
  try {
    make()
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError)
    expect((error as TollgateError).code).toBe(ErrorCode.InvalidOption)
    expect((error as TollgateError).field).toBe(field)
    return error as TollgateError
  }
  throw new Error('expected an option error')
}

describe('options', () => {
  it('refuses a client whose offline queue is on, saying how to fix it', () => {
    const queued = new Redis({ lazyConnect: true })
    const error = expectOptionError(() => redisStore({ client: queued }), 'client.options.enableOfflineQueue')
    expect(error.message).toContain('enableOfflineQueue: false')
    expect(error.message).toContain('counts twice')
    const cluster = new Cluster([{ host: '127.0.0.1', port: server.port }], { lazyConnect: true })
    expectOptionError(() => redisStore({ client: cluster }), 'client.options.enableOfflineQueue')
  })

  it('refuses a node-redis client or cluster that queues commands while disconnected, saying how to fix it', () => {
    const url = `redis://127.0.0.1:${server.port}`
    const rootNodes = [{ url }]
    type Options = { url?: string; disableOfflineQueue?: boolean }
    type ClusterOptions = { rootNodes: { url: string }[]; defaults?: Options }
    const libraries: [(o: Options) => RedisClient, (o: ClusterOptions) => RedisClient][] = [
      [(o) => createClient(o), (o) => createCluster(o)],
      [(o) => createClientV5(o), (o) => createClusterV5(o)],
    ]
    for (const [create, createCl] of libraries) {
      // The default (disableOfflineQueue: false) and an explicit false are both refused.
      for (const client of [create({ url }), create({ url, disableOfflineQueue: false })]) {
        const error = expectOptionError(() => redisStore({ client }), 'client.options.disableOfflineQueue')
        expect(error.message).toContain('disableOfflineQueue: true')
        expect(error.message).toContain('counts twice')
      }
      for (const cluster of [
        createCl({ rootNodes }),
        createCl({ rootNodes, defaults: { disableOfflineQueue: false } }),
      ]) {
        const error = expectOptionError(
          () => redisStore({ client: cluster }),
          'client.options.defaults.disableOfflineQueue',
        )
        expect(error.message).toContain('defaults: { disableOfflineQueue: true }')
      }
      // Made right, neither is refused (nor connected: the store never opens a client).
      const client = create({ url, disableOfflineQueue: true })
      void redisStore({ client }).close?.()
      const cluster = createCl({ rootNodes, defaults: { disableOfflineQueue: true } })
      void redisStore({ client: cluster }).close?.()
    }
  })

  it('names the bad option and value', () => {
    expectOptionError(() => redisStore({ client: {} as Redis }), 'client')
    expectOptionError(() => redisStore({ client, prefix: 'a{b}:' }), 'prefix')
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '50' as unknown as number]) {
      expectOptionError(() => redisStore({ client, timeoutMs }), 'timeoutMs')
    }
    expectOptionError(() => redisStore({ client, registryRefreshMs: 0 }), 'registryRefreshMs')
    expectOptionError(() => redisStore({ client, clock: 5 as unknown as () => number }), 'clock')
  })
})

describe('decisions on Redis time', () => {
  it("takes now from Redis's TIME, not from this process", async () => {
    const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 2000 })
    const [before] = await client.time()
    const result = await consumeOps(store, [op('t', policy(10, 10))])
    const [after] = await client.time()
    expect(result.now).toBeGreaterThanOrEqual(Number(before) * 1000)
    expect(result.now).toBeLessThan((Number(after) + 1) * 1000)
    await store.close?.()
  })

  it('expires a key when its bucket is full again, never for rate 0, and writes nothing on a peek', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, timeoutMs: 2000 })
    const refilling = await consumeOps(store, [op('a', policy(10, 1, '1s'), 3)])
    expect(refilling.results[0]!.resetAfterMs).toBe(3000)
    const ttl = await client.pttl(`${prefix}{user:a}`)
    expect(ttl).toBeGreaterThan(2500)
    expect(ttl).toBeLessThanOrEqual(3000)
    // The same TTL again: sent as a number the first time, then as the text the script formats once and keeps.
    for (const key of ['b', 'c', 'd']) {
      expect((await consumeOps(store, [op(key, policy(10, 1, '1s'), 3)])).results[0]!.resetAfterMs).toBe(3000)
      const again = await client.pttl(`${prefix}{user:${key}}`)
      expect(again).toBeGreaterThan(2500)
      expect(again).toBeLessThanOrEqual(3000)
    }
    await consumeOps(store, [op('frozen', normalizePolicy({ capacity: 3, refill: 0 }))])
    expect(await client.pttl(`${prefix}{user:frozen}`)).toBe(-1)
    await consumeOps(store, [op('peek', policy(10, 1), 0)])
    expect(await client.exists(`${prefix}{user:peek}`)).toBe(0)
    expect(await store.reset('default', 'user', 'a')).toBe(true)
    expect(await store.reset('default', 'user', 'a')).toBe(false)
    await store.close?.()
  })

  it('reads bucket states in the layouts of earlier releases (five and six varints)', async () => {
    const clock = manualClock()
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, clock: clock.now, timeoutMs: 2000 })
    const p = policy(10, 10) // tb:10:1:100: one token per 100 ms
    expect(p.id).toBe('tb:10:1:100')
    const varints = (...values: number[]) => {
      const bytes: number[] = []
      for (let n of values) {
        while (n >= 128) {
          bytes.push(128 + (n % 128))
          n = Math.floor(n / 128)
        }
        bytes.push(n)
      }
      return Buffer.from(bytes)
    }
    const now = clock.now()
    // 3 tokens owed: tat 300 ms ahead. Five varints: tat, frac, capacity, tokens, per (no epoch).
    await client.set(`${prefix}{user:five}`, varints(now + 300, 0, 10, 1, 100), 'PX', 60_000)
    // Six: the same and zigzag(tat - epoch), written at now.
    await client.set(`${prefix}{user:six}`, varints(now + 300, 0, 10, 1, 100, 600), 'PX', 60_000)
    const { results } = await consumeOps(store, [op('five', p), op('six', p)])
    expect(results.map((r) => [r.allowed, r.remaining])).toEqual([
      [true, 6],
      [true, 6],
    ])
    await store.close?.()
  })

  it('converts a state to another policy in integers, as core does: not a ms longer than the tokens missing', async () => {
    const clock = manualClock()
    const store = redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 2000 })
    const oneAt03 = { capacity: 1, refill: 0.3 }
    const limiter = createLimiter({ store, clock: clock.now, levels: ['user'], policies: { user: oneAt03 } })
    // 1 of 1 spent at 0.3/s; 27 ms later 0.0081 of a token is back, and the tenant gets 17 per hour: 16.9919
    // tokens are missing, exactly 61,170,840 ms (floating point in the script made it a ms more).
    await limiter.check({ user: 'u1' })
    clock.advance(27)
    await limiter.createBucket(
      { level: 'user', key: 'u1' },
      { capacity: 17, refill: { tokens: 1, per: '1h' } },
    )
    const peek = await limiter.check({ user: 'u1' }, { cost: 0 })
    expect(peek).toMatchObject({ allowed: false, remaining: 0, resetAfterMs: 61_170_840 })
    await limiter.close()
    await store.close?.()
  })

  it('deletes the records of answered calls sixteen at a time: records live while a reply may be lost', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, timeoutMs: 2000 })
    const records = async () => (await client.keys(`${prefix}*:call:*`)).length
    // One after the other: each decision is its own call. The 17th carries the 16 records answered before it;
    // the last four wait for a later call (or expire).
    for (let i = 0; i < 20; i++) await consumeOps(store, [op(`r${i}`, policy(10, 10))])
    expect(await records()).toBe(4)
    await store.close?.()
    // Without a record a re-sent call would apply twice: they are still written, for rememberCallsMs.
    const remembering = redisStore({ client, prefix, timeoutMs: 2000, rememberCallsMs: 60_000 })
    await consumeOps(remembering, [op('last', policy(10, 10))])
    const [last] = await client.keys(`${prefix}{user:last}:call:*`)
    expect(await client.pttl(last!)).toBeGreaterThan(50_000)
    await remembering.close?.()
  })

  it('keeps a bucket state within 100 bytes of MEMORY USAGE for per-second and per-minute tiers', async () => {
    const prefix = 'tollgate:'
    const store = redisStore({ client, prefix, timeoutMs: 2000 })
    const measure = async (key: string, p: Policy) => {
      await consumeOps(store, [op(key, p, 7)])
      const bytes = Number(await client.call('MEMORY', 'USAGE', `${prefix}{user:${key}}`))
      await store.reset('default', 'user', key)
      return bytes
    }
    const typical: [string, Policy][] = [
      ['tenant-000123', policy(10, 10)],
      ['u_8f3a9c2e', policy(100, 100)],
      ['ent-42', policy(1000, 1000)],
      ['acme', normalizePolicy({ capacity: 10, refill: 0.3 })],
      ['org-7', policy(50, 7, '1m')],
    ]
    const usage = []
    for (const [key, p] of typical) usage.push(await measure(key, p))
    // A key name over 36 characters, or an hour-long interval (a longer varint), crosses the next
    // jemalloc size class: reported and bounded, not under 100.
    const longer = [
      await measure('enterprise-customer-42', policy(1000, 1000)),
      await measure('hourly', normalizePolicy({ capacity: 1_000_000, refill: { tokens: 1, per: '1h' } })),
    ]
    console.info(
      `MEMORY USAGE per bucket key: ${usage.join(', ')} bytes; long name, 1/h: ${longer.join(', ')} bytes`,
    )
    for (const bytes of usage) expect(bytes).toBeLessThanOrEqual(100)
    for (const bytes of longer) expect(bytes).toBeLessThanOrEqual(120)
    await store.close?.()
  })

  const commandCalls = async (c: Redis, name: string) => {
    const line = (await c.info('commandstats')).split('\r\n').find((l) => l.startsWith(`cmdstat_${name}:`))
    return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0)
  }

  it('reads and writes a bucket that many decisions of one call share once per call while they charge it, in order', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, timeoutMs: 5000 })
    const user = policy(1000, 1, '1h')
    const org = policy(25, 1, '1h')
    // Warm (library loaded), then 40 decisions at once: most go as a few batch calls.
    await consumeOps(store, [op('warm', user), op('other-org', org, 1, 'org')])
    await client.config('RESETSTAT')
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => consumeOps(store, [op(`u${i}`, user), op('acme', org, 1, 'org')])),
    )
    const calls = await commandCalls(client, 'fcall')
    const gets = await commandCalls(client, 'get')
    const exists = await commandCalls(client, 'exists')
    const sets = await commandCalls(client, 'set')
    expect(calls).toBeLessThan(40)
    // Per call: the org bucket once, and again for a decision after a refusal (a refusal writes nothing for
    // the next to read), at most 15 times; each user bucket once. A call's record is looked at by the SET
    // that writes it, so it costs no GET. The registry hashes are read once per call, refusals or not.
    expect(gets).toBeGreaterThanOrEqual(calls + 40)
    expect(gets).toBeLessThanOrEqual(calls + 40 + 15)
    expect(exists).toBe(calls + 40)
    // Each call's record, each admitted user's bucket, and the org's at most once per call.
    expect(sets - calls - 25).toBeGreaterThanOrEqual(1)
    expect(sets - calls - 25).toBeLessThanOrEqual(calls)
    // Exactly the org's 25, in the order the decisions were made, each seeing the ones before it.
    const admitted = results.filter((r) => r.allowed)
    expect(admitted).toHaveLength(25)
    expect(admitted.map((r) => r.results[1]!.remaining).sort((a, b) => b - a)).toEqual(
      Array.from({ length: 25 }, (_, i) => 24 - i),
    )
    // What was written is the last state: the org is empty, and its key lives until it is full again (25 h).
    expect(
      (await consumeOps(store, [op('late', user, 0), op('acme', org, 0, 'org')])).results[1]!.remaining,
    ).toBe(0)
    const ttl = await client.pttl(`${prefix}{org:acme}`)
    expect(ttl).toBeGreaterThan(24.9 * 3_600_000)
    expect(ttl).toBeLessThanOrEqual(25 * 3_600_000)
    await store.close?.()
  })

  it('decides by FCALL, loads the library again after FUNCTION FLUSH and counts the request once', async () => {
    const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 2000 })
    const p = normalizePolicy({ capacity: 10, refill: 0 })
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(9)
    await client.function('FLUSH')
    await client.config('RESETSTAT')
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(8)
    expect(await commandCalls(client, 'function|load')).toBe(1)
    expect(await commandCalls(client, 'eval')).toBe(0)
    expect(await commandCalls(client, 'evalsha')).toBe(0)
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(7)
    await store.close?.()
  })

  it('sends two decisions of a turn alone, then four to a call, and what is left at the end of the turn', async () => {
    const sender = await connect(server.port)
    const store = redisStore({ client: sender, prefix: uniquePrefix(), timeoutMs: 2000 })
    const p = policy(100, 100)
    await consumeOps(store, [op('warm', p)])
    const calls = recordFcalls(sender)
    // Eleven in one turn: two go at once (fewer than two calls out), then every fourth sends those waiting,
    // and the last one goes at the end of the turn. One call of one decision costs Redis about three of four.
    const turn = await Promise.all(Array.from({ length: 11 }, (_, i) => consumeOps(store, [op(`g${i}`, p)])))
    // ARGV 5 is the count of decisions (after the function name, the key count and the keys).
    const sizes = () => calls.splice(0).map(({ args }) => Number(args[2 + Number(args[1]) + 4]))
    expect(sizes()).toEqual([1, 1, 4, 4, 1])
    expect(turn.map((r) => r.results[0]!.remaining)).toEqual(Array(11).fill(99))
    // One after the other, each alone: a decision never waits for another turn.
    for (let i = 0; i < 3; i++) await consumeOps(store, [op('alone', p)])
    expect(sizes()).toEqual([1, 1, 1])
    await store.close?.()
    await sender.quit()
  })

  it('answers a call sent again from its record, and runs a call whose cancel came first as nothing', async () => {
    const sender = await connect(server.port)
    const calls = recordFcalls(sender)
    const store = redisStore({ client: sender, prefix: uniquePrefix(), timeoutMs: 2000 })
    const p = normalizePolicy({ capacity: 10, refill: 0 })
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(9)
    const first = calls.at(-1)!
    // The same call again (what a client does when the reply was lost): the same reply, nothing charged.
    expect(await client.call('FCALL', ...(first.args as string[]))).toEqual(first.reply)
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(8)
    // A copy of that call under a new id, cancelled before it arrives: its run is cancelled and charges nothing.
    const copy = [...(first.args as string[])]
    copy[2] = `${copy[2]}:copy`
    const mode = 2 + Number(copy[1]) + 3
    expect(copy[mode]).toBe('run')
    const cancel = copy.map((a, i) => (i === mode ? 'cancel' : a))
    expect(await client.call('FCALL', ...cancel)).toEqual(['cancelled'])
    expect(await client.call('FCALL', ...copy)).toEqual(['cancelled'])
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(7)
    await store.close?.()
    await sender.quit()
  })

  it('sends a decision of cost 1 over the whole chain as one argument, any other in full, with the same answers', async () => {
    const sender = await connect(server.port)
    const calls = recordFcalls(sender)
    const clock = manualClock()
    const make = (store: Store) =>
      createLimiter({
        store,
        clock: clock.now,
        levels: ['user', 'org'],
        tiers: {
          free: { user: { capacity: 3, refill: { tokens: 1, per: 1000 } }, org: { capacity: 5, refill: 0 } },
          pro: { user: { capacity: 6, refill: { tokens: 2, per: 1000 } }, org: { capacity: 9, refill: 0 } },
        },
        defaultTier: 'free',
      })
    const onRedis = make(
      redisStore({ client: sender, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 2000 }),
    )
    const inProcess = make(new InProcessStore({ maxKeys: 100, clock: clock.now }))
    // The decisions' parts of ARGV (after now, slack, record ms, mode and count) of the calls sent since `from`.
    const sentSince = (from: number) =>
      calls.slice(from).map(({ args }) => {
        const keyCount = Number(args[1])
        return (args as unknown[]).slice(2 + keyCount + 5)
      })
    const cases: [Subject, CheckOptions | undefined, unknown[]][] = [
      [{ user: 'a', org: 'acme' }, undefined, ['D']],
      [{ user: 'a', org: 'acme' }, { cost: 2 }, ['d', 2, '', '', 2, 1, '', 2, '']],
      [{ user: 'a', org: 'acme' }, { tier: 'pro' }, ['d', 1, 'pro', '', 2, 1, '', 2, '']],
      [{ user: 'b' }, undefined, ['d', 1, '', '', 1, 1, '']],
      [{ org: 'acme' }, undefined, ['d', 1, '', '', 1, 2, '']],
      [{ user: 'a', org: 'acme' }, { cost: 0 }, ['d', 0, '', '', 2, 1, '', 2, '']],
      [{ user: 'a', org: 'acme' }, undefined, ['D']],
      [{ user: 'a', org: 'acme' }, undefined, ['D']],
    ]
    for (const [subject, options, sent] of cases) {
      const from = calls.length
      const [r, p] = [await onRedis.check(subject, options), await inProcess.check(subject, options)]
      expect(sentSince(from)).toEqual([sent])
      expect(r).toEqual(p)
      clock.advance(400)
    }
    // The one-argument form reads the tier a tenant is assigned, as the full form does.
    await onRedis.setTier({ level: 'user', key: 'a' }, 'pro')
    await inProcess.setTier({ level: 'user', key: 'a' }, 'pro')
    for (let i = 0; i < 8; i++) {
      const [r, p] = [
        await onRedis.check({ user: 'a', org: 'acme' }),
        await inProcess.check({ user: 'a', org: 'acme' }),
      ]
      expect(r).toEqual(p)
    }
    expect((await inProcess.check({ user: 'a', org: 'acme' })).allowed).toBe(false)
    await onRedis.close()
    await inProcess.close()
    await sender.quit()
  })

  it('falls back to EVALSHA where Functions are denied (ACL), and loads the script again after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const user = `no-functions-${uniquePrefix()}`
    await client.call(
      'ACL',
      'SETUSER',
      user,
      'on',
      '>secret',
      '~*',
      'allchannels',
      '+@all',
      '-fcall',
      '-function',
    )
    const limited = new Redis({
      port: server.port,
      username: user,
      password: 'secret',
      enableOfflineQueue: false,
      lazyConnect: true,
    })
    await limited.connect()
    const store = redisStore({ client: limited, prefix: uniquePrefix(), timeoutMs: 2000 })
    const p = normalizePolicy({ capacity: 10, refill: 0 })
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(9)
    await client.script('FLUSH')
    await client.config('RESETSTAT')
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(8)
    expect(await commandCalls(client, 'eval')).toBe(1)
    expect(await commandCalls(client, 'evalsha')).toBe(1)
    expect(await commandCalls(client, 'fcall')).toBe(0)
    expect((await consumeOps(store, [op('n', p)])).results[0]!.remaining).toBe(7)
    await store.close?.()
    await limited.quit()
    await client.call('ACL', 'DELUSER', user)
  })

  it('keeps hostile keys apart: hash-tag braces, separators, lone surrogates, very long keys', async () => {
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, timeoutMs: 2000 })
    const p = normalizePolicy({ capacity: 1, refill: 0 })
    const long = 'k'.repeat(100_000)
    const keys = ['{x}', 'x', '}x{', 'a:b', 'a%3ab', '\ud800', '\udfff', '\ufffd', '#', long, `${long}!`]
    for (const key of keys) expect((await consumeOps(store, [op(key, p)])).allowed).toBe(true)
    for (const key of keys) expect((await consumeOps(store, [op(key, p)])).allowed).toBe(false)
    // Levels are kept apart from keys too.
    expect((await consumeOps(store, [op('b', p, 1, 'user:a')])).allowed).toBe(true)
    expect((await consumeOps(store, [op('a:b', p, 1, 'user')])).allowed).toBe(false)
    const names = await client.keys(`${prefix}*`)
    for (const name of names) {
      expect(name.length).toBeLessThan(prefix.length + 200)
      // Exactly one hash tag, opened right after the prefix.
      expect(name.slice(prefix.length).match(/[{}]/g)).toEqual(['{', '}'])
    }
    expect(names).toContain(`${prefix}{user:#${createHash('sha256').update(long).digest('base64url')}}`)
    await store.close?.()
  })
})

describe('the same maths as core', () => {
  it('agrees with the in-process store on large, fractional and changing policies', async () => {
    const policyArb = fc
      .record({
        capacity: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 1_000_000_000 })),
        refill: fc.oneof(
          fc.constant(0),
          fc.constantFrom(0.3, 0.001, 7.25, 1e6),
          fc.record({
            tokens: fc.integer({ min: 1, max: 1_000_000 }),
            per: fc.constantFrom(1, 3, 1000, 3_600_000, 86_400_000),
          }),
        ),
      })
      .filter(({ capacity, refill }) => {
        try {
          normalizePolicy({ capacity, refill })
          return true
        } catch {
          return false
        }
      })
      .map((input) => normalizePolicy(input))
    const stepArb = fc.oneof(
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 10_000_000_000 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 5 }) }),
      fc.record({
        kind: fc.constant('check' as const),
        cost: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 2_000_000_000 })),
      }),
      fc.record({ kind: fc.constant('change' as const), level: fc.constantFrom(0, 1), policy: policyArb }),
    )
    await fc.assert(
      fc.asyncProperty(policyArb, policyArb, fc.array(stepArb, { maxLength: 30 }), async (p0, p1, steps) => {
        const clock = manualClock()
        const store = redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 })
        const reference = new InProcessStore({ maxKeys: 100, clock: clock.now })
        const policies = [p0, p1]
        for (const step of steps) {
          if (step.kind === 'advance') clock.advance(step.ms)
          else if (step.kind === 'change') policies[step.level] = step.policy
          else {
            const ops = [op('u', policies[0]!, step.cost), op('acme', policies[1]!, step.cost, 'org')]
            expect(await consumeOps(store, ops)).toEqual(await consumeOps(reference, ops))
          }
        }
        await store.close?.()
      }),
      { numRuns: 150 },
    )
  })
})
