import {
  createLimiter,
  type Limiter,
  type LimiterOptions,
  normalizePolicy,
  type PolicyInput,
} from '@tollgate/core'
import { InProcessStore, type Store } from '@tollgate/core/store'
import {
  type ManualClock,
  manualClock,
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from '@tollgate/testkit'
import fc from 'fast-check'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { connect, connectCluster, recordFcalls, subscribed, uniquePrefix } from './helpers.js'

let server: RedisServer
let cluster: RedisCluster
const clients: (Redis | Cluster)[] = []

beforeAll(async () => {
  server = await startRedis()
  cluster = await startRedisCluster({ masters: 3 })
})

afterAll(async () => {
  for (const client of clients.splice(0)) await client.quit()
  await server?.stop()
  await cluster?.stop()
})

const topologies = {
  'single node': () => connect(server.port),
  'a 3-master Cluster': () => connectCluster(cluster.nodes),
}

const options = {
  policy: { capacity: 3, refill: { tokens: 3, per: '1m' } },
  block: { after: 2, within: '1m', for: '15m' },
} satisfies LimiterOptions

/**
 * Two app servers: each its own client, store and limiter, on one Redis and one prefix. Their own clocks
 * are an hour apart and neither is used for a decision: the stores' clock stands in for Redis's TIME.
 */
async function twoServers(
  connectClient: () => Promise<Redis | Cluster>,
  extra: Omit<LimiterOptions, 'store' | 'clock'> = {},
): Promise<{ redisTime: ManualClock; a: Limiter; b: Limiter }> {
  const redisTime = manualClock()
  const prefix = uniquePrefix()
  const server = async (skewMs: number) => {
    const client = await connectClient()
    clients.push(client)
    const store = redisStore({ client, prefix, clock: redisTime.now, timeoutMs: 5000 })
    await store.ready()
    return createLimiter({ ...options, ...extra, store, clock: () => Date.now() + skewMs })
  }
  return { redisTime, a: await server(3_600_000), b: await server(-3_600_000) }
}

for (const [topology, connectClient] of Object.entries(topologies)) {
  describe(`blocking across servers on ${topology}`, () => {
    it('a block made through server A refuses on server B with the same Retry-After, and lifts at its end', async () => {
      const { redisTime, a, b } = await twoServers(connectClient)
      for (let i = 0; i < 3; i++) expect((await a.check('1.2.3.4')).allowed).toBe(true)
      // One refusal on each server: the refusals are counted in Redis, so together they reach `after`.
      expect(await a.check('1.2.3.4')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 20_000 })
      redisTime.advance(1_000)
      const blocked = await b.check('1.2.3.4')
      expect(blocked).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 900_000 })
      redisTime.advance(60_000)
      expect(await a.check('1.2.3.4')).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 840_000 })
      expect(await b.check('1.2.3.4', { cost: 0 })).toMatchObject({ blocked: true, retryAfterMs: 840_000 })
      expect((await b.check('5.6.7.8')).allowed).toBe(true)
      redisTime.advance(839_999)
      expect(await b.check('1.2.3.4')).toMatchObject({ allowed: false, retryAfterMs: 1 })
      redisTime.advance(1)
      expect(await a.check('1.2.3.4')).toMatchObject({ allowed: true, remaining: 0, blocked: false })
      // The refusal in the block's last ms did not count: one refusal now does not block again, two do.
      expect(await b.check('1.2.3.4')).toMatchObject({ allowed: false, blocked: false, retryAfterMs: 20_000 })
      expect(await a.check('1.2.3.4')).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 900_000 })
    })

    it('blocks the user level of a chain whose levels live in different slots', async () => {
      const { redisTime, a, b } = await twoServers(connectClient, {
        levels: ['user', 'org'],
        policy: undefined,
        policies: { user: options.policy, org: { capacity: 100, refill: { tokens: 100, per: '1m' } } },
      })
      await a.check({ user: 'u1', org: 'acme' }, { cost: 3 })
      await a.check({ user: 'u1', org: 'acme' })
      expect(await b.check({ user: 'u1', org: 'acme' })).toMatchObject({ blocked: true, binding: 'user' })
      // The org kept every token the refusals did not take, and its other users pass.
      expect(await a.check({ user: 'u2', org: 'acme' })).toMatchObject({ allowed: true })
      expect((await a.check({ user: 'u2', org: 'acme' }, { cost: 0 })).levels[1]!.remaining).toBe(96)
      redisTime.advance(900_000)
      expect((await b.check({ user: 'u1', org: 'acme' })).allowed).toBe(true)
    })
  })
}

describe('blocking, batched', () => {
  it('answers every decision of a batch whose levels send a refusal log (three keys a level)', async () => {
    const client = await connect(server.port)
    clients.push(client)
    const store = redisStore({ client, prefix: uniquePrefix(), timeoutMs: 5000 })
    const limiter = createLimiter({ ...options, store, onStoreError: 'closed' })
    await limiter.check('warm-up')
    // More at once than go alone (two) or fit the calls in flight (8): the rest go as batches of several.
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, i) => limiter.check(`k${i}`)))
    expect(decisions.map((d) => [d.allowed, d.remaining, d.degraded])).toEqual(
      Array(40).fill([true, 2, undefined]),
    )
  })
})

describe('blocking, inside one call', () => {
  it('notes the refusals of one call in order, as the in-process store does one by one', async () => {
    const client = await connect(server.port)
    clients.push(client)
    const clock = manualClock()
    const store = redisStore({
      client,
      prefix: uniquePrefix(),
      clock: clock.now,
      timeoutMs: 5000,
      localRefusals: 0,
    })
    const onRedis = createLimiter({ ...options, store, clock: clock.now })
    const reference = new InProcessStore({ maxKeys: 100, clock: clock.now })
    const inProcess = createLimiter({ ...options, store: reference, clock: clock.now })
    await subscribed(onRedis)
    // One turn: k0 and k1 go alone, the rest four to a call, so 1.2.3.4's 3rd to 6th share a call, in which its
    // 4th and 5th are counted refusals (after: 2): the block is made and read inside that call.
    const subjects = [...Array.from({ length: 8 }, (_, i) => `k${i}`), ...Array(10).fill('1.2.3.4')]
    const batched = await Promise.all(subjects.map((s) => onRedis.check(s)))
    const oneByOne = []
    for (const s of subjects) oneByOne.push(await inProcess.check(s))
    expect(batched).toEqual(oneByOne)
    expect(batched.slice(8).map((d) => [d.allowed, d.blocked, d.retryAfterMs])).toEqual([
      ...Array(3).fill([true, false, 0]),
      [false, false, 20_000],
      ...Array(6).fill([false, true, 900_000]),
    ])
  })

  it('a refused call sent again leaves its refusal log as the first run wrote it', async () => {
    const client = await connect(server.port)
    clients.push(client)
    const calls = recordFcalls(client)
    const clock = manualClock()
    const prefix = uniquePrefix()
    const store = redisStore({ client, prefix, clock: clock.now, timeoutMs: 5000, localRefusals: 0 })
    const limiter = createLimiter({ ...options, store, clock: clock.now })
    for (let i = 0; i < 3; i++) expect((await limiter.check('1.2.3.4')).allowed).toBe(true)
    expect(await limiter.check('1.2.3.4')).toMatchObject({ allowed: false, blocked: false })
    const admin = await connect(server.port)
    clients.push(admin)
    const [log] = await admin.keys(`${prefix}*:refused`)
    const noted = await admin.get(log!)
    // Applied twice, this refusal would be the second within the span and block the key.
    await admin.call('FCALL', ...(calls.at(-1)!.args as string[]))
    expect(await admin.get(log!)).toBe(noted)
    expect(noted).toMatch(/^\d+$/)
    expect(await limiter.check('1.2.3.4', { cost: 0 })).toMatchObject({ blocked: false })
  })
})

describe('blocking costs an admitted decision nothing', () => {
  /** Calls of each command (inside scripts included) that one check makes. */
  async function commandsOf(client: Redis, check: () => Promise<unknown>): Promise<Record<string, number>> {
    const calls = async () => {
      const stats: Record<string, number> = {}
      for (const line of (await client.info('commandstats')).split('\r\n')) {
        const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
        if (match) stats[match[1]!] = Number(match[2])
      }
      return stats
    }
    const before = await calls()
    await check()
    const after = await calls()
    const delta: Record<string, number> = {}
    for (const [name, n] of Object.entries(after)) {
      // The INFO call itself is not the check's.
      if (name !== 'info' && n - (before[name] ?? 0) > 0) delta[name] = n - (before[name] ?? 0)
    }
    return delta
  }

  it('runs the same commands with `block` as without while admitted, and reads the log only on a refusal', async () => {
    const client = await connect(server.port)
    clients.push(client)
    const store = redisStore({ client, prefix: uniquePrefix(), clock: manualClock().now, timeoutMs: 5000 })
    const plain = createLimiter({ policy: options.policy, store })
    const blocking = createLimiter({ ...options, store, name: 'blocking' })
    // Each limiter's first reload of the registry (on subscribing) is done before anything is counted.
    await Promise.all([subscribed(plain), subscribed(blocking)])
    await plain.check('warm-up')
    await blocking.check('warm-up')
    const without = await commandsOf(client, () => plain.check('p'))
    const withBlock = await commandsOf(client, () => blocking.check('b'))
    expect(withBlock).toEqual(without)
    expect(withBlock.fcall).toBe(1)
    await blocking.check('b', { cost: 2 })
    const refusal = await commandsOf(client, () => blocking.check('b'))
    // A refusal reads the refusal log and writes it instead of the bucket.
    expect(refusal).toEqual({ ...without, get: without.get! + 1 })
  })
})

describe('the same maths as core', () => {
  // Found by the property below (seed 625321886): a cost-1 refusal by `user` was remembered locally with
  // org's debt then; a cost-3 refusal then blocked org, and the next cost-1 check was answered from the
  // stale entry (org allowed, remaining 2) where Redis and core refuse at org (blocked, retryAfterMs 1).
  it.each([
    ['with local refusals (the default)', {}],
    ['without local refusals', { localRefusals: 0 }],
  ])('a block made by one refusal reaches the refusals remembered for another cost, %s', async (_, extra) => {
    const client = await connect(server.port)
    clients.push(client)
    const clock = manualClock()
    const store = redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000, ...extra })
    const make = (s: Store) =>
      createLimiter({
        levels: ['user', 'org'],
        policies: {
          user: { capacity: 1, refill: { tokens: 1, per: 1000 } },
          org: { capacity: 3, refill: { tokens: 1, per: 1000 } },
        },
        block: { after: 1, within: 1, for: 1, levels: ['org'] },
        store: s,
        clock: clock.now,
      })
    const [onRedis, inProcess] = [make(store), make(new InProcessStore({ maxKeys: 100, clock: clock.now }))]
    // The subscription's first "anything may have changed" drops every refusal: let it pass first.
    await Promise.all([subscribed(onRedis), onRedis.getTier({ level: 'org', key: 'acme' })])
    const subject = { user: 'a', org: 'acme' }
    const both = async (cost: number) => {
      const [r, p] = [await onRedis.check(subject, { cost }), await inProcess.check(subject, { cost })]
      expect(r).toEqual(p)
      return r
    }
    expect((await both(1)).allowed).toBe(true)
    expect((await both(1)).binding).toBe('user')
    // That refusal (org admitted it, debt 1000) is held here to answer the same request locally.
    expect(store.localRefusalStats().held).toBe('localRefusals' in extra ? 0 : 1)
    // cost 3 at org (1 token left of 3): a counted refusal, and after: 1 blocks org for 1 ms.
    expect((await both(3)).levels[1]).toMatchObject({ allowed: false, retryAfterMs: 2001 })
    const blocked = await both(1)
    expect(blocked.levels[1]).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterMs: 1,
      resetAfterMs: 2001,
    })
    await both(1)
    clock.advance(59_999)
    expect((await both(1)).allowed).toBe(true)
    for (let i = 0; i < 3; i++) await both(0)
    await store.close?.()
  })

  it('blocks exactly as the in-process store does, decision for decision', async () => {
    const client = await connect(server.port)
    clients.push(client)
    const policyArb = fc
      .record({
        capacity: fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 4 }), weight: 4 },
          { arbitrary: fc.integer({ min: 1, max: 1_000_000_000 }), weight: 1 },
        ),
        refill: fc.oneof(
          fc.constant(0),
          fc.constantFrom(0.3, 7.25, 1e6),
          fc.record({
            tokens: fc.integer({ min: 1, max: 1000 }),
            per: fc.constantFrom(1, 1000, 60_000, 3_600_000),
          }),
          {
            arbitrary: fc.record({
              tokens: fc.integer({ min: 1, max: 3 }),
              per: fc.constantFrom(1000, 60_000, 3_600_000),
            }),
            weight: 6,
          },
        ),
      })
      .filter((input) => {
        try {
          normalizePolicy(input)
          return true
        } catch {
          return false
        }
      }) as fc.Arbitrary<PolicyInput>
    const blockArb = fc.record({
      after: fc.integer({ min: 1, max: 3 }),
      within: fc.constantFrom(1, 500, 60_000, 86_400_000, 86_400_000),
      for: fc.constantFrom(1, 999, 60_000, 3_600_000, 3_600_000, 365 * 86_400_000),
      levels: fc.constantFrom(['user'], ['org'], ['user', 'org']),
    })
    const check = (user: fc.Arbitrary<string>, cost: fc.Arbitrary<number>) =>
      fc.record({ kind: fc.constant('check' as const), user, cost })
    const stepArb = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 120_000 }),
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 5 }) }),
        weight: 1,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.constantFrom(59_999, 60_000, 3_600_000),
        }),
        weight: 1,
      },
      { arbitrary: check(fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 3 })), weight: 2 },
      { arbitrary: check(fc.constant('a'), fc.constantFrom(1, 2_000_000_000)), weight: 4 },
      { arbitrary: fc.record({ kind: fc.constant('refund' as const) }), weight: 1 },
    )
    let blockedSeen = 0
    await fc.assert(
      fc.asyncProperty(
        policyArb,
        policyArb,
        blockArb,
        fc.array(stepArb, { minLength: 10, maxLength: 40 }),
        async (user, org, block, steps) => {
          const clock = manualClock()
          const store = redisStore({ client, prefix: uniquePrefix(), clock: clock.now, timeoutMs: 5000 })
          const reference = new InProcessStore({ maxKeys: 100, clock: clock.now })
          const make = (s: typeof store | InProcessStore) =>
            createLimiter({
              levels: ['user', 'org'],
              policies: { user, org },
              block,
              store: s,
              clock: clock.now,
            })
          const [onRedis, inProcess] = [make(store), make(reference)]
          let last: [Awaited<ReturnType<Limiter['check']>>, Awaited<ReturnType<Limiter['check']>>] | undefined
          for (const step of steps) {
            if (step.kind === 'advance') clock.advance(step.ms)
            else if (step.kind === 'refund') {
              if (last) await Promise.all([onRedis.refund(last[0]), inProcess.refund(last[1])])
            } else {
              const subject = { user: step.user, org: 'acme' }
              last = [
                await onRedis.check(subject, { cost: step.cost }),
                await inProcess.check(subject, { cost: step.cost }),
              ]
              expect(last[0]).toEqual(last[1])
              if (last[0].blocked) blockedSeen++
            }
          }
          await store.close?.()
        },
      ),
      { numRuns: 150 },
    )
    // The runs must have blocked often enough to mean something.
    expect(blockedSeen).toBeGreaterThan(20)
  })
})
