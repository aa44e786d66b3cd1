import { describe, expect, it } from 'vitest'
import { runChild } from './support/child'
import { summary } from './support/summary'

/**
 * Key floods (issue 6, item 6): 10 million distinct keys into one memory store, in a child process run
 * with --expose-gc so heap figures are taken after a full collection. The store must stay bounded by
 * maxKeys, and hot tenants used between the flood keys must keep their (drained) buckets: an evicted hot
 * tenant would come back with a full bucket, which is the attack an LRU under flood invites.
 */

const KEYS = Number(process.env.FLOOD_KEYS ?? 10_000_000)
const MAX_KEYS = 200_000
/**
 * The bound derived from maxKeys: 400 bytes of heap per bucket (key string, state object, lru-cache's
 * map entry and typed-array slots) over the heap before the flood, plus 16 MB for the runtime's own
 * churn. The flood is 50× maxKeys, so an unbounded store would exceed this many times over.
 */
const BYTES_PER_KEY_BOUND = 400
const SLACK_BYTES = 16 * 1024 * 1024

interface FloodReport {
  keys: number
  timedOut: boolean
  elapsedMs: number
  ratePerSec: number
  baselineHeap: number
  maxHeap: number
  heapSamplesMB: number[]
  size: number
  evictions: number
  hotChecks: number
  hotAdmitted: number
  hotSurvivors: number
  coldRefreshed: boolean
}

describe('key floods (issue 6, item 6)', () => {
  it(`${KEYS.toLocaleString('en')} distinct keys: heap bounded by maxKeys, hot tenants survive the LRU`, async () => {
    const run = runChild(
      'key-flood.mjs',
      [JSON.stringify({ keys: KEYS, maxKeys: MAX_KEYS, hotEvery: 1000, budgetMs: 150_000, checkpoints: 20 })],
      // A fixed old-space ceiling well above the bound: a store that leaked would crash the child, not the machine.
      { nodeArgs: ['--expose-gc', '--max-old-space-size=1024'], timeLimitMs: 200_000 },
    )
    const [report] = (await run.done) as [FloodReport]
    const bound = report.baselineHeap + MAX_KEYS * BYTES_PER_KEY_BOUND + SLACK_BYTES
    const full = report.heapSamplesMB.slice(report.heapSamplesMB.length >> 1)
    summary('key flood', {
      keys: report.keys,
      maxKeys: MAX_KEYS,
      elapsedMs: report.elapsedMs,
      decisionsPerSec: report.ratePerSec,
      baselineHeapMB: report.baselineHeap / 1e6,
      maxHeapMB: report.maxHeap / 1e6,
      boundMB: bound / 1e6,
      bytesPerKey: Math.round((report.maxHeap - report.baselineHeap) / MAX_KEYS),
      heapSecondHalfMB: `${Math.min(...full)}..${Math.max(...full)}`,
      evictions: report.evictions,
      hotChecks: report.hotChecks,
      hotAdmitted: report.hotAdmitted,
    })
    expect(report.timedOut, `the flood took longer than its time budget (${report.keys} keys done)`).toBe(
      false,
    )
    expect(report.keys).toBe(KEYS)
    expect(report.maxHeap).toBeLessThan(bound)
    // Bounded, not merely slow to grow: the heap is flat once the store is full.
    expect(Math.max(...full) - Math.min(...full)).toBeLessThan(16)
    expect(report.size).toBe(MAX_KEYS)
    // Every flood key beyond maxKeys pushed one bucket out (the cold tenant among them).
    expect(report.evictions).toBe(KEYS + 4 - MAX_KEYS)
    expect(report.coldRefreshed).toBe(true)
    // Hot tenants, each touched every 3000 flood keys (far fewer than maxKeys), were never evicted:
    // their drained buckets refused every peek and still refuse at the end.
    expect(report.hotAdmitted).toBe(0)
    expect(report.hotSurvivors).toBe(3)
  })
})

describe('key floods on the default limiter (issue 11)', () => {
  it('createLimiter() with no store: 1,000,000 distinct keys (10× its 100,000), heap bounded, hot tenants kept', async () => {
    const keys = Number(process.env.FLOOD_KEYS_DEFAULT ?? 1_000_000)
    const maxKeys = 100_000
    const run = runChild(
      'key-flood.mjs',
      [
        JSON.stringify({
          keys,
          maxKeys,
          hotEvery: 1000,
          budgetMs: 120_000,
          checkpoints: 10,
          store: 'default',
        }),
      ],
      { nodeArgs: ['--expose-gc', '--max-old-space-size=1024'], timeLimitMs: 150_000 },
    )
    const [report] = (await run.done) as [FloodReport]
    const bound = report.baselineHeap + maxKeys * BYTES_PER_KEY_BOUND + SLACK_BYTES
    summary('key flood, default limiter', {
      keys: report.keys,
      maxKeys,
      elapsedMs: report.elapsedMs,
      decisionsPerSec: report.ratePerSec,
      maxHeapMB: report.maxHeap / 1e6,
      boundMB: bound / 1e6,
    })
    expect(report.timedOut).toBe(false)
    expect(report.maxHeap).toBeLessThan(bound)
    expect(report.coldRefreshed).toBe(true)
    expect(report.hotAdmitted).toBe(0)
    expect(report.hotSurvivors).toBe(3)
  })
})
