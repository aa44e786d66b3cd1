// The benchmark: every figure of tollgate and its peers in one run, each sample in a fresh process,
// cases shuffled anew every round. Writes results/latest.json and results/latest.md.
//   node src/run.mjs [--quick] [--only=in-process,default-limiter,memory,redis,redis-cluster,http] [--rounds=N]
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { hostStealMs, seededRandom, shuffle } from './lib.mjs'
import { runWorker, startRedis, startRedisCluster, stopAll } from './processes.mjs'
import { ceilingSample, ensureWrk, httpSample } from './programs.mjs'
import { evaluateTargets, renderMarkdown } from './report.mjs'
import { inProcessSubjects, redisSubjects } from './subjects.mjs'

const args = process.argv.slice(2)
const option = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const quick = args.includes('--quick')
const ALL_GROUPS = ['in-process', 'default-limiter', 'memory', 'redis', 'redis-cluster', 'http']
const groups = (option('only') ?? ALL_GROUPS.join(',')).split(',')
// Anything else (--help included) prints the usage and starts nothing: a full run takes 20 minutes.
const unknown = args.filter((a) => a !== '--quick' && !/^--(only|rounds|seed)=/.test(a))
const badGroups = groups.filter((g) => !ALL_GROUPS.includes(g))
if (unknown.length || badGroups.length) {
  console.error(`usage: node src/run.mjs [--quick] [--only=${ALL_GROUPS.join(',')}] [--rounds=N] [--seed=N]`)
  if (unknown.length || badGroups.length)
    console.error(`not understood: ${[...unknown, ...badGroups].join(' ')}`)
  process.exit(2)
}

/** Durations: quick keeps the whole run to a few minutes; full gives each sample time to settle (~20 min). */
const settings = quick
  ? {
      rounds: 1,
      inProcess: { warmupMs: 150, ms: 300 },
      memoryKeys: 200_000,
      redis: { warmupMs: 200, ms: 500 },
      redisMemoryKeys: 2_000,
      ceiling: { requests: 200_000, pipeline: 16, connections: 50 },
      http: { warmupSeconds: 1, seconds: 1, connections: 32 },
    }
  : {
      rounds: 3,
      inProcess: { warmupMs: 300, ms: 1000 },
      memoryKeys: 1_000_000,
      redis: { warmupMs: 500, ms: 1500 },
      redisMemoryKeys: 10_000,
      ceiling: { requests: 500_000, pipeline: 16, connections: 50 },
      http: { warmupSeconds: 1, seconds: 3, connections: 64 },
    }
settings.rounds = Number(option('rounds') ?? settings.rounds)
// The default limiter's store holds this many keys (core's documented default); issue 11 asks 10× as many.
settings.defaultLimiter = { capacity: 100_000, warmKeys: 10_000, coldKeys: 1_000_000 }
// Bounds on every loop beside its time limit.
const MAX_IN_PROCESS_OPS = 200_000_000
const MAX_REDIS_OPS = 5_000_000

// CPU 1 runs what is measured (the limiter, the server, redis-server); CPU 0 the load generator and client.
const MEASURED_CPU = 1
const LOAD_CPU = 0

const names = (table, group) => Object.keys(table).filter((n) => !group || table[n].groups.includes(group))

/** The Redis rows of issue 12: latency at c=1 and c=16, throughput at c=256, one tenant far over its limit. */
const REDIS_SCENARIOS = [
  { concurrency: 1, levels: 1 },
  { concurrency: 16, levels: 1 },
  { concurrency: 256, levels: 1 },
  { concurrency: 256, levels: 3 },
  { concurrency: 256, levels: 1, hot: true },
]

function cases() {
  const list = []
  const add = (group, scenario, subject) => list.push({ group, scenario, subject })
  if (groups.includes('in-process'))
    for (const keys of [1, 100_000])
      for (const levels of [1, 3])
        for (const regime of ['pass', 'reject'])
          for (const limiter of names(inProcessSubjects, 'speed'))
            add('in-process', { keys, levels, regime }, limiter)
  if (groups.includes('default-limiter'))
    for (const keySet of ['warm', 'cold']) add('default-limiter', { keySet }, 'tollgate default limiter')
  if (groups.includes('memory'))
    for (const limiter of names(inProcessSubjects, 'heap'))
      add('memory', { keys: settings.memoryKeys }, limiter)
  if (groups.includes('redis')) {
    for (const scenario of REDIS_SCENARIOS)
      for (const limiter of Object.keys(redisSubjects)) add('redis', scenario, limiter)
    for (const limiter of Object.keys(redisSubjects))
      if (!redisSubjects[limiter].autoPipelining)
        add('redis-memory', { keys: settings.redisMemoryKeys }, limiter)
    for (const levels of [1, 3])
      add('redis-ceiling', { levels }, `redis-benchmark -P ${settings.ceiling.pipeline}`)
  }
  if (groups.includes('redis-cluster'))
    for (const levels of [1, 3])
      for (const limiter of Object.keys(redisSubjects))
        if (redisSubjects[limiter].cluster) add('redis-cluster', { concurrency: 256, levels }, limiter)
  if (groups.includes('http'))
    for (const framework of ['express', 'koa', 'fastify'])
      for (const regime of ['pass', 'reject'])
        for (const variant of ['bare', 'tollgate', 'peer']) add('http', { framework, regime }, variant)
  return list
}

let redis
let cluster
async function sample(c) {
  const { group, scenario, subject } = c
  if (group === 'in-process') {
    const config = { limiter: subject, ...scenario, ...settings.inProcess, maxOps: MAX_IN_PROCESS_OPS }
    return runWorker('in-process', config, { cpu: MEASURED_CPU })
  }
  if (group === 'default-limiter') {
    const { warmKeys, coldKeys, capacity } = settings.defaultLimiter
    const keys = scenario.keySet === 'warm' ? warmKeys : coldKeys
    // The cold set is measured once the store is full and evicting; its keys then are all new to it.
    const fillKeys = Math.min(keys, Math.round(capacity * 1.5))
    const config = {
      limiter: subject,
      keys,
      fillKeys,
      levels: 1,
      regime: 'pass',
      ...settings.inProcess,
      maxOps: MAX_IN_PROCESS_OPS,
    }
    return runWorker('in-process', config, { cpu: MEASURED_CPU })
  }
  if (group === 'memory') {
    const config = { limiter: subject, keys: scenario.keys }
    return runWorker('memory', config, { cpu: MEASURED_CPU, nodeFlags: ['--expose-gc'], timeoutMs: 300_000 })
  }
  if (group === 'redis-ceiling') {
    await flush([{ host: '127.0.0.1', port: redis.port }])
    return ceilingSample(scenario, { redis, ceiling: settings.ceiling, loadCpu: LOAD_CPU })
  }
  if (group === 'redis' || group === 'redis-memory' || group === 'redis-cluster') {
    const onCluster = group === 'redis-cluster'
    const nodes = onCluster ? cluster.nodes : [{ host: '127.0.0.1', port: redis.port }]
    await flush(nodes)
    const target = {
      limiter: subject,
      nodes,
      cluster: onCluster,
      redisPids: onCluster ? cluster.pids : [redis.pid],
    }
    const config =
      group === 'redis-memory'
        ? { ...target, mode: 'memory', keys: scenario.keys }
        : { ...target, keys: 10_000, ...scenario, ...settings.redis, maxOps: MAX_REDIS_OPS }
    return runWorker('redis', config, { cpu: LOAD_CPU })
  }
  if (group === 'http') {
    return httpSample(
      { ...scenario, variant: subject },
      { http: settings.http, measuredCpu: MEASURED_CPU, loadCpu: LOAD_CPU },
    )
  }
  throw new Error(`unknown group ${group}`)
}

/** Empties every node before a sample; loaded scripts stay, as they would in production. */
async function flush(nodes) {
  const { Redis } = await import('ioredis')
  for (const node of nodes) {
    const client = new Redis({ ...node, lazyConnect: true })
    await client.connect()
    await client.flushall()
    client.disconnect()
  }
}

async function redisVersion(port) {
  const { Redis } = await import('ioredis')
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true })
  await client.connect()
  const info = await client.info('server')
  client.disconnect()
  return /redis_version:(\S+)/.exec(info)?.[1]
}

function machine() {
  const list = cpus()
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  return {
    cpu: list[0]?.model.trim(),
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    commit: git.status === 0 ? git.stdout.trim() : undefined,
  }
}

// Ctrl-C or a kill: every server and Redis this run started is stopped by its PID.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(signal, () => {
    stopAll()
    process.exit(code)
  })
}

async function main() {
  const all = cases()
  const seed = Number(option('seed') ?? Date.now() % 2 ** 31)
  const random = seededRandom(seed)
  if (all.some((c) => c.group === 'http')) ensureWrk()
  const started = Date.now()
  const samples = new Map(all.map((c) => [c, []]))
  const failures = []
  let meta
  try {
    if (all.some((c) => c.group.startsWith('redis') && c.group !== 'redis-cluster'))
      redis = await startRedis({ cpu: MEASURED_CPU })
    if (all.some((c) => c.group === 'redis-cluster')) cluster = await startRedisCluster({ cpu: MEASURED_CPU })
    const port = redis?.port ?? cluster?.nodes[0].port
    meta = { ...machine(), redis: port ? await redisVersion(port) : undefined, quick, seed }
    for (let round = 1; round <= settings.rounds; round++) {
      // Shuffled anew each round: drift (thermal, other load) spreads over every subject alike.
      const order = shuffle(all, random)
      for (const [i, c] of order.entries()) {
        const label = `${c.group} ${JSON.stringify(c.scenario)} ${c.subject}`
        process.stderr.write(`round ${round}/${settings.rounds} ${i + 1}/${order.length} ${label}\n`)
        const t0 = Date.now()
        const steal0 = hostStealMs()
        try {
          const figures = await sample(c)
          const steal1 = hostStealMs()
          const stealMs = steal0 === undefined || steal1 === undefined ? undefined : steal1 - steal0
          samples.get(c).push({ ...figures, sampleMs: Date.now() - t0, stealMs })
        } catch (error) {
          failures.push({ round, ...c, error: String(error.message ?? error).slice(0, 600) })
          process.stderr.write(`  failed: ${String(error.message ?? error).slice(0, 300)}\n`)
        }
      }
    }
  } finally {
    await redis?.stop()
    await cluster?.stop()
  }
  const results = all.map((c) => ({ ...c, samples: samples.get(c) }))
  const report = {
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    machine: meta,
    rounds: settings.rounds,
    settings,
    results,
    failures,
  }
  report.targets = evaluateTargets(report)
  const dir = fileURLToPath(new URL('../results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  const partial = option('only') !== undefined
  const name = quick ? 'quick' : partial ? 'partial' : 'latest'
  writeFileSync(`${dir}${name}.json`, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(`${dir}${name}.md`, renderMarkdown(report))
  process.stderr.write(`wrote results/${name}.md and results/${name}.json in ${report.seconds}s\n`)
  if (failures.length) process.exitCode = 1
}

await main()
