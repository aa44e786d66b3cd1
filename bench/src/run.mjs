// The benchmark: every figure of tollgate and its peers in one run, each sample in a fresh process,
// cases shuffled anew every round. Writes results/latest.json and results/latest.md.
//   node src/run.mjs [--quick] [--only=in-process,memory,redis,http] [--rounds=N]
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { inProcessLimiters } from './impls/in-process.mjs'
import { redisLimiters } from './impls/redis.mjs'
import { seededRandom, shuffle } from './lib.mjs'
import { freePort, runWorker, startRedis, startServer, stopAll } from './processes.mjs'
import { evaluateTargets, renderMarkdown } from './report.mjs'

const args = process.argv.slice(2)
const option = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const quick = args.includes('--quick')
const groups = (option('only') ?? 'in-process,memory,redis,http').split(',')

/** Durations: quick keeps each figure to a few seconds; full gives each sample time to settle. */
const settings = quick
  ? {
      rounds: 2,
      inProcess: { warmupMs: 200, ms: 500 },
      memoryKeys: 200_000,
      redis: { warmupMs: 200, ms: 500 },
      redisMemoryKeys: 2_000,
      http: { warmupSeconds: 1, seconds: 1, connections: 32 },
    }
  : {
      rounds: 5,
      inProcess: { warmupMs: 500, ms: 2000 },
      memoryKeys: 1_000_000,
      redis: { warmupMs: 500, ms: 2000 },
      redisMemoryKeys: 10_000,
      http: { warmupSeconds: 1, seconds: 4, connections: 64 },
    }
settings.rounds = Number(option('rounds') ?? settings.rounds)
// Bounds on every loop beside its time limit.
const MAX_IN_PROCESS_OPS = 200_000_000
const MAX_REDIS_OPS = 5_000_000

// CPU 1 runs what is measured (the limiter, the server, redis-server); CPU 0 the load generator and client.
const MEASURED_CPU = 1
const LOAD_CPU = 0

function cases() {
  const list = []
  if (groups.includes('in-process')) {
    for (const keys of [1, 100_000])
      for (const chain of [false, true])
        for (const limiter of Object.keys(inProcessLimiters))
          list.push({ group: 'in-process', scenario: { keys, levels: chain ? 3 : 1 }, subject: limiter })
  }
  if (groups.includes('memory')) {
    for (const limiter of Object.keys(inProcessLimiters))
      list.push({ group: 'memory', scenario: { keys: settings.memoryKeys }, subject: limiter })
  }
  if (groups.includes('redis')) {
    for (const concurrency of [1, 16, 256])
      for (const chain of [false, true])
        for (const limiter of Object.keys(redisLimiters))
          list.push({ group: 'redis', scenario: { concurrency, levels: chain ? 3 : 1 }, subject: limiter })
  }
  if (groups.includes('redis') || groups.includes('redis-memory')) {
    for (const limiter of Object.keys(redisLimiters)) {
      if (limiter.includes('auto-pipelined')) continue
      list.push({ group: 'redis-memory', scenario: { keys: settings.redisMemoryKeys }, subject: limiter })
    }
  }
  if (groups.includes('http')) {
    for (const framework of ['express', 'koa', 'fastify'])
      for (const mode of ['pass', 'reject'])
        for (const variant of ['bare', 'tollgate', 'peer'])
          list.push({ group: 'http', scenario: { framework, mode }, subject: variant })
  }
  return list
}

let redis
async function sample(c) {
  const { group, scenario, subject } = c
  if (group === 'in-process') {
    return runWorker(
      'in-process',
      {
        limiter: subject,
        keys: scenario.keys,
        chain: scenario.levels === 3,
        ...settings.inProcess,
        maxOps: MAX_IN_PROCESS_OPS,
      },
      { cpu: MEASURED_CPU },
    )
  }
  if (group === 'memory') {
    return runWorker(
      'memory',
      { limiter: subject, keys: scenario.keys },
      { cpu: MEASURED_CPU, nodeFlags: ['--expose-gc'], timeoutMs: 300_000 },
    )
  }
  if (group === 'redis' || group === 'redis-memory') {
    await flushRedis()
    const config =
      group === 'redis'
        ? {
            limiter: subject,
            port: redis.port,
            keys: 10_000,
            chain: scenario.levels === 3,
            concurrency: scenario.concurrency,
            ...settings.redis,
            maxOps: MAX_REDIS_OPS,
          }
        : { mode: 'memory', limiter: subject, port: redis.port, keys: scenario.keys }
    return runWorker('redis', config, { cpu: LOAD_CPU })
  }
  if (group === 'http') {
    const port = await freePort()
    const server = await startServer(
      'http-server',
      { framework: scenario.framework, variant: subject, mode: scenario.mode, port },
      { cpu: MEASURED_CPU },
    )
    try {
      const result = await runWorker(
        'http-load',
        { url: `http://127.0.0.1:${port}/`, ...settings.http },
        { cpu: LOAD_CPU },
      )
      // pass: nothing may be refused; reject: at most the one request the hour allows gets through.
      const correct =
        result.errors === 0 &&
        (scenario.mode === 'pass' ? result.limited === 0 : subject === 'bare' || result.ok <= 1)
      return { ...result, opsPerSec: result.requestsPerSec, correct }
    } finally {
      await server.stop()
    }
  }
  throw new Error(`unknown group ${group}`)
}

async function flushRedis() {
  const { Redis } = await import('ioredis')
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true })
  await client.connect()
  await client.flushall()
  // Scripts stay loaded, as they would in production; keys and counters start empty.
  client.disconnect()
}

async function redisVersion() {
  const { Redis } = await import('ioredis')
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true })
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

process.on('SIGINT', () => {
  stopAll()
  process.exit(130)
})

async function main() {
  const all = cases()
  const seed = Number(option('seed') ?? Date.now() % 2 ** 31)
  const random = seededRandom(seed)
  const needsRedis = all.some((c) => c.group.startsWith('redis'))
  if (needsRedis) redis = await startRedis({ cpu: MEASURED_CPU })
  const meta = { ...machine(), redis: needsRedis ? await redisVersion() : undefined, quick, seed }
  const samples = new Map(all.map((c) => [c, []]))
  const failures = []
  const started = Date.now()
  try {
    for (let round = 1; round <= settings.rounds; round++) {
      // Shuffled anew each round: drift (thermal, other load) spreads over every subject alike.
      const order = shuffle(all, random)
      for (const [i, c] of order.entries()) {
        const label = `${c.group} ${JSON.stringify(c.scenario)} ${c.subject}`
        process.stderr.write(`round ${round}/${settings.rounds} ${i + 1}/${order.length} ${label}\n`)
        try {
          samples.get(c).push(await sample(c))
        } catch (error) {
          failures.push({ round, ...c, error: String(error.message ?? error).slice(0, 600) })
          process.stderr.write(`  failed: ${String(error.message ?? error).slice(0, 300)}\n`)
        }
      }
    }
  } finally {
    await redis?.stop()
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
