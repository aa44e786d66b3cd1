import type { PolicyInput } from '@tollgate/core'
import { Cluster, Redis } from 'ioredis'
import { type ChildRun, runChild } from './child'

export interface HammerConfig {
  redis: { url: string } | { cluster: readonly { host: string; port: number }[] }
  /** The client library each app server uses. Default ioredis. */
  library?: 'ioredis' | 'node-redis'
  prefix: string
  levels: readonly string[]
  policies: Record<string, PolicyInput>
  subject: Record<string, string>
  hashTag?: 'one'
  onStoreError?: 'open' | 'closed' | 'local'
  expectedServers?: number | 'auto'
  timeoutMs?: number
  cooldownMs?: number
  concurrency?: number
  durationMs: number
  maxRequests: number
  bucketMs?: number
  /** ms each worker waits between requests; 0 hammers flat out. */
  paceMs?: number
}

/** One app server's report (see children/hammer.mjs). */
export interface HammerReport {
  pid: number
  admitted: number
  refused: number
  degradedAdmitted: number
  degradedRefused: number
  thrown: number
  firstNow: number
  lastNow: number
  started: number
  bucketMs: number
  maxLatencyMs: number
  p50: number
  p99: number
  slowOverTimeout: number
  decisions: number
  timeline: [slot: number, counts: [number, number, number, number]][]
  /** Local-fallback runs: wall-clock ms, and the limiter's clock at their first and last degraded decisions. */
  episodes: { start: number; end: number; admitted: number; firstNow: number; lastNow: number }[]
  events: { storeErrors: number; degraded: number; recovered: number }
  /** With expectedServers 'auto': the smallest and largest fleet size counted at degraded decisions. */
  fleetSeen: { min: number | null; max: number | null }
  unhandled: string[]
}

export interface Fleet {
  /** Starts every server's load at once; resolves with their reports. */
  go(): Promise<HammerReport[]>
  readonly pids: readonly number[]
  /** Kills every server still running (by PID). */
  kill(): void
}

/** Starts `count` app-server processes and waits until each is connected and warmed up. */
export async function startFleet(
  count: number,
  config: HammerConfig,
  perServer: (index: number) => { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = () => ({}),
): Promise<Fleet> {
  const timeLimitMs = config.durationMs + 60_000
  const runs: ChildRun[] = Array.from({ length: count }, (_, i) =>
    runChild('hammer.mjs', [JSON.stringify(config)], { timeLimitMs, ...perServer(i) }),
  )
  const kill = () => {
    for (const run of runs)
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
  }
  const ready = Promise.all(
    runs.map(
      (run) =>
        new Promise<void>((resolve, reject) => {
          const poll = setInterval(() => {
            if (run.lines.length > 0) {
              clearInterval(poll)
              resolve()
            }
          }, 5)
          run.done.then(
            () => {
              clearInterval(poll)
              reject(new Error('hammer exited before it was ready'))
            },
            (error) => {
              clearInterval(poll)
              reject(error)
            },
          )
        }),
    ),
  )
  try {
    await ready
  } catch (error) {
    kill()
    throw error
  }
  return {
    kill,
    pids: runs.map((run) => run.child.pid!),
    async go() {
      for (const run of runs) run.send({ go: true })
      const reports = Promise.all(runs.map((run) => run.done)).then((outputs) =>
        outputs.map((lines) => lines[lines.length - 1] as HammerReport),
      )
      // A test that fails before awaiting this must not leave an unhandled rejection behind.
      reports.catch(() => {})
      return reports
    },
  }
}

/** Redis's clock in ms (fractional), from TIME. */
export async function redisTimeMs(client: Redis | Cluster): Promise<number> {
  const [seconds, micros] = (await client.time()) as unknown as [string | number, string | number]
  return Number(seconds) * 1000 + Number(micros) / 1000
}

export const sum = (reports: readonly HammerReport[], pick: (r: HammerReport) => number): number =>
  reports.reduce((total, r) => total + pick(r), 0)

/** A connected client as the store wants it (no offline queue), for the test's own reads and peeks. */
export async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true })
  client.on('error', () => {})
  await client.connect()
  return client
}

export async function connectCluster(nodes: readonly { host: string; port: number }[]): Promise<Cluster> {
  const client = new Cluster([...nodes], { enableOfflineQueue: false, lazyConnect: true })
  client.on('error', () => {})
  await client.connect()
  return client
}
