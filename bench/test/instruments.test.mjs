// The bench's own instruments: parsers, the Redis CPU attribution, admission bounds, and the bare GCRA
// reference against a real redis-server. No speed is asserted.
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { GCRA_SOURCE, gcraArgs, loadScript } from '../src/impls/gcra.mjs'
import {
  admissionBound,
  chainBound,
  commandMicros,
  hostStealMs,
  parseCommandStats,
  processCpuMs,
  SECOND_MS,
} from '../src/lib.mjs'
import { startRedis } from '../src/processes.mjs'
import { parseWrk } from '../src/programs.mjs'

describe('Redis µs per decision from INFO commandstats', () => {
  const info = [
    '# Commandstats',
    'cmdstat_get:calls=30,usec=60,usec_per_call=2.00,rejected_calls=0,failed_calls=0',
    'cmdstat_set:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
    'cmdstat_evalsha:calls=10,usec=400,usec_per_call=40.00,rejected_calls=0,failed_calls=0',
    'cmdstat_config|resetstat:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0',
  ].join('\r\n')

  it('sums nodes', () => {
    const total = parseCommandStats(info, parseCommandStats(info))
    assert.deepEqual(total.get('evalsha'), { calls: 20, usec: 800 })
  })

  it('counts a script once, with the commands it called inside it', () => {
    const { usec } = commandMicros(parseCommandStats(info), new Map([['evalsha', 10]]))
    assert.equal(usec, 400)
  })

  it('adds the share of a plain command that clients sent, and leaves admin commands out', () => {
    // 20 of the 30 GETs came from clients, 10 ran inside the script.
    const { usec, mix } = commandMicros(
      parseCommandStats(info),
      new Map([
        ['evalsha', 10],
        ['get', 20],
        ['config', 1],
      ]),
    )
    assert.equal(usec, 400 + 40)
    assert.equal(mix['config|resetstat'], undefined)
  })
})

describe('wrk output', () => {
  const text = `Running 1s test @ http://127.0.0.1:4000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   810.55us  201.12us   5.10ms   90.00%
  Latency Distribution
     50%  780.00us
     75%  850.00us
     90%    1.00ms
     99%    1.50ms
  38123 requests in 1.00s, 7.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 38113
Requests/sec:  38101.53
Transfer/sec:      7.00MB
`
  it('reads requests, rate, refusals, socket errors and latency in ms', () => {
    assert.deepEqual(parseWrk(text), {
      requests: 38123,
      requestsPerSec: 38101.53,
      non2xx: 38113,
      errors: 3,
      p50: 0.78,
      p99: 1.5,
    })
  })

  it('refuses output without a request count', () => {
    assert.throws(() => parseWrk('unable to connect to 127.0.0.1:4000 Connection refused'))
  })
})

describe('admission bounds', () => {
  const level = { limit: 20, windowMs: SECOND_MS }
  it('token bucket: capacity plus the refill over the run', () => {
    assert.equal(admissionBound('bucket', level, 2500), 20 + 50)
  })
  it('fixed window: the limit per window touched', () => {
    assert.equal(admissionBound('window', level, 2500), 20 * 4)
  })
  it('a chain admits no more than its tightest level over the keys it touched', () => {
    const levels = [level, { limit: 1000, windowMs: SECOND_MS }]
    assert.equal(chainBound('bucket', levels, [100, 1], 1000), 1000 + 1000)
    assert.equal(chainBound('bucket', levels, [10, 1], 1000), 10 * 40)
  })
})

describe('process CPU', () => {
  it('reads this process from /proc, and nothing for a process that does not exist', () => {
    const cpu = processCpuMs(process.pid)
    if (cpu !== undefined) assert.ok(cpu >= 0)
    assert.equal(processCpuMs(2 ** 30), undefined)
  })

  it("reads the host's steal from /proc/stat's first line, and nothing from other text", () => {
    const stat = 'cpu  1858572 1688 286836 9675232 5907 0 69784 37610 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n'
    assert.equal(hostStealMs(stat), 376100)
    assert.equal(hostStealMs('intr 1 2 3'), undefined)
    assert.equal(hostStealMs('cpu  1 2 3'), undefined)
    const here = hostStealMs()
    if (here !== undefined) assert.ok(here >= 0)
  })
})

describe('bare GCRA reference on a real redis-server', () => {
  let redis
  let client
  beforeAll(async () => {
    redis = await startRedis()
    client = new Redis({ port: redis.port, lazyConnect: true })
    await client.connect()
  })
  afterAll(async () => {
    client?.disconnect()
    await redis?.stop()
  })

  it('admits exactly the burst on one key, then refuses, and leaves one expiring integer', async () => {
    const sha = await loadScript(client, GCRA_SOURCE)
    const args = gcraArgs([{ limit: 5, windowMs: 3_600_000 }])
    const results = []
    for (let i = 0; i < 8; i++) results.push(await client.evalsha(sha, 1, 'ref:k', ...args))
    assert.deepEqual(results, [1, 1, 1, 1, 1, 0, 0, 0])
    assert.match(await client.get('ref:k'), /^\d+$/)
    assert.ok((await client.pttl('ref:k')) > 0)
  })

  it('decides a chain all-or-nothing: a refusal at one level charges no level', async () => {
    const sha = await loadScript(client, GCRA_SOURCE)
    const args = gcraArgs([
      { limit: 1, windowMs: 3_600_000 },
      { limit: 100, windowMs: 3_600_000 },
      { limit: 100, windowMs: 3_600_000 },
    ])
    assert.equal(await client.evalsha(sha, 3, 'ref:u', 'ref:o', 'ref:g', ...args), 1)
    const org = await client.get('ref:o')
    assert.equal(await client.evalsha(sha, 3, 'ref:u', 'ref:o', 'ref:g', ...args), 0)
    assert.equal(await client.get('ref:o'), org)
  })
})
