import type { Limiter } from '@tollgate/core'
import { type RedisCluster, startRedisCluster } from '@tollgate/testkit'
import calculateSlot from 'cluster-key-slot'
import { Cluster, type Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connect, within } from './helpers.js'
import {
  type CallWatch,
  capacity,
  decision,
  limiterOn,
  refund,
  remaining,
  repliesHandled,
  watchCalls,
} from './lost-helpers.js'
import { type ReplyDropper, replyDropper } from './proxy.js'

/**
 * Issue 12, item 5, Redis Cluster: every master is reached through a reply-dropping proxy (ioredis's
 * `natMap` turns the addresses CLUSTER SLOTS gives into the proxies', the proxies those in MOVED). When a node's connection closes with
 * a call pending, ioredis Cluster sends the call again (after `retryDelayOnFailover`) on a new connection:
 * the charge or refund must still apply once.
 */
let cluster: RedisCluster
/** By the master's real port. */
const proxies = new Map<number, ReplyDropper>()
const clients: Cluster[] = []
let watch: CallWatch | undefined

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 })
  for (const node of cluster.nodes) proxies.set(node.port, await replyDropper(node.port))
  const addresses = new Map(
    [...proxies].map(([port, proxy]) => [`127.0.0.1:${port}`, `127.0.0.1:${proxy.port}`]),
  )
  for (const proxy of proxies.values()) proxy.translate(addresses)
})

afterEach(() => {
  watch?.close()
  watch = undefined
  for (const c of clients.splice(0)) c.disconnect()
})

afterAll(async () => {
  for (const proxy of proxies.values()) await proxy.close()
  await cluster?.stop()
})

/** A Cluster client as users make it for the store (offline queue off), routed through the proxies. */
async function proxiedCluster(retryDelayOnFailover?: number): Promise<Cluster> {
  const natMap = Object.fromEntries(
    [...proxies].map(([port, proxy]) => [`127.0.0.1:${port}`, { host: '127.0.0.1', port: proxy.port }]),
  )
  const client = new Cluster(
    [...proxies.values()].map((proxy) => ({ host: '127.0.0.1', port: proxy.port })),
    {
      enableOfflineQueue: false,
      lazyConnect: true,
      natMap,
      ...(retryDelayOnFailover && { retryDelayOnFailover }),
    },
  )
  client.on('error', () => {})
  clients.push(client)
  await client.connect()
  return client
}

/** The real port of the master holding the tests' bucket (level `key`, key `k`: hash tag `{key:k}`). */
async function holdingMaster(): Promise<number> {
  const slot = calculateSlot('key:k')
  const admin = await connect(cluster.nodes[0]!.port)
  try {
    const ranges = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
    const range = ranges.find(([from, to]) => from <= slot && slot <= to)
    if (!range) throw new Error(`no master serves slot ${slot}`)
    return Number(range[2][1])
  } finally {
    admin.disconnect()
  }
}

/** The client's current connection to that master (a new one after a drop). */
function nodeConnection(client: Cluster, realPort: number): Redis {
  const proxyPort = proxies.get(realPort)!.port
  const node = client.nodes('master').find((n) => n.options.port === proxyPort)
  if (!node) throw new Error(`no connection to the master on ${realPort}`)
  return node
}

/** A limiter on a proxied Cluster client, warmed up; the master of its bucket, watched. */
async function setUp(
  options: { timeoutMs: number; rememberCallsMs?: number },
  retryDelayOnFailover?: number,
) {
  const client = await proxiedCluster(retryDelayOnFailover)
  const limiter = limiterOn(client, options)
  // The first call compiles the script on its master (NOSCRIPT, then EVAL).
  expect(await remaining(limiter)).toBe(capacity)
  const master = await holdingMaster()
  watch = await watchCalls(master)
  return { client, limiter, master, watch }
}

async function settle(client: Cluster, master: number, seen: CallWatch): Promise<void> {
  await within(5000, async () => seen.repeated().size > 0)
  await repliesHandled(nodeConnection(client, master))
  await seen.caughtUp()
}

async function closing(limiter: Limiter, work: () => Promise<void>): Promise<void> {
  try {
    await work()
  } finally {
    await limiter.close()
  }
}

describe('ioredis Cluster re-sends a call whose reply was lost', () => {
  for (const timeoutMs of [2000, 50]) {
    const when = timeoutMs === 2000 ? 'in time' : 'after the fallback answered'
    it(`charges once when the re-sent call answers ${when}`, async () => {
      // Late: the Cluster waits retryDelayOnFailover (300 ms here, 100 by default) before it sends again.
      const {
        client,
        limiter,
        master,
        watch: seen,
      } = await setUp({ timeoutMs }, timeoutMs === 50 ? 300 : undefined)
      await closing(limiter, async () => {
        const answers = [await limiter.check('k'), await limiter.check('k')]
        const dropped = proxies.get(master)!.dropNextReply(decision)
        answers.push(await limiter.check('k'))
        await dropped
        if (timeoutMs === 2000) expect(answers.at(-1)).toMatchObject({ allowed: true, degraded: undefined })
        else expect(answers.at(-1)).toMatchObject({ allowed: false, degraded: 'closed' })
        await settle(client, master, seen)
        // The master really received that call twice: the Cluster client sent it again.
        expect([...seen.repeated().values()]).toEqual([['run', 'run']])
        const admitted = answers.filter((a) => a.allowed).length
        expect(await remaining(limiter)).toBe(capacity - admitted)
      })
    })
  }

  it('a re-sent refund gives back once', async () => {
    const { client, limiter, master, watch: seen } = await setUp({ timeoutMs: 2000 })
    await closing(limiter, async () => {
      const answers = [await limiter.check('k'), await limiter.check('k'), await limiter.check('k')]
      expect(answers.every((a) => a.allowed && a.degraded === undefined)).toBe(true)
      const dropped = proxies.get(master)!.dropNextReply(refund)
      await limiter.refund(answers[2]!)
      await dropped
      await settle(client, master, seen)
      expect([...seen.repeated().values()]).toEqual([['run', 'run']])
      expect(await remaining(limiter)).toBe(capacity - 2)
    })
  })

  it('without call records (rememberCallsMs: 0) the re-sent refund gives back twice: the re-send is real', async () => {
    const { client, limiter, master, watch: seen } = await setUp({ timeoutMs: 2000, rememberCallsMs: 0 })
    await closing(limiter, async () => {
      const answers = [await limiter.check('k'), await limiter.check('k'), await limiter.check('k')]
      const dropped = proxies.get(master)!.dropNextReply(refund)
      await limiter.refund(answers[2]!)
      await dropped
      await settle(client, master, seen)
      expect([...seen.repeated().values()]).toEqual([['run', 'run']])
      // Three charged, one refund asked for, two given back: the over-admission the records prevent.
      expect(await remaining(limiter)).toBe(capacity - 1)
    })
  })
})
