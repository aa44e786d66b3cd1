import { type RedisServer, startRedis } from '@tollgate/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Fleet, type HammerConfig, type HammerReport, startFleet, sum } from './support/fleet'
import { summary } from './support/summary'

/**
 * A fleet-aware `local` fallback (issue 15, part 3), with ioredis and with node-redis in the app servers.
 * Two fleets of 4 app-server processes run at once against one Redis, each on its own prefix, one tenant
 * hammered by every server: one fleet with `expectedServers: 'auto'` (the servers count each other by heartbeats in Redis), the other with the
 * static default of 1. Once every 'auto' server has counted 4, Redis is stopped for 3 s and started again.
 * During the outage each server decides alone in `local` mode. With 'auto' each holds a quarter of the
 * limit (⌊capacity / 4⌋, rate / 4), so the fleet admits at most the shared limit over the outage:
 * capacity + rate × the longest time a server decided locally. With 1 each server holds the whole limit,
 * and the fleet admits about 4 times that.
 */

const SERVERS = 4
const OUTAGE_MS = 3000
const POLICY = { capacity: 100, refill: 20 }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const libraries = ['ioredis', 'node-redis'] as const

function fleetConfig(
  library: (typeof libraries)[number],
  prefix: string,
  url: string,
  expectedServers: number | 'auto',
): HammerConfig {
  return {
    redis: { url },
    library,
    prefix,
    levels: ['user'],
    policies: { user: POLICY },
    subject: { user: 'hot-user' },
    onStoreError: 'local',
    expectedServers,
    timeoutMs: 100,
    cooldownMs: 250,
    concurrency: 2,
    durationMs: 7000,
    maxRequests: 1_000_000,
    paceMs: 5,
  }
}

/**
 * What the fleet admitted while Redis was down, against the shared limit over that time. A server's local
 * buckets start full at its first degraded decision and persist through its episodes, so its horizon is from
 * its first to its last degraded decision on the limiter's clock (+1 ms for whole-ms flooring).
 */
function outage(reports: HammerReport[], servers: number) {
  const spans = reports.map((r) => {
    const first = Math.min(...r.episodes.map((e) => e.firstNow))
    const last = Math.max(...r.episodes.map((e) => e.lastNow))
    return last - first + 1
  })
  const longestMs = Math.max(...spans)
  // Each server's share: ⌊capacity / n⌋ and rate / n, over its own horizon; together no more than the shared limit.
  const shares = spans.map((ms) =>
    Math.floor(Math.floor(POLICY.capacity / servers) + (POLICY.refill / servers) * (ms / 1000)),
  )
  return {
    admitted: sum(reports, (r) => r.degradedAdmitted),
    refused: sum(reports, (r) => r.degradedRefused),
    episodes: sum(reports, (r) => r.episodes.length),
    longestMs,
    sharedLimit: Math.floor(POLICY.capacity + (POLICY.refill * longestMs) / 1000),
    perServer: reports.map((r) => r.degradedAdmitted).join('/'),
    shares,
  }
}

describe.each(libraries)(
  `${SERVERS} processes with expectedServers 'auto' through a Redis outage, %s`,
  (library) => {
    let server: RedisServer
    let probe: Redis
    beforeAll(async () => {
      server = await startRedis()
      probe = await connect(server.url)
    })
    afterAll(async () => {
      probe?.disconnect()
      await server?.stop()
    })

    it('the fleet admits at most the shared limit in local mode, where a static 1 admits about 4 times it', async () => {
      const fleets: Fleet[] = []
      try {
        fleets.push(await startFleet(SERVERS, fleetConfig(library, 'fleet-auto:', server.url, 'auto')))
        fleets.push(await startFleet(SERVERS, fleetConfig(library, 'fleet-static:', server.url, 1)))
        const running = fleets.map((fleet) => fleet.go())
        // Every 'auto' server is in the heartbeat set; one more beat (1 s) and each has counted all four.
        const started = Date.now()
        while ((await probe.zcard('fleet-auto:{fleet}:servers')) < SERVERS && Date.now() - started < 5000)
          await sleep(50)
        expect(await probe.zcard('fleet-auto:{fleet}:servers')).toBe(SERVERS)
        // The static fleet never joined: only 'auto' stores beat.
        expect(await probe.exists('fleet-static:{fleet}:servers')).toBe(0)
        await sleep(1500)
        probe.disconnect()
        await server.down()
        await sleep(OUTAGE_MS)
        await server.up()
        const [auto, fixed] = await Promise.all(running)
        const a = outage(auto!, SERVERS)
        const f = outage(fixed!, 1)
        summary(`fleet outage ${library} expectedServers=auto`, {
          servers: SERVERS,
          ...a,
          shares: a.shares.join('/'),
        })
        summary(`fleet outage ${library} expectedServers=1`, {
          servers: SERVERS,
          ...f,
          shares: f.shares.join('/'),
        })
        console.log(
          `${library}: fleet admitted during a ${OUTAGE_MS} ms Redis outage (limit ${POLICY.capacity} + ${POLICY.refill}/s): ` +
            `'auto' ${a.admitted} (the shared limit over the longest local run, ${a.longestMs} ms, is ${a.sharedLimit}), ` +
            `static 1 ${f.admitted}`,
        )
        for (const r of [...auto!, ...fixed!]) {
          expect(r.unhandled).toEqual([])
          expect(r.thrown).toBe(0)
          // Each server saw the outage, decided it locally, and refused what was over its share.
          expect(r.degradedAdmitted).toBeGreaterThan(0)
          expect(r.degradedRefused).toBeGreaterThan(0)
        }
        // Every 'auto' server divided by the whole fleet at every degraded decision.
        for (const r of auto!) expect(r.fleetSeen).toEqual({ min: SERVERS, max: SERVERS })
        // Each 'auto' server kept to its quarter, so the fleet kept to the shared limit.
        for (const [i, r] of auto!.entries()) expect(r.degradedAdmitted).toBeLessThanOrEqual(a.shares[i]!)
        expect(a.admitted).toBeLessThanOrEqual(a.sharedLimit)
        // A static 1: every server admits the whole limit on its own.
        for (const [i, r] of fixed!.entries()) expect(r.degradedAdmitted).toBeLessThanOrEqual(f.shares[i]!)
        expect(f.admitted).toBeGreaterThan(3 * f.sharedLimit)
      } finally {
        for (const fleet of fleets) fleet.kill()
      }
    })
  },
)
