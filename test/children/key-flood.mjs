// Floods a memory store with distinct keys while a few hot tenants keep using theirs; reports heap and
// eviction figures as one JSON line. Run with --expose-gc so heap figures are measured after a full GC.
// Args (JSON in argv[2]): { keys, maxKeys, hotEvery, budgetMs, checkpoints, store: 'memory' | 'default' }
// 'default' floods createLimiter() with no store: the in-process store the limiter builds for itself.
import { createLimiter, normalizePolicy } from '@tollgate/core'
import { makeBook } from '@tollgate/core/store'
import { memoryStore } from '@tollgate/memory'

const { keys, maxKeys, hotEvery, budgetMs, checkpoints, store: kind = 'memory' } = JSON.parse(process.argv[2])
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')

const heapAfterGc = () => {
  globalThis.gc()
  // lru-cache keeps its index in typed arrays, which live outside the V8 heap: count them too.
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}

// A frozen clock: no bucket refills or expires during the flood, so only LRU eviction can drop a bucket.
const now = 1_800_000_000_000
const policy = normalizePolicy({ capacity: 10, refill: { tokens: 1, per: '1s' } })
const store = kind === 'memory' ? memoryStore({ maxKeys, clock: () => now }) : undefined
const limiter = kind === 'default' ? createLimiter({ levels: ['user'], policy, clock: () => now }) : undefined
const book = makeBook({ levels: ['user'], base: [policy], tiers: new Map(), defaultTier: undefined })
/** One decision, as the store makes it, or through the default limiter. */
const decide = (key, cost = 1) =>
  store ? store.decideNow({ book, keys: [key], cost }) : limiter.check(key, { cost })

const baselineHeap = heapAfterGc()
const hotTenants = ['tenant-hot-1', 'tenant-hot-2', 'tenant-hot-3']
// Drain every hot tenant: were one evicted, it would come back with a full bucket and be admitted again.
for (const tenant of hotTenants) {
  for (let i = 0; i < 10; i++) await decide(tenant)
}
// A cold tenant drained once and never touched again: LRU documents that it goes after maxKeys others.
for (let i = 0; i < 10; i++) await decide('tenant-cold')

let hotChecks = 0
let hotAdmitted = 0
let maxHeap = 0
const heapSamples = []
const started = performance.now()
let done = 0
let timedOut = false
const every = Math.max(1, Math.floor(keys / checkpoints))
for (; done < keys; done++) {
  if (store) decide(`flood-${done}`)
  else await decide(`flood-${done}`)
  if (done % hotEvery === 0) {
    // A hot tenant comes back between flood keys: a peek (cost 0) is enough to mark it used.
    const result = await decide(hotTenants[(done / hotEvery) % hotTenants.length], 0)
    hotChecks++
    if (result.allowed) hotAdmitted++
  }
  if (done > 0 && done % every === 0) {
    const heap = heapAfterGc()
    heapSamples.push(Math.round(heap / 1e6))
    maxHeap = Math.max(maxHeap, heap)
    if (performance.now() - started > budgetMs) {
      timedOut = true
      done++
      break
    }
  }
}
const elapsedMs = performance.now() - started
maxHeap = Math.max(maxHeap, heapAfterGc())
let hotSurvivors = 0
for (const t of hotTenants) if (!(await decide(t, 0)).allowed) hotSurvivors++
const coldRefreshed = (await decide('tenant-cold', 0)).allowed
const stats = store ? store.stats() : { size: undefined, evictions: undefined }
process.stdout.write(
  `${JSON.stringify({
    keys: done,
    timedOut,
    elapsedMs: Math.round(elapsedMs),
    ratePerSec: Math.round(done / (elapsedMs / 1000)),
    baselineHeap,
    maxHeap,
    heapSamplesMB: heapSamples,
    size: stats.size,
    evictions: stats.evictions,
    hotChecks,
    hotAdmitted,
    hotSurvivors,
    coldRefreshed,
  })}\n`,
)
