import { ErrorCode, invalid, TollgateError } from '@tollgate/core/store'

/** An ioredis (5 or 6) `Redis` or `Cluster`, as far as the store looks at it before using it. */
export interface IoRedisClient {
  readonly status: string
  evalsha(...args: never[]): Promise<unknown>
}

/** A node-redis (5 or 6) client from `createClient` or cluster from `createCluster`, likewise. */
export interface NodeRedisClient {
  readonly isOpen: boolean
  evalSha(...args: never[]): Promise<unknown>
}

/** What `redisStore({ client })` accepts. Typed by shape, so any release of either major fits. */
export type RedisClient = IoRedisClient | NodeRedisClient

/** A listening duplicate connection; the store quits it (bounded), then drops it. */
export interface Listener {
  quit(): Promise<unknown>
  disconnect(): void
}

/** The commands and connection state the store uses, whichever library is behind them. */
export interface StoreClient {
  readonly isCluster: boolean
  /** Connected now. */
  readonly ready: boolean
  /** Closed for good: no reconnection will follow. */
  readonly ended: boolean
  /** Resolves at the next connection; rejects if the client ends first. */
  nextReady(): Promise<void>
  evalsha(sha: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>
  eval(source: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>
  /** A Cluster's master for a hash slot, as its address ('' when not known yet; '' on a single node). */
  nodeOf(slot: number): string
  /** SCRIPT LOAD on the node, or on every master of a Cluster. */
  loadScript(source: string): Promise<unknown>
  /** FCALL (Redis 7+). */
  fcall(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>
  /** FUNCTION LOAD REPLACE on the node, or on every master of a Cluster. */
  loadFunction(source: string): Promise<unknown>
  get(key: string): Promise<string | null>
  del(...keys: string[]): Promise<number>
  hget(key: string, field: string): Promise<string | null>
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>
  hgetall(key: string): Promise<Record<string, string>>
  exists(...keys: string[]): Promise<number>
  /**
   * A duplicate connection subscribed to `channel`, which subscribes again after every reconnect (also
   * when Redis was down at the start), Cluster or not; `onListening` after each (re)subscription.
   */
  listen(channel: string, onMessage: (message: string) => void, onListening: () => void): Listener
}

type Listen = (event: string, listener: (...args: never[]) => void) => unknown
interface Emitter {
  on: Listen
  once: Listen
  off: Listen
}

// The parts of each library the wrappers call, typed here rather than imported: no release's own
// types (nominal classes, generics over RESP versions) leak into this package's declarations.
// ioredis's plain commands have the adapter's own signatures.
interface IoRedis
  extends Emitter,
    Pick<StoreClient, 'get' | 'del' | 'hget' | 'hmget' | 'hgetall' | 'exists'> {
  status: string
  isCluster?: boolean
  /** Cluster: per hash slot, its nodes' "host:port", the master first. */
  slots?: readonly (readonly string[] | undefined)[]
  options?: { enableOfflineQueue?: boolean }
  evalsha(sha: string, n: number, ...rest: (string | number)[]): Promise<unknown>
  eval(source: string, n: number, ...rest: (string | number)[]): Promise<unknown>
  script(subcommand: 'LOAD', source: string): Promise<unknown>
  fcall(name: string, n: number, ...rest: (string | number)[]): Promise<unknown>
  function(subcommand: 'LOAD', replace: 'REPLACE', source: string): Promise<unknown>
  duplicate(...args: unknown[]): IoRedis
  nodes?(role: 'master'): IoRedis[]
  subscribe(channel: string): Promise<unknown>
  connect(): Promise<void>
  quit(): Promise<unknown>
  disconnect(): void
}

interface NodeRedis extends Emitter {
  isOpen: boolean
  isReady?: boolean // absent on a node-redis 5 cluster
  slots?: readonly ({ master?: { address?: string } } | undefined)[]
  masters?: readonly unknown[]
  nodeClient?(node: unknown): NodeRedis | Promise<NodeRedis>
  options?: { disableOfflineQueue?: boolean }
  _options?: { rootNodes?: unknown; defaults?: { disableOfflineQueue?: boolean } }
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  scriptLoad(source: string): Promise<unknown>
  fCall(name: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  functionLoad(source: string, options: { REPLACE: true }): Promise<unknown>
  get(key: string): Promise<string | null>
  del(keys: string[]): Promise<number>
  hGet(key: string, field: string): Promise<string | null | undefined>
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>
  hGetAll(key: string): Promise<Record<string, string>>
  exists(keys: string[]): Promise<number>
  duplicate(overrides: object): NodeRedis
  connect(): Promise<unknown>
  subscribe(channel: string, listener: (message: string) => void): Promise<void>
  close(): Promise<void>
  destroy(): void
}

function offlineQueueError(field: string, value: unknown, fix: string): TollgateError {
  return new TollgateError(
    ErrorCode.InvalidOption,
    `${field} must be ${field.endsWith('enableOfflineQueue') ? 'false' : 'true'}: a queued decision replayed ` +
      `after an outage counts twice and waits forever meanwhile. Create the client with ${fix}.`,
    { field, value },
  )
}

/** Picks the wrapper by the client's shape; refuses anything else, and any client that queues offline. */
export function storeClient(client: unknown): StoreClient {
  const c = client as Partial<IoRedis & NodeRedis> | null
  if (typeof c === 'object' && c !== null && typeof c.evalsha === 'function') {
    const offlineQueue = c.options?.enableOfflineQueue
    if (offlineQueue !== false) {
      throw offlineQueueError(
        'client.options.enableOfflineQueue',
        offlineQueue,
        'new Redis({ ..., enableOfflineQueue: false }) (or new Cluster(nodes, { enableOfflineQueue: false }))',
      )
    }
    return ioredisClient(c as IoRedis)
  }
  if (typeof c === 'object' && c !== null && typeof c.evalSha === 'function') {
    const cluster = c._options !== undefined && Array.isArray(c._options.rootNodes)
    const offlineQueue = cluster ? c._options?.defaults?.disableOfflineQueue : c.options?.disableOfflineQueue
    if (offlineQueue !== true) {
      throw cluster
        ? offlineQueueError(
            'client.options.defaults.disableOfflineQueue',
            offlineQueue,
            'createCluster({ rootNodes, defaults: { disableOfflineQueue: true } })',
          )
        : offlineQueueError(
            'client.options.disableOfflineQueue',
            offlineQueue,
            'createClient({ ..., disableOfflineQueue: true })',
          )
    }
    return nodeRedisClient(c as NodeRedis, cluster)
  }
  throw invalid(
    ErrorCode.InvalidOption,
    'client',
    client,
    'an ioredis Redis or Cluster, or a node-redis client (createClient) or cluster (createCluster)',
  )
}

/** Resolves on `ready`, rejects on `end`, whichever comes first. */
function nextEvent(client: Emitter, ready: string, end: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off(end, onEnd)
      resolve()
    }
    const onEnd = () => {
      client.off(ready, onReady)
      reject(new Error('connection ended'))
    }
    client.once(ready, onReady)
    client.once(end, onEnd)
  })
}

function ioredisClient(client: IoRedis): StoreClient {
  return {
    isCluster: client.isCluster === true,
    get ready() {
      return client.status === 'ready'
    },
    get ended() {
      return client.status === 'end'
    },
    nextReady: () => nextEvent(client, 'ready', 'end'),
    nodeOf: (slot) => (client.isCluster === true && client.slots?.[slot]?.[0]) || '',
    evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, ...keys, ...args),
    eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
    loadScript: (source) =>
      client.isCluster === true && client.nodes
        ? Promise.all(client.nodes('master').map((node) => node.script('LOAD', source)))
        : client.script('LOAD', source),
    fcall: (name, keys, args) => client.fcall(name, keys.length, ...keys, ...args),
    loadFunction: (source) =>
      client.isCluster === true && client.nodes
        ? Promise.all(client.nodes('master').map((node) => node.function('LOAD', 'REPLACE', source)))
        : client.function('LOAD', 'REPLACE', source),
    get: (key) => client.get(key),
    del: (...keys) => client.del(...keys),
    hget: (key, field) => client.hget(key, field),
    hmget: (key, ...fields) => client.hmget(key, ...fields),
    hgetall: (key) => client.hgetall(key),
    exists: (...keys) => client.exists(...keys),
    listen(channel, onMessage, onListening) {
      // The subscriber may queue: SUBSCRIBE replayed after a reconnect is harmless, unlike a decision.
      // A single node's ioredis re-subscribes on ready without a rejection handler: a connection dropping
      // right then left an unhandled rejection. The store subscribes on every ready itself, so that is off.
      // (A Cluster's subscriber is a connection of ioredis's own, which handles its re-subscription.)
      const subscriber =
        client.isCluster === true
          ? client.duplicate([], { enableOfflineQueue: true })
          : client.duplicate({ enableOfflineQueue: true, autoResubscribe: false })
      subscriber.on('error', () => {
        // Outages are reported by the decision path; the version check covers what was missed.
      })
      subscriber.on('message', (from: string, message: string) => {
        if (from === channel) onMessage(message)
      })
      const subscribe = () => {
        // Every (re)connect subscribes again, whatever ioredis kept: a SUBSCRIBE queued while Redis was
        // down at start is dropped.
        subscriber.subscribe(channel).then(onListening, () => undefined)
      }
      subscriber.on('ready', subscribe)
      if (subscriber.status === 'ready') subscribe()
      // A client made with lazyConnect hands its duplicate the same setting: connect it now.
      else if (subscriber.status === 'wait') subscriber.connect().catch(() => undefined)
      return subscriber
    },
  }
}

function nodeRedisClient(client: NodeRedis, cluster: boolean): StoreClient {
  // A node-redis cluster says 'connect' once its slots are known and 'disconnect' when closed.
  const [readyEvent, endEvent] = cluster ? ['connect', 'disconnect'] : ['ready', 'end']
  // Closed for good once it is no longer open after having been (no listener kept per store).
  let wasOpen = client.isOpen
  const strings = (args: readonly (string | number)[]) => args.map(String)
  return {
    isCluster: cluster,
    get ready() {
      if (typeof client.isReady === 'boolean') return client.isReady
      return client.isOpen && (client.masters?.length ?? 0) > 0
    },
    get ended() {
      if (client.isOpen) wasOpen = true
      return wasOpen && !client.isOpen
    },
    nextReady: () => nextEvent(client, readyEvent, endEvent),
    nodeOf: (slot) => (cluster && client.slots?.[slot]?.master?.address) || '',
    evalsha: (sha, keys, args) => client.evalSha(sha, { keys: [...keys], arguments: strings(args) }),
    eval: (source, keys, args) => client.eval(source, { keys: [...keys], arguments: strings(args) }),
    loadScript: (source) =>
      cluster && client.nodeClient
        ? Promise.all(
            (client.masters ?? []).map(async (master) =>
              (await client.nodeClient!(master)).scriptLoad(source),
            ),
          )
        : client.scriptLoad(source),
    fcall: (name, keys, args) => client.fCall(name, { keys: [...keys], arguments: strings(args) }),
    loadFunction: (source) =>
      cluster && client.nodeClient
        ? Promise.all(
            (client.masters ?? []).map(async (master) =>
              (await client.nodeClient!(master)).functionLoad(source, { REPLACE: true }),
            ),
          )
        : client.functionLoad(source, { REPLACE: true }),
    get: (key) => client.get(key),
    del: (...keys) => client.del(keys),
    hget: async (key, field) => (await client.hGet(key, field)) ?? null,
    hmget: (key, ...fields) => client.hmGet(key, fields),
    hgetall: (key) => client.hGetAll(key),
    exists: (...keys) => client.exists(keys),
    listen(channel, onMessage, onListening) {
      // The subscriber may queue (SUBSCRIBE replayed after a reconnect is harmless, unlike a decision);
      // node-redis subscribes again by itself on every reconnect, before it reports ready.
      const subscriber = cluster
        ? client.duplicate({
            defaults: { ...client._options?.defaults, disableOfflineQueue: false },
            minimizeConnections: true,
          })
        : client.duplicate({ disableOfflineQueue: false })
      subscriber.on('error', () => {
        // Outages are reported by the decision path; the version check covers what was missed.
      })
      let closed = false
      subscriber
        .connect()
        .then(() => subscriber.subscribe(channel, onMessage))
        .then(() => {
          if (closed) return
          onListening()
          // Later connections, of the pub/sub node's connection in a cluster: subscribed again by then.
          subscriber.on(cluster ? 'node-ready' : 'ready', onListening)
        })
        .catch(() => undefined)
      return {
        quit: () => {
          closed = true
          return subscriber.close()
        },
        disconnect: () => {
          closed = true
          if (subscriber.isOpen) subscriber.destroy()
        },
      }
    },
  }
}
