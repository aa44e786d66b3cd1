// One heap sample (run with --expose-gc): bytes of memory (JS heap and array buffers) per key after one decision each for `keys` keys.
import { inProcessLimiters } from '../impls/in-process.mjs'
import { HOUR_MS, reply, workerConfig } from '../lib.mjs'

const { limiter, keys } = workerConfig()
const impl = inProcessLimiters[limiter]
if (!impl) throw new Error(`unknown limiter ${limiter}`)
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')

// Typed arrays keep their elements outside the JS heap (arrayBuffers), so both are counted: a limiter that
// stores its state in typed arrays pays for it here as one that stores objects does.
function settledHeap() {
  for (let i = 0; i < 4; i++) globalThis.gc()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}

// 10 per hour: no state expires (and drops out of the count) while it is measured.
const decide = impl.make([{ limit: 10, windowMs: HOUR_MS }])
// One decision first, so code and fixed structures (e.g. lru-cache's arrays sized to its maximum) are not counted per key.
await decide(['warm', 'o', 'global'])
const before = settledHeap()
let admitted = 0
for (let i = 0; i < keys; i++) {
  // Keys are made here and kept only by the limiter, so each pays for its own key string, as a request's would.
  if (await decide([`user-${i}`, 'o', 'global'])) admitted++
}
const after = settledHeap()
// A last decision keeps the limiter reachable until `after` is read; otherwise GC would take it all.
await decide(['user-0', 'o', 'global'])
// Every key was asked once under a limit of 10: every limiter admits every one.
reply({ bytesPerKey: (after - before) / keys, keys, admitted, correct: admitted === keys })
