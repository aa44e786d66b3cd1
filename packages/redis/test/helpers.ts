import { randomUUID } from 'node:crypto'
import { createClient, createCluster } from '@redis/client'
import { Cluster, Redis } from 'ioredis'
import { createClient as createClientV5, createCluster as createClusterV5 } from 'redis-v5'
import { afterAll, beforeAll, describe } from 'vitest'
import type { RedisClient } from '../src/index.js'

/** A fresh key prefix, so stores sharing one Redis never see each other's keys. */
export function uniquePrefix(): string {
  return `t${randomUUID().slice(0, 8)}:`
}

/**
 * The script calls `client` sends from now on, with their replies, as they went over the wire: a test can
 * send one again itself (what a client does after a lost reply).
 */
export function recordFcalls(client: Redis): { args: unknown[]; reply: unknown }[] {
  const calls: { args: unknown[]; reply: unknown }[] = []
  const fcall = client.fcall
  Object.defineProperty(client, 'fcall', {
    value: async (...args: unknown[]) => {
      const reply: unknown = await Reflect.apply(fcall, client, args)
      calls.push({ args, reply })
      return reply
    },
  })
  return calls
}

/** An ioredis client as tollgate wants it (no offline queue), connected. */
export async function connect(port: number, options: { retry?: boolean } = {}): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    ...(options.retry === false ? { retryStrategy: () => null } : { retryStrategy: () => 50 }),
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

export async function connectCluster(nodes: readonly { host: string; port: number }[]): Promise<Cluster> {
  const cluster = new Cluster([...nodes], {
    enableOfflineQueue: false,
    lazyConnect: true,
    redisOptions: { maxRetriesPerRequest: 0 },
  })
  cluster.on('error', () => {})
  await cluster.connect()
  return cluster
}

/** Polls until `probe` returns true, at most `limitMs`; returns the ms it took or throws. */
export async function within(limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await probe()) return Date.now() - started
    if (Date.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Resolves when the limiter's store subscription is live (its first "reload everything" notification).
 * Tests wait for it so that this reload cannot land in the middle of a check.
 */
export function subscribed(limiter: {
  on(listener: (event: { type: string; kind?: unknown }) => void): () => void
}) {
  return new Promise<void>((resolve) => {
    const off = limiter.on((event) => {
      if (event.type === 'registry-change' && event.kind === undefined) {
        off()
        resolve()
      }
    })
  })
}

/** The client libraries the store is tested on: ioredis 6, node-redis 6 and node-redis 5. */
export type ClientKind = 'ioredis' | 'node-redis' | 'node-redis 5'
export const clientKinds: readonly ClientKind[] = ['ioredis', 'node-redis', 'node-redis 5']

/** A connection of any kind, as a test drives it: the client for the store, its state, and closing it. */
export interface Connection {
  readonly kind: ClientKind
  readonly client: RedisClient
  readonly ready: boolean
  quit(): Promise<void>
  /** Drops the connection at once (pending commands fail). */
  disconnect(): void
}

function ioredisConnection(client: Redis | Cluster): Connection {
  return {
    kind: 'ioredis',
    client,
    get ready() {
      return client.status === 'ready'
    },
    quit: async () => {
      await client.quit()
    },
    disconnect: () => client.disconnect(),
  }
}

interface NodeRedisLike {
  isOpen: boolean
  isReady?: boolean
  close(): Promise<void>
  destroy(): void
}

function nodeRedisConnection(kind: ClientKind, client: NodeRedisLike & RedisClient): Connection {
  return {
    kind,
    client,
    get ready() {
      return client.isReady ?? client.isOpen
    },
    quit: async () => {
      if (client.isOpen) await client.close()
    },
    disconnect: () => {
      if (client.isOpen) client.destroy()
    },
  }
}

/**
 * A client of `kind` as tollgate wants it (no offline queue), connected unless `connect: false`
 * (then it connects in the background, retrying until Redis is there).
 */
export async function open(
  kind: ClientKind,
  port: number,
  options: { retry?: boolean; connect?: boolean } = {},
): Promise<Connection> {
  if (kind === 'ioredis') {
    if (options.connect !== false) return ioredisConnection(await connect(port, options))
    const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
    client.on('error', () => {})
    return ioredisConnection(client)
  }
  const settings = {
    socket: { host: '127.0.0.1', port, reconnectStrategy: options.retry === false ? false : () => 50 },
    disableOfflineQueue: true,
  } as const
  const client = kind === 'node-redis' ? createClient(settings) : createClientV5(settings)
  client.on('error', () => {})
  const connecting = client.connect()
  if (options.connect === false) connecting.catch(() => {})
  else await connecting
  return nodeRedisConnection(kind, client)
}

export async function openCluster(
  kind: ClientKind,
  nodes: readonly { host: string; port: number }[],
): Promise<Connection> {
  if (kind === 'ioredis') return ioredisConnection(await connectCluster(nodes))
  const settings = {
    rootNodes: nodes.map((node) => ({ socket: { host: node.host, port: node.port } })),
    defaults: { disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } },
  }
  const cluster = kind === 'node-redis' ? createCluster(settings) : createClusterV5(settings)
  cluster.on('error', () => {})
  await cluster.connect()
  return nodeRedisConnection(kind, cluster)
}

/**
 * Declares `body` once per client kind, in a describe of its own whose connection `connectKind` opens
 * before its tests and closes after them.
 */
export function forEveryClient(
  connectKind: (kind: ClientKind) => Promise<Connection>,
  body: (connection: () => Connection, kind: ClientKind) => void,
): void {
  for (const kind of clientKinds) {
    describe(kind, () => {
      let connection: Connection | undefined
      beforeAll(async () => {
        connection = await connectKind(kind)
      })
      afterAll(async () => {
        await connection?.quit()
      })
      body(() => connection!, kind)
    })
  }
}
