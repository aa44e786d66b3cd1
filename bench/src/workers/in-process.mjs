// One in-process sample: decisions/s of one limiter, and admissions against what its limit allows.
import { inProcessLimiters } from '../impls/in-process.mjs'
import { admissionBound, reply, timedLoop, workerConfig } from '../lib.mjs'

const { limiter, keys, chain, warmupMs, ms, maxOps } = workerConfig()
const impl = inProcessLimiters[limiter]
if (!impl) throw new Error(`unknown limiter ${limiter}`)

// One key: a limit that lets about a third of the offered load through; 100k keys: 10 per key per second.
const perKey = keys === 1 ? 1_000_000 : 10
const orgCount = keys === 1 ? 1 : 1000
const levels = [{ capacity: perKey, perSecond: perKey }]
if (chain) {
  levels.push({ capacity: perKey * 100, perSecond: perKey * 100 })
  levels.push({ capacity: 1_000_000_000, perSecond: 1_000_000_000 })
}
const users = Array.from({ length: keys }, (_, i) => `u${i}`)
const orgs = Array.from({ length: keys }, (_, i) => `o${i % orgCount}`)
const decide = impl.make(levels)
const step = (i) => {
  const k = i % keys
  return decide(users[k], orgs[k])
}

const t0 = performance.now()
const warm = await timedLoop(step, { ms: warmupMs, maxOps: Number.MAX_SAFE_INTEGER })
// Every key is touched before measuring, so 100k keys measures a full store, not its filling.
const fill =
  warm.ops < keys
    ? await timedLoop(step, { ms: 60_000, maxOps: keys - warm.ops, start: warm.ops })
    : { ops: 0, admitted: 0 }
const start = warm.ops + fill.ops
const run = await timedLoop(step, { ms, maxOps, start })
const totalMs = performance.now() - t0
const total = start + run.ops

const touched = [Math.min(keys, total), Math.min(orgCount, total), 1]
const bound = Math.min(
  ...levels.map((level, l) => touched[l] * admissionBound(impl.semantics, level, totalMs)),
)
const admitted = warm.admitted + fill.admitted + run.admitted
reply({
  opsPerSec: (run.ops / run.ms) * 1000,
  ops: run.ops,
  ms: run.ms,
  admitted,
  offered: total,
  bound,
  correct: admitted <= bound,
})
