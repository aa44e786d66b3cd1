import { createLimiter, type Limiter, type PolicyInput } from '@tollgate/core'
import { manualClock } from '@tollgate/testkit'
import { type RedisClient, redisStore } from '../src/index.js'
import { connect, uniquePrefix, within } from './helpers.js'

/** What the lost-reply and pause tests share: a bucket, a limiter on it, and ways to watch Redis's calls. */
export const capacity = 20
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
  // A line that lands while the monitor connection is still starting or closing is reported, not thrown.
  monitor.on('error', () => {})
  const calls: SeenCall[] = []
  let marks = 0
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = String(args[0]).toLowerCase()
    if (source.includes('lua')) return
    if (name === 'echo' && args[1] === 'watch-calls-mark') marks++
    if (name !== 'fcall' && name !== 'evalsha' && name !== 'eval') return
    const keyCount = Number(args[2])
    const argv = args.slice(3 + keyCount)
    // 'D' is a decision in its one-argument form.
    calls.push({ record: args[3]!, mode: argv[3]!, op: argv[5]!.toLowerCase() })
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

export const decision = (call: { mode: string; op: string }) => call.mode === 'run' && call.op === 'd'
export const refund = (call: { mode: string; op: string }) => call.mode === 'run' && call.op === 'r'
