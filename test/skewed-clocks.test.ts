import type { PolicyInput } from '@tollgate/core'
import { type RedisServer, startRedis } from '@tollgate/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChildRun, childScript, runChild } from './support/child'
import { connect, type HammerReport, redisTimeMs, startFleet, sum } from './support/fleet'
import { summary } from './support/summary'

/**
 * Skewed clocks (issue 6, item 3): two app-server processes whose clocks are an hour apart (a preload
 * moves Date.now and performance.now) share one Redis. Decisions take Redis's time, so they must be the
 * same as with equal clocks: a bucket one server drained is drained for the other, and a fleet with a
 * skewed member admits what a fleet with equal clocks admits.
 */

const HOUR_MS = 3_600_000
const LEVELS = ['user', 'org', 'global']
const SUBJECT = { user: 'skew-user', org: 'skew-org' }
const POLICIES: Record<string, PolicyInput> = {
  user: { capacity: 20, refill: 10 },
  org: { capacity: 200, refill: 100 },
  global: { capacity: 2000, refill: 1000 },
}
const shifted = (shiftMs: number) =>
  shiftMs === 0
    ? {}
    : {
        nodeArgs: ['--import', childScript('shift-clock.mjs')],
        env: { TOLLGATE_TEST_CLOCK_SHIFT_MS: String(shiftMs) },
      }

interface Answer {
  allowed: boolean
  degraded: string | null
  now: number
  levels: [remaining: number, retryAfterMs: number, resetAfterMs: number][]
}

async function ask(run: ChildRun, cost: number): Promise<Answer> {
  const seen = run.lines.length
  run.send({ cost })
  while (run.lines.length === seen) await new Promise((resolve) => setTimeout(resolve, 2))
  return run.lines[seen] as Answer
}

describe('skewed clocks (issue 6, item 3)', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('a server an hour ahead sees the bucket a normal server drained, and vice versa', async () => {
    const config = (prefix: string) => [
      JSON.stringify({ url: server.url, prefix, levels: LEVELS, policies: POLICIES, subject: SUBJECT }),
    ]
    const runs = [0, HOUR_MS].map((shift) =>
      runChild('decide.mjs', config('skew-pair:'), { timeLimitMs: 60_000, ...shifted(shift) }),
    )
    try {
      for (const run of runs) while (run.lines.length === 0) await new Promise((r) => setTimeout(r, 5))
      const [normal, ahead] = runs as [ChildRun, ChildRun]
      const clocksApartMs =
        (ahead.lines[0] as { dateNow: number }).dateNow - (normal.lines[0] as { dateNow: number }).dateNow
      // Ahead drains the user level; normal must find it drained (an app clock would have refilled it).
      const drain = await ask(ahead, 20)
      const afterDrain = await ask(normal, 1)
      // Normal drains the org level's rest; ahead must find it too.
      const peekAhead = await ask(ahead, 0)
      summary('skewed pair', {
        clocksApartMs,
        drainAllowed: drain.allowed,
        normalAfterDrain: afterDrain.allowed,
        retryAfterMs: afterDrain.levels[0]![1],
        nowDeltaMs: peekAhead.now - afterDrain.now,
      })
      expect(clocksApartMs).toBeGreaterThan(HOUR_MS - 60_000)
      expect(drain.allowed).toBe(true)
      expect(afterDrain.allowed).toBe(false)
      expect(afterDrain.degraded).toBeNull()
      // Redis's clock: the decisions' `now` agree, whatever the servers' clocks say.
      expect(Math.abs(peekAhead.now - afterDrain.now)).toBeLessThan(5_000)
      // 20 tokens at 10/s: about 100 ms until the next token, as with equal clocks (never an hour's refill).
      expect(afterDrain.levels[0]![1]).toBeGreaterThan(0)
      expect(afterDrain.levels[0]![1]).toBeLessThanOrEqual(100)
      expect(peekAhead.levels[0]![0]).toBeLessThanOrEqual(1)
    } finally {
      for (const run of runs) run.child.stdin!.end()
      await Promise.allSettled(runs.map((run) => run.done))
    }
  })

  it('a fleet with one server an hour ahead admits what a fleet with equal clocks admits', async () => {
    const admittedWith = async (shiftMs: number, prefix: string) => {
      const fleet = await startFleet(
        2,
        {
          redis: { url: server.url },
          prefix,
          levels: LEVELS,
          policies: POLICIES,
          subject: SUBJECT,
          onStoreError: 'closed',
          timeoutMs: 2000,
          concurrency: 4,
          durationMs: 2000,
          maxRequests: 100_000,
        },
        (i) => shifted(i === 1 ? shiftMs : 0),
      )
      const client = await connect(server.url)
      try {
        const before = await redisTimeMs(client)
        const reports: HammerReport[] = await fleet.go()
        const after = await redisTimeMs(client)
        for (const r of reports) {
          expect(r.unhandled).toEqual([])
          expect(r.degradedAdmitted + r.degradedRefused).toBe(0)
        }
        const span =
          Math.max(...reports.map((r) => r.lastNow)) - Math.min(...reports.map((r) => r.firstNow)) - 1
        return { admitted: sum(reports, (r) => r.admitted), elapsedMs: after - before, spanMs: span }
      } finally {
        fleet.kill()
        client.disconnect()
      }
    }
    const equal = await admittedWith(0, 'skew-equal:')
    const skewed = await admittedWith(HOUR_MS, 'skew-hour:')
    summary('skewed fleet', {
      equalAdmitted: equal.admitted,
      equalSpanMs: equal.spanMs,
      skewedAdmitted: skewed.admitted,
      skewedSpanMs: skewed.spanMs,
    })
    // Each within capacity + rate × Redis-clock span (user binding: 20 + 10/s), less one token per level.
    for (const run of [equal, skewed]) {
      expect(run.admitted).toBeLessThanOrEqual(Math.floor(20 + (10 * run.elapsedMs) / 1000))
      expect(run.admitted).toBeGreaterThanOrEqual(Math.floor(20 + (10 * run.spanMs) / 1000) - LEVELS.length)
    }
  })
})
