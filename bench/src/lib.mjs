// Helpers shared by the orchestrator and the workers.

/** A worker's options: the JSON in argv[2]. */
export function workerConfig() {
  const raw = process.argv[2]
  if (!raw) throw new Error('worker: pass the JSON config as the first argument')
  return JSON.parse(raw)
}

/** The worker's answer: one tagged line the orchestrator looks for in stdout. */
export function reply(result) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

export const now = () => performance.now()

/**
 * Calls `decide(i)` one at a time (awaited, as middleware would) until `ms` pass or `maxOps` calls are made.
 * Checks the time every 256 calls so the clock read does not dominate.
 */
export async function timedLoop(decide, { ms, maxOps, start = 0 }) {
  let ops = 0
  let admitted = 0
  const t0 = now()
  const end = t0 + ms
  while (ops < maxOps) {
    for (let j = 0; j < 256; j++) {
      if (await decide(start + ops)) admitted++
      ops++
    }
    if (now() >= end) break
  }
  return { ops, admitted, ms: now() - t0 }
}

/**
 * `concurrency` loops share one op counter; each records its decisions' latencies (ms) until time or count runs out.
 */
export async function concurrentLoop(decide, { ms, maxOps, concurrency, start = 0, record = true }) {
  const latencies = record ? new Float64Array(maxOps) : undefined
  let ops = 0
  let admitted = 0
  let errors = 0
  const t0 = now()
  const end = t0 + ms
  async function lane() {
    while (ops < maxOps && now() < end) {
      const i = ops++
      const t = now()
      try {
        if (await decide(start + i)) admitted++
      } catch {
        errors++
      }
      if (latencies) latencies[i] = now() - t
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const elapsed = now() - t0
  const done = Math.min(ops, maxOps)
  return { ops: done, admitted, errors, ms: elapsed, latencies: latencies?.subarray(0, done) }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Fisher–Yates with a seeded generator, so a run's order can be replayed. */
export function shuffle(items, random) {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

export function seededRandom(seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Every fixed-window peer is configured with this window. */
export const WINDOW_MS = 1000

/**
 * At most how many admissions one key's `level` allows over `ms`: 'bucket' is capacity + rate × time,
 * 'window' a limit per fixed window started at the first hit, 'none' (the references) no limit.
 */
export function admissionBound(semantics, level, ms) {
  if (semantics === 'bucket') return level.capacity + Math.ceil((level.perSecond * ms) / 1000)
  if (semantics === 'window') return level.capacity * (Math.ceil(ms / WINDOW_MS) + 1)
  return Number.POSITIVE_INFINITY
}

/** The key of chain level `level` (0 user, 1 org, 2 global), as every implementation names them. */
export const levelKey = (level, user, org) => (level === 0 ? user : level === 1 ? org : 'global')

/**
 * express-rate-limit style stores (`increment(key) → { totalHits }`) stacked as their users stack them:
 * one call per level, stopping at the first level over its limit.
 */
export function stackedStores(stores) {
  return async (user, org) => {
    for (let l = 0; l < stores.length; l++) {
      const { store, limit } = stores[l]
      const { totalHits } = await store.increment(levelKey(l, user, org))
      if (totalHits > limit) return false
    }
    return true
  }
}
