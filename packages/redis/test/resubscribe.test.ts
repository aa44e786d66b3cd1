import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { createLimiter } from '@tollgate/core'
import { type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '../src/index.js'
import { clientKinds, open, subscribed, uniquePrefix, within } from './helpers.js'

/**
 * A connection that drops while the registry's subscriber subscribes again must not leave a rejection that
 * nobody handles: ioredis's own re-subscription on ready has no handler, so the store subscribes by itself.
 * A proxy passes everything until it is told to cut; from then on it destroys every connection that sends
 * SUBSCRIBE, before Redis sees it, so every re-subscription fails with the connection closing.
 */
let redis: RedisServer
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

interface SubscribeCutter {
  readonly port: number
  /** SUBSCRIBE commands cut since `cut()`. */
  readonly cuts: number
  /** Destroys every connection now, and each later one when it sends SUBSCRIBE. */
  cut(): void
  /** Lets SUBSCRIBE through again. */
  heal(): void
  close(): Promise<void>
}

async function subscribeCutter(upstreamPort: number): Promise<SubscribeCutter> {
  const sockets = new Set<Socket>()
  let cutting = false
  let cuts = 0
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(upstreamPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (chunk) => {
      if (cutting && /subscribe/i.test(chunk.toString('latin1'))) {
        cuts++
        drop()
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => client.write(chunk))
    for (const socket of [client, upstream]) {
      socket.on('error', drop)
      socket.on('close', () => {
        sockets.delete(socket)
        drop()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    port,
    get cuts() {
      return cuts
    },
    cut() {
      cutting = true
      for (const socket of sockets) socket.destroy()
    },
    heal() {
      cutting = false
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  redis = await startRedis()
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await redis?.stop()
})

describe('the registry subscriber, its connection dropping as it subscribes again', () => {
  for (const kind of clientKinds) {
    it(`${kind}: no unhandled rejection, and it listens again once SUBSCRIBE gets through`, async () => {
      const proxy = await subscribeCutter(redis.port)
      const connection = await open(kind, proxy.port)
      const limiter = createLimiter({
        store: redisStore({ client: connection.client, prefix: uniquePrefix() }),
        levels: ['user'],
        tiers: { free: { user: { capacity: 5, refill: { tokens: 5, per: '1s' } } } },
      })
      try {
        const listening = subscribed(limiter)
        await limiter.check({ user: 'u' }) // starts the registry's subscriber
        await listening
        unhandled.length = 0
        proxy.cut()
        // Each reconnection's SUBSCRIBE is cut: ioredis's own and the store's, several times over.
        await within(10_000, async () => proxy.cuts >= 3)
        const again = subscribed(limiter)
        proxy.heal()
        await again
        // A rejection is reported as unhandled once the microtasks after it ran: a macrotask later.
        await new Promise((resolve) => setTimeout(resolve, 20))
        expect(unhandled).toEqual([])
      } finally {
        await limiter.close()
        connection.disconnect()
        await proxy.close()
      }
    }, 20_000)
  }
})
