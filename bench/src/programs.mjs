// The samples that drive C programs: HTTP load with wrk, the pipelined ceiling with redis-benchmark.
import { spawnSync } from 'node:child_process'
import { GCRA_SOURCE, gcraArgs, loadScript } from './impls/gcra.mjs'
import { admissionBound, cpuMicrosPerOp, HOUR_MS, HTTP_LIMITS, processCpuMs, SECOND_MS } from './lib.mjs'
import { freePort, hasProgram, runProgram, startServer } from './processes.mjs'

/** wrk from Debian's package; installed with apt-get when missing and this runs as root. */
export function ensureWrk() {
  if (hasProgram('wrk')) return
  const root = process.getuid?.() === 0
  if (root) {
    process.stderr.write('wrk is missing: apt-get install -y wrk\n')
    let result = spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' })
    if (result.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit' })
      result = spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' })
    }
  }
  if (!hasProgram('wrk'))
    throw new Error('wrk is missing: install it (apt-get install wrk) to run the HTTP group')
}

const units = { us: 0.001, ms: 1, s: 1000 }
const toMs = (value, unit) => Number(value) * units[unit]

/** The figures of one wrk run (its --latency text output). */
export function parseWrk(text) {
  const number = (pattern) => Number(pattern.exec(text)?.[1] ?? 0)
  const latency = (p) => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text)
    return match ? toMs(match[1], match[2]) : undefined
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const requests = /(\d+) requests in/.exec(text)
  if (!requests) throw new Error(`wrk printed no request count:\n${text.slice(0, 600)}`)
  return {
    requests: Number(requests[1]),
    requestsPerSec: number(/Requests\/sec:\s+([\d.]+)/),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
    errors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    p50: latency(50),
    p99: latency(99),
  }
}

/**
 * One HTTP sample: the server on its own core, wrk (one thread) on the other; a warm-up run, then the
 * measured run with the server's CPU (utime + stime) read around it. The server counts what its handler
 * answered, which is checked against what the limit allows over the server's whole life.
 */
export async function httpSample({ framework, regime, variant }, { http, measuredCpu, loadCpu }) {
  const port = await freePort()
  const started = performance.now()
  const server = await startServer('http-server', { framework, variant, regime, port }, { cpu: measuredCpu })
  let output
  let warm
  let run
  let cpu
  try {
    const wrk = (seconds) =>
      runProgram(
        'wrk',
        [
          '-t1',
          `-c${http.connections}`,
          `-d${seconds}s`,
          '--latency',
          '--timeout',
          '5s',
          `http://127.0.0.1:${port}/`,
        ],
        { cpu: loadCpu, timeoutMs: (seconds + 20) * 1000 },
      ).then(parseWrk)
    warm = await wrk(http.warmupSeconds)
    const before = processCpuMs(server.pid)
    run = await wrk(http.seconds)
    cpu = cpuMicrosPerOp(before, processCpuMs(server.pid), run.requests)
  } finally {
    output = await server.stop()
  }
  const lifeMs = performance.now() - started
  const counts = /COUNTS (\{.*\})/.exec(output)
  if (!counts) throw new Error(`the ${framework} server reported no counts`)
  const { handled } = JSON.parse(counts[1])
  const semantics = variant === 'bare' ? 'none' : variant === 'tollgate' ? 'bucket' : 'window'
  const bound = admissionBound(semantics, { limit: HTTP_LIMITS[regime], windowMs: HOUR_MS }, lifeMs)
  const limited = warm.non2xx + run.non2xx
  const errors = warm.errors + run.errors
  const correct =
    errors === 0 &&
    (variant === 'bare' || regime === 'pass' ? limited === 0 : handled <= bound && limited > 0)
  return {
    opsPerSec: run.requestsPerSec,
    requests: run.requests,
    serverCpuMicrosPerRequest: cpu,
    p50: run.p50,
    p99: run.p99,
    admitted: handled,
    offered: warm.requests + run.requests,
    limited,
    bound: Number.isFinite(bound) ? bound : null,
    errors,
    correct,
  }
}

/**
 * The moonshot's ceiling: redis-benchmark sending the reference GCRA script pipelined (-P 16) over 10k
 * random users, with Redis's script µs per call (INFO commandstats) and CPU per call (/proc) beside it.
 */
export async function ceilingSample({ levels: levelCount }, { redis, ceiling, loadCpu }) {
  const { Redis } = await import('ioredis')
  const admin = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true })
  await admin.connect()
  try {
    const levels = [{ limit: 20, windowMs: SECOND_MS }]
    if (levelCount === 3)
      levels.push({ limit: 20_000, windowMs: SECOND_MS }, { limit: 1e9, windowMs: SECOND_MS })
    const sha = await loadScript(admin, GCRA_SOURCE)
    const keys =
      levelCount === 3 ? ['ref:__rand_int__', 'ref:o__rand_int__', 'ref:global'] : ['ref:__rand_int__']
    await admin.config('RESETSTAT')
    const before = processCpuMs(redis.pid)
    const out = await runProgram(
      'redis-benchmark',
      [
        ...['-h', '127.0.0.1', '-p', String(redis.port), '-c', String(ceiling.connections)],
        ...['-n', String(ceiling.requests), '-P', String(ceiling.pipeline), '-r', '10000', '--csv'],
        ...['EVALSHA', sha, String(keys.length), ...keys, ...gcraArgs(levels)],
      ],
      { cpu: loadCpu, timeoutMs: 120_000 },
    )
    const cpu = cpuMicrosPerOp(before, processCpuMs(redis.pid), ceiling.requests)
    const stats = /cmdstat_evalsha:calls=(\d+),usec=(\d+).*failed_calls=(\d+)/.exec(
      await admin.info('commandstats'),
    )
    const row = out.trim().split('\n').at(-1).split('","')
    const opsPerSec = Number(row[1]?.replaceAll('"', ''))
    if (!Number.isFinite(opsPerSec)) throw new Error(`redis-benchmark printed no rate:\n${out.slice(0, 400)}`)
    return {
      opsPerSec,
      ops: ceiling.requests,
      redisMicrosPerDecision: stats ? Number(stats[2]) / Number(stats[1]) : undefined,
      redisCpuMicrosPerDecision: cpu,
      admitted: null,
      // Every call ran the script and none failed (a wrong SHA or argument would fail them all).
      correct: stats !== null && Number(stats[1]) >= ceiling.requests && Number(stats[3]) === 0,
    }
  } finally {
    admin.disconnect()
  }
}
