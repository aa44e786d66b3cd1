// Child processes for the orchestrator: workers, servers and redis-server, each started and stopped by PID.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
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
/** Stops every child this process started (by PID), e.g. on Ctrl-C. */
export function stopAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
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

/** Starts a long-running worker (an HTTP server) and resolves once it prints `READY`. */
export function startServer(name, config, { cpu, timeoutMs = 15_000 } = {}) {
  const [command, args] = pinned(cpu, process.execPath, [`${workersDir}${name}.mjs`, JSON.stringify(config)])
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.stderr.on('data', (chunk) => {
      err += chunk
    })
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('READY')) {
        clearTimeout(timer)
        resolve({ pid: child.pid, stop: () => stop(child) })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} ${JSON.stringify(config)} ended ${code}: ${err.trim().slice(-800)}`))
    })
  })
}

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

/**
 * A throwaway redis-server on a free loopback port: no persistence, stopped by PID.
 * `REDIS_SERVER` names another binary.
 */
export async function startRedis({ cpu } = {}) {
  const port = await freePort()
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
  ])
  const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await new Promise((resolve, reject) => {
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
  return { port, pid: child.pid, stop: () => stop(child) }
}
