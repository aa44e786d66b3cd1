// Child processes for the orchestrator: workers, servers and redis-server, each started and stopped by PID.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const workersDir = fileURLToPath(new URL('./workers/', import.meta.url))
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0
const cpuCount = (await import('node:os')).availableParallelism()

/** The command line, pinned to `cpu` with taskset when there is more than one core to pin to. */
function pinned(cpu, command, args) {
  if (cpu === undefined || !hasTaskset || cpuCount < 2) return [command, args]
  return ['taskset', ['-c', String(cpu % cpuCount), command, ...args]]
}

const children = new Set()
function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
const tempDirs = new Set()
/** Stops every child this process started (by PID) and removes its temp dirs, e.g. on Ctrl-C. */
export function stopAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}

/** Runs a worker in a fresh Node process and resolves with its RESULT line. */
export function runWorker(name, config, { cpu, nodeFlags = [], timeoutMs = 120_000 } = {}) {
  const [command, args] = pinned(cpu, process.execPath, [
    ...nodeFlags,
    `${workersDir}${name}.mjs`,
    JSON.stringify(config),
  ])
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.stderr.on('data', (chunk) => {
      err += chunk
    })
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)))
      else
        reject(
          new Error(`${name} ${JSON.stringify(config)} ended ${signal ?? code}: ${err.trim().slice(-800)}`),
        )
    })
  })
}

/**
 * Starts a long-running worker (an HTTP server) and resolves once it prints `READY`. `stop()` sends SIGTERM
 * and resolves with everything the server printed, so it can report what it counted.
 */
export function startServer(name, config, { cpu, timeoutMs = 15_000 } = {}) {
  const [command, args] = pinned(cpu, process.execPath, [`${workersDir}${name}.mjs`, JSON.stringify(config)])
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    let ready = false
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.stderr.on('data', (chunk) => {
      err += chunk
    })
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (!ready && out.includes('READY')) {
        ready = true
        clearTimeout(timer)
        resolve({ pid: child.pid, stop: () => stop(child).then(() => out) })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (!ready)
        reject(new Error(`${name} ${JSON.stringify(config)} ended ${code}: ${err.trim().slice(-800)}`))
    })
  })
}

/** Runs a program (wrk, redis-benchmark) pinned to `cpu`; resolves with its stdout, rejects on failure. */
export function runProgram(program, programArgs, { cpu, timeoutMs = 120_000 } = {}) {
  const [command, args] = pinned(cpu, program, programArgs)
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.stderr.on('data', (chunk) => {
      err += chunk
    })
    const timer = setTimeout(() => process.kill(child.pid, 'SIGKILL'), timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${program} ended ${signal ?? code}: ${(err || out).trim().slice(-800)}`))
    })
  })
}

/** Whether a program is on the PATH. */
export function hasProgram(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0
}

/** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => process.kill(child.pid, 'SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    process.kill(child.pid, 'SIGTERM')
  })
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function launchRedis(port, extraArgs, cpu) {
  const binary = process.env.REDIS_SERVER ?? 'redis-server'
  const [command, args] = pinned(cpu, binary, [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    ...extraArgs,
  ])
  const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  const ready = new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start: ${out.slice(-500)}`)),
      10_000,
    )
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`redis-server ended ${code}: ${out.slice(-500)}`)))
  })
  // Awaited later (a cluster starts all nodes first); a failure before then must not crash the run.
  ready.catch(() => {})
  return { child, ready }
}

/**
 * A throwaway redis-server on a free loopback port: no persistence, stopped by PID.
 * `REDIS_SERVER` names another binary.
 */
export async function startRedis({ cpu } = {}) {
  const port = await freePort()
  const { child, ready } = launchRedis(port, [], cpu)
  await ready
  return { port, pid: child.pid, stop: () => stop(child) }
}

/**
 * A 3-master Redis Cluster on loopback (as testkit's startRedisCluster): each node in its own temp dir,
 * no replicas, created with redis-cli --cluster create. Nodes are stopped by PID, their dirs removed.
 */
export async function startRedisCluster({ cpu, masters = 3 } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'tollgate-bench-cluster-'))
  tempDirs.add(root)
  const nodes = []
  const stopCluster = async () => {
    await Promise.all(nodes.map((n) => stop(n.child)))
    rmSync(root, { recursive: true, force: true })
    tempDirs.delete(root)
  }
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePortWithBus()
      const dir = join(root, String(port))
      mkdirSync(dir)
      const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--dir', dir]
      nodes.push({ port, ...launchRedis(port, args, cpu) })
    }
    await Promise.all(nodes.map((n) => n.ready))
    const cli = process.env.REDIS_CLI ?? 'redis-cli'
    await runProgram(
      cli,
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'],
      {
        timeoutMs: 30_000,
      },
    )
    const deadline = Date.now() + 20_000
    for (const n of nodes) {
      while (
        !(await runProgram(cli, ['-p', String(n.port), 'cluster', 'info'])).includes('cluster_state:ok')
      ) {
        if (Date.now() > deadline) throw new Error(`cluster node ${n.port} not ok within 20 s`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  } catch (error) {
    await stopCluster()
    throw error
  }
  return {
    nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    pids: nodes.map((n) => n.child.pid),
    stop: stopCluster,
  }
}

/** A free port whose cluster bus port (+10000) is free too. */
async function freePortWithBus() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 25000)
    if ((await portIsFree(port)) && (await portIsFree(port + 10000))) return port
  }
  throw new Error('no free port with a free cluster bus port after 100 attempts')
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
