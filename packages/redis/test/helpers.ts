import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'

/** A fresh key prefix, so stores sharing one Redis never see each other's keys. */
export function uniquePrefix(): string {
  return `t${randomUUID().slice(0, 8)}:`
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
