// Helpers shared by the orchestrator and the workers.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

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

/** What a Redis decision returns when the store failed and the limiter answered by its fallback. */
export const DEGRADED = 'degraded'

/**
 * `concurrency` loops share one op counter; each records its decisions' latencies (ms) until time or count
 * runs out. `decide` resolves truthy (admitted), falsy (refused) or DEGRADED; a throw counts as an error.
 */
export async function concurrentLoop(decide, { ms, maxOps, concurrency, start = 0, record = true }) {
  const latencies = record ? new Float64Array(maxOps) : undefined
  let ops = 0
  let admitted = 0
  let degraded = 0
  let errors = 0
  const t0 = now()
  const end = t0 + ms
  async function lane() {
    while (ops < maxOps && now() < end) {
      const i = ops++
      const t = now()
      try {
        const outcome = await decide(start + i)
        if (outcome === DEGRADED) degraded++
        else if (outcome) admitted++
      } catch {
        errors++
      }
      if (latencies) latencies[i] = now() - t
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const elapsed = now() - t0
  const done = Math.min(ops, maxOps)
  return { ops: done, admitted, degraded, errors, ms: elapsed, latencies: latencies?.subarray(0, done) }
}

const clockTicksPerSecond =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100

/**
 * CPU time (user + system, every thread) a process has used, in ms: utime + stime from /proc/<pid>/stat.
 * Undefined where /proc is missing. Resolution is one clock tick (10 ms), so read it over seconds, not ms.
 */
export function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After "pid (comm) ", fields start at field 3 (state); utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond
  } catch {
    return undefined
  }
}

/**
 * CPU time the hypervisor gave other guests while this one wanted it, in ms, summed over the cores: the
 * `steal` column of /proc/stat's first line (`text`, read when not given). Undefined where there is none.
 * A sample that lost much of it says more about the host than about the limiter.
 */
export function hostStealMs(text) {
  try {
    const fields = (text ?? readFileSync('/proc/stat', 'utf8')).split('\n', 1)[0].trim().split(/\s+/)
    const ticks = Number(fields[8])
    return fields[0] === 'cpu' && Number.isFinite(ticks) ? (ticks * 1000) / clockTicksPerSecond : undefined
  } catch {
    return undefined
  }
}

/** µs of CPU per operation between two processCpuMs readings. */
export function cpuMicrosPerOp(before, after, ops) {
  if (before === undefined || after === undefined || !ops) return undefined
  return ((after - before) * 1000) / ops
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

export const SECOND_MS = 1000
export const HOUR_MS = 3_600_000
/** HTTP limits per hour by regime: far above any run's load, or far below it. */
export const HTTP_LIMITS = { pass: 1_000_000_000, reject: 10 }

/**
 * Every limiter is given the same rule per level: `{ limit, windowMs }`. Token buckets read it as capacity
 * `limit` refilling `limit` per `windowMs`; fixed-window peers as `limit` per window of `windowMs`.
 * At most how many admissions one key's level allows over `ms`: 'bucket' capacity + rate × time,
 * 'window' the limit per fixed window started at the first hit (a run touches at most ⌈ms/window⌉ + 1).
 */
export function admissionBound(semantics, level, ms) {
  if (semantics === 'bucket') return level.limit + Math.ceil((level.limit * ms) / level.windowMs)
  if (semantics === 'window') return level.limit * (Math.ceil(ms / level.windowMs) + 1)
  return Number.POSITIVE_INFINITY
}

/**
 * The most a run may admit: at each level, the keys it touched times one key's bound; the chain admits
 * no more than its tightest level. `touched[l]` is the number of distinct keys of level l.
 */
export function chainBound(semantics, levels, touched, ms) {
  return Math.min(...levels.map((level, l) => touched[l] * admissionBound(semantics, level, ms)))
}

/**
 * express-rate-limit style stores (`increment(key) → { totalHits }`) stacked as their users stack them:
 * one call per level, stopping at the first level over its limit. `chain` is the keys of the levels.
 */
export function stackedStores(stores) {
  return async (chain) => {
    for (let l = 0; l < stores.length; l++) {
      const { store, limit } = stores[l]
      const { totalHits } = await store.increment(chain[l])
      if (totalHits > limit) return false
    }
    return true
  }
}

/** Adds the lines of one INFO commandstats reply to `total` (name → { calls, usec }) and returns it. */
export function parseCommandStats(text, total = new Map()) {
  for (const line of text.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (!match) continue
    const entry = total.get(match[1]) ?? { calls: 0, usec: 0 }
    entry.calls += Number(match[2])
    entry.usec += Number(match[3])
    total.set(match[1], entry)
  }
  return total
}

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])
const ADMIN_COMMANDS = new Set(['info', 'config'])

/**
 * Redis µs spent on the decisions: a script's usec already holds the commands it calls, so those are not
 * added again. A plain command counts by the share of its calls that clients sent (the rest ran inside
 * scripts); EXEC is left out because the commands it runs are counted as sent. Also returns the calls
 * clients sent, per command, so the mix per decision can be read in the JSON. `stats` is INFO commandstats
 * as name → { calls, usec }; `sent` the calls clients sent, lowercase name → count.
 */
export function commandMicros(stats, sent) {
  let usec = 0
  const mix = {}
  for (const [name, { calls, usec: spent }] of stats) {
    const base = name.split('|')[0]
    if (ADMIN_COMMANDS.has(base) || base === 'exec' || calls === 0) continue
    const clientCalls = sent.get(base) ?? 0
    if (SCRIPT_COMMANDS.has(base)) usec += spent
    else usec += spent * Math.min(1, clientCalls / calls)
    mix[name] = { calls, clientCalls, usec: spent }
  }
  return { usec, mix }
}
