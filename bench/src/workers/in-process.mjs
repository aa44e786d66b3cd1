// One in-process sample: decisions/s of one limiter, and admissions against what its limit allows.
//   regime 'pass': limits far above the load, every decision admitted;
//   regime 'reject': the user level allows 1 per hour, so after its first decision every key is refused.
// `keys` distinct users (1000 orgs when there are many) are asked in turn. The default-limiter sample of
// issue 11 asks `keys` distinct keys of which the store holds at most `capacity`.
import { inProcessLimiters } from '../impls/in-process.mjs'
import { chainBound, HOUR_MS, reply, timedLoop, workerConfig } from '../lib.mjs'

const { limiter, keys, levels: levelCount, regime, warmupMs, ms, maxOps, fillKeys = keys } = workerConfig()
const impl = inProcessLimiters[limiter]
if (!impl) throw new Error(`unknown limiter ${limiter}`)

const FAR_ABOVE = 1_000_000_000
const levels = [{ limit: regime === 'pass' ? FAR_ABOVE : 1, windowMs: HOUR_MS }]
if (levelCount === 3) {
  // The user level binds in the reject regime; org and global have room for every user under them.
  levels.push({ limit: regime === 'pass' ? FAR_ABOVE : 1000, windowMs: HOUR_MS })
  levels.push({ limit: FAR_ABOVE, windowMs: HOUR_MS })
}
const orgCount = Math.min(keys, 1000)
const chains = Array.from({ length: keys }, (_, i) => [`u${i}`, `o${i % orgCount}`, 'global'])
const decide = impl.make(levels)
const step = (i) => decide(chains[i % keys])

const t0 = performance.now()
const warm = await timedLoop(step, { ms: warmupMs, maxOps: Number.MAX_SAFE_INTEGER })
// `fillKeys` (every key by default) are touched before measuring, so 100k keys measures a full store, not
// its filling; the default limiter's cold set only needs its store full and evicting.
const fill =
  warm.ops < fillKeys
    ? await timedLoop(step, { ms: 60_000, maxOps: fillKeys - warm.ops, start: warm.ops })
    : { ops: 0, admitted: 0 }
const start = warm.ops + fill.ops
const run = await timedLoop(step, { ms, maxOps, start })
const totalMs = performance.now() - t0
const total = start + run.ops

const bound = chainBound(
  impl.semantics,
  levels,
  [Math.min(keys, total), Math.min(orgCount, total), 1],
  totalMs,
)
const admitted = warm.admitted + fill.admitted + run.admitted
reply({
  opsPerSec: (run.ops / run.ms) * 1000,
  ops: run.ops,
  ms: run.ms,
  admitted,
  offered: total,
  bound,
  // pass: nothing may be refused; reject: nothing above the limit, and the limit must actually bind.
  correct: admitted <= bound && (regime === 'pass' ? admitted === total : admitted < total),
})
