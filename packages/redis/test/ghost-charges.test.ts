import type { Decision, Limiter } from '@tollgate/core'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@tollgate/testkit'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, connectCluster, open, within } from './helpers.js'
import { capacity, limiterOn, type Pingable, repliesHandled } from './lost-helpers.js'

/**
 * Issue 12, item 5: a call Redis runs after the fallback answered (a pause longer than the timeout) must
 * not leave a "ghost charge": once Redis has run the queued calls, the bucket holds what the answers say.
 */
const admitted = 3
const pauseMs = 300
const timeoutMs = 50

/** Script calls (FCALL, EVALSHA, EVAL) Redis has run (INFO commandstats). */
async function scriptCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/^cmdstat_(?:fcall|evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1])
  return calls
}

/**
 * Ten checks while the store's node is paused, in two waves (each wave within the batcher's 8 in flight), each
 * check in a turn of its own, so each is its own script call (the checks of one turn may share one).
 */
async function tenChecksDuringPause(
  limiter: Limiter,
  admin: Redis,
  mode: 'WRITE' | 'ALL',
): Promise<Decision[]> {
  await admin.call('CLIENT', 'PAUSE', String(pauseMs), mode)
  const decisions: Decision[] = []
  for (let wave = 0; wave < 2; wave++) {
    const checks: Promise<Decision>[] = []
    for (let i = 0; i < 5; i++) {
      checks.push(limiter.check('k'))
      await new Promise((resolve) => setImmediate(resolve))
    }
    decisions.push(...(await Promise.all(checks)))
  }
  return decisions
}

async function expectNoGhostCharge(
  limiter: Limiter,
  admin: Redis,
  storeConnection: Pingable,
  mode: 'WRITE' | 'ALL',
): Promise<void> {
  for (let i = 0; i < admitted; i++) expect(await limiter.check('k')).toMatchObject({ allowed: true })
  const before = await scriptCalls(admin)
  const refused = await tenChecksDuringPause(limiter, admin, mode)
  expect(refused.map((d) => [d.allowed, d.degraded])).toEqual(Array(10).fill([false, 'closed']))
  // Redis runs the ten paused calls after the pause (each charges a token no answer admitted).
  await within(5000, async () => (await scriptCalls(admin)) >= before + 10)
  await repliesHandled(storeConnection)
  const peek = await limiter.check('k', { cost: 0 })
  expect(peek.degraded).toBeUndefined()
  // Exactly the three admitted checks are charged: the ten late charges were given back.
  expect(peek.remaining).toBe(capacity - admitted)
}

describe('a pause longer than the timeout (single node)', () => {
  let server: RedisServer
  let admin: Redis

  beforeAll(async () => {
    server = await startRedis()
    admin = await connect(server.port)
  })

  afterAll(async () => {
    admin?.disconnect()
    await server?.stop()
  })

  for (const kind of ['ioredis', 'node-redis'] as const) {
    it(`${kind}: ten checks refused by the fallback charge nothing once Redis runs them`, async () => {
      const connection = await open(kind, server.port)
      const limiter = limiterOn(connection.client, { timeoutMs })
      try {
        await expectNoGhostCharge(limiter, admin, connection.client as unknown as Pingable, 'WRITE')
      } finally {
        await limiter.close()
        await connection.quit()
      }
    })
  }
})

describe('a pause longer than the timeout (one master of a 3-master Cluster)', () => {
  let cluster: RedisCluster
  let client: Cluster

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 })
    client = await connectCluster(cluster.nodes)
  })

  afterAll(async () => {
    await client?.quit()
    await cluster?.stop()
  })

  it('ioredis Cluster: ten checks refused by the fallback charge nothing once the master runs them', async () => {
    const limiter = limiterOn(client, { timeoutMs })
    try {
      // The first call compiles the script on its master (NOSCRIPT, then EVAL): allowed a few tries at 50 ms.
      await within(5000, async () => (await limiter.check('k', { cost: 0 })).degraded === undefined)
      // The master holding the bucket: the one that remembers the call records of its slot.
      const masters = client.nodes('master')
      const holding: Redis[] = []
      for (const node of masters) {
        const keys = await node.keys('*:call:*')
        if (keys.length > 0) holding.push(node)
      }
      expect(holding).toHaveLength(1)
      const port = holding[0]!.options.port!
      const admin = await connect(port)
      try {
        await expectNoGhostCharge(limiter, admin, holding[0]!, 'ALL')
      } finally {
        admin.disconnect()
      }
    } finally {
      await limiter.close()
    }
  })
})
