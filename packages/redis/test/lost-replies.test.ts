import { createLimiter, type Limiter, type PolicyInput } from '@tollgate/core'
import { manualClock, type RedisServer, startRedis } from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type RedisClient, redisStore } from '../src/index.js'
import { clientKinds, connect, open, uniquePrefix, within } from './helpers.js'
import { type ReplyDropper, replyDropper } from './proxy.js'

/**
 * Issue 12, item 5: a reply lost on the way back (a proxy runs the call on Redis, throws the reply away and
 * drops the client's socket). A client that re-sends it (ioredis, default maxRetriesPerRequest) must charge
 * or refund once; a client that fails it instead (node-redis) must leave no charge behind the fallback.
 */
const capacity = 20
// The test clock stands still: no refill hides a charge.
const policy: PolicyInput = { capacity, refill: { tokens: capacity, per: '1m' } }

export interface SeenCall {
  readonly record: string
  readonly mode: string
  readonly op: string
}

/** The script calls clients sent, as MONITOR on `port` saw them: each call's record key, mode and first op. */
export async function watchCalls(port: number) {
  const admin = await connect(port)
  const monitor = await admin.monitor()
  const calls: SeenCall[] = []
  let marks = 0
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = String(args[0]).toLowerCase()
    if (source.includes('lua')) return
    if (name === 'echo' && args[1] === 'watch-calls-mark') marks++
    if (name !== 'evalsha' && name !== 'eval') return
    const keyCount = Number(args[2])
    const argv = args.slice(3 + keyCount)
    calls.push({ record: args[3]!, mode: argv[3]!, op: argv[5]! })
  })
  return {
    calls,
    /** Every call Redis ran so far has reached this watcher (a marker sent after them came through). */
    async caughtUp(): Promise<void> {
      const before = marks
      await admin.echo('watch-calls-mark')
      await within(5000, async () => marks > before)
    },
    /** The records of calls sent more than once (a re-send), with their modes in order. */
    repeated(): Map<string, string[]> {
      const byRecord = new Map<string, string[]>()
      for (const c of calls) byRecord.set(c.record, [...(byRecord.get(c.record) ?? []), c.mode])
      return new Map([...byRecord].filter(([, modes]) => modes.length > 1))
    },
    close: () => {
      monitor.disconnect()
      admin.disconnect()
    },
  }
}

export type CallWatch = Awaited<ReturnType<typeof watchCalls>>

export function limiterOn(
  client: RedisClient,
  options: { timeoutMs: number; rememberCallsMs?: number },
): Limiter {
  const clock = manualClock()
  const store = redisStore({
    client,
    prefix: uniquePrefix(),
    clock: clock.now,
    // The tier version check off the wire: the only commands on the connection are the test's.
    registryRefreshMs: 60_000,
    ...options,
  })
  return createLimiter({
    store,
    clock: clock.now,
    policy,
    onStoreError: 'closed',
    breaker: { failures: 100 },
  })
}

/** Peeks until a peek is answered by Redis (a client reconnecting refuses at once until it is back). */
export async function remaining(limiter: Limiter): Promise<number> {
  let left = -1
  await within(5000, async () => {
    const peek = await limiter.check('k', { cost: 0 })
    left = peek.remaining
    return peek.degraded === undefined
  })
  return left
}

/**
 * A PING on the store's connection answers after every reply Redis sent before it, and a turn of the event
 * loop later their handlers (an undo they submit included) have run: what is sent next goes behind them.
 */
export async function repliesHandled(connection: Pingable): Promise<void> {
  await connection.ping()
  await new Promise((resolve) => setImmediate(resolve))
}

export type Pingable = { ping(): Promise<unknown> }

const decision = (call: { mode: string; op: string }) => call.mode === 'run' && call.op === 'd'
const refund = (call: { mode: string; op: string }) => call.mode === 'run' && call.op === 'r'

let server: RedisServer
let proxy: ReplyDropper
let watch: CallWatch

beforeAll(async () => {
  server = await startRedis()
})

afterAll(async () => {
  await server?.stop()
})

beforeEach(async () => {
  proxy = await replyDropper(server.port)
  watch = await watchCalls(server.port)
})

afterEach(async () => {
  watch.close()
  await proxy.close()
})

/** An ioredis client as users make it for the store: offline queue off, everything else default. */
async function resendingClient(port: number): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, lazyConnect: true })
  client.on('error', () => {})
  await client.connect()
  return client
}

describe('ioredis re-sends a call whose reply was lost (single node)', () => {
  for (const timeoutMs of [2000, 50]) {
    const when = timeoutMs === 2000 ? 'in time' : 'after the fallback answered'
    it(`charges once when the re-sent call answers ${when}`, async () => {
      const client = await resendingClient(proxy.port)
      const limiter = limiterOn(client, { timeoutMs })
      try {
        expect(await remaining(limiter)).toBe(capacity)
        const answers = [await limiter.check('k'), await limiter.check('k')]
        const dropped = proxy.dropNextReply(decision)
        answers.push(await limiter.check('k'))
        await dropped
        if (timeoutMs === 2000) expect(answers.at(-1)).toMatchObject({ allowed: true, degraded: undefined })
        else expect(answers.at(-1)).toMatchObject({ allowed: false, degraded: 'closed' })
        // Redis really received that call twice: the client re-sent it on its new connection.
        await within(5000, async () => watch.repeated().size > 0)
        await repliesHandled(client)
        await watch.caughtUp()
        expect([...watch.repeated().values()]).toEqual([['run', 'run']])
        const admitted = answers.filter((a) => a.allowed).length
        expect(await remaining(limiter)).toBe(capacity - admitted)
      } finally {
        await limiter.close()
        client.disconnect()
      }
    })
  }
})

describe('ioredis re-sends a lost reply (single node), continued', () => {
  it('a re-sent refund gives back once', async () => {
    const client = await resendingClient(proxy.port)
    const limiter = limiterOn(client, { timeoutMs: 2000 })
    try {
      expect(await remaining(limiter)).toBe(capacity)
      const answers = [await limiter.check('k'), await limiter.check('k'), await limiter.check('k')]
      expect(answers.every((a) => a.allowed && a.degraded === undefined)).toBe(true)
      const dropped = proxy.dropNextReply(refund)
      await limiter.refund(answers[2]!)
      await dropped
      await within(5000, async () => watch.repeated().size > 0)
      await repliesHandled(client)
      await watch.caughtUp()
      expect([...watch.repeated().values()]).toEqual([['run', 'run']])
      expect(await remaining(limiter)).toBe(capacity - 2)
    } finally {
      await limiter.close()
      client.disconnect()
    }
  })

  it('without call records (rememberCallsMs: 0) the same lost reply charges twice: the re-send is real', async () => {
    const client = await resendingClient(proxy.port)
    const limiter = limiterOn(client, { timeoutMs: 2000, rememberCallsMs: 0 })
    try {
      expect(await remaining(limiter)).toBe(capacity)
      const dropped = proxy.dropNextReply(decision)
      expect(await limiter.check('k')).toMatchObject({ allowed: true, degraded: undefined })
      await dropped
      await watch.caughtUp()
      expect([...watch.repeated().values()]).toEqual([['run', 'run']])
      // One answer admitted, two tokens gone: what the records prevent.
      expect(await remaining(limiter)).toBe(capacity - 2)
    } finally {
      await limiter.close()
      client.disconnect()
    }
  })
})

describe('a client that fails the call whose reply was lost (single node): the cancel gives the charge back', () => {
  for (const kind of clientKinds) {
    const which = kind === 'ioredis' ? 'ioredis with maxRetriesPerRequest: 0' : kind
    it(`${which}: the fallback's refusal leaves no charge`, async () => {
      const connection = await open(kind, proxy.port)
      const client = connection.client as unknown as Pingable
      const limiter = limiterOn(connection.client, { timeoutMs: 2000 })
      try {
        expect(await remaining(limiter)).toBe(capacity)
        const answers = [await limiter.check('k'), await limiter.check('k')]
        const dropped = proxy.dropNextReply(decision)
        answers.push(await limiter.check('k'))
        await dropped
        expect(answers.at(-1)).toMatchObject({ allowed: false, degraded: 'closed' })
        // Redis ran the call (its reply was thrown away), then the cancel the store sends once it is back.
        await within(5000, async () => watch.repeated().size > 0)
        await repliesHandled(client)
        await watch.caughtUp()
        expect([...watch.repeated().values()]).toEqual([['run', 'cancel']])
        const admitted = answers.filter((a) => a.allowed).length
        expect(await remaining(limiter)).toBe(capacity - admitted)
      } finally {
        await limiter.close()
        await connection.quit()
      }
    })
  }
})
