import { type RedisServer, startRedis } from '@tollgate/testkit'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { clientKinds, open, within } from './helpers.js'
import {
  type CallWatch,
  capacity,
  decision,
  limiterOn,
  type Pingable,
  refund,
  remaining,
  repliesHandled,
  watchCalls,
} from './lost-helpers.js'
import { type ReplyDropper, replyDropper } from './proxy.js'

/**
 * Issue 12, item 5, single node: a reply lost on the way back (a proxy lets Redis run the call, throws the
 * reply away and drops the client's socket). A client that re-sends the call (ioredis, default
 * maxRetriesPerRequest) must charge or refund once; a client that fails it instead (node-redis, ioredis
 * with maxRetriesPerRequest 0) must leave no charge behind the fallback's refusal.
 */
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
async function resendingClient(port: number, reconnectMs?: number): Promise<Redis> {
  const retry = reconnectMs === undefined ? {} : { retryStrategy: () => reconnectMs }
  const client = new Redis({
    host: '127.0.0.1',
    port,
    enableOfflineQueue: false,
    lazyConnect: true,
    ...retry,
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

describe('ioredis re-sends a call whose reply was lost (single node)', () => {
  for (const timeoutMs of [2000, 50]) {
    const when = timeoutMs === 2000 ? 'in time' : 'after the fallback answered'
    it(`charges once when the re-sent call answers ${when}`, async () => {
      // Late: the client reconnects (and sends again) 300 ms after the drop; by default after 50 ms.
      const client = await resendingClient(proxy.port, timeoutMs === 50 ? 300 : undefined)
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
