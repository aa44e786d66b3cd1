import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

const REDIS_SERVER = '/usr/bin/redis-server'
const REDIS_CLI = '/usr/bin/redis-cli'
const HOST = '127.0.0.1'

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** The current process id (changes on restart). */
  readonly pid: number
  /** Stops the server (SIGTERM, then SIGKILL) and removes its data dir. */
  stop(): Promise<void>
  /** Stops the server and starts it again on the same port and data dir (AOF survives). */
  restart(): Promise<void>
  /** Stops the server process, keeping its port and data dir for up(). */
  down(): Promise<void>
  /** Starts the server again after down(), on the same port. */
  up(): Promise<void>
  /** Sends a signal to the server process, e.g. SIGSTOP / SIGCONT to make it slow. */
  kill(signal: NodeJS.Signals): void
}

export interface RedisServerOptions {
  /** Turns AOF on (`appendonly yes`, `appendfsync always`) so state survives a restart. */
  appendonly?: boolean
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: readonly string[]
}

export interface RedisCluster {
  readonly nodes: readonly { host: string; port: number }[]
  stop(): Promise<void>
}

// Servers still running when the test process exits are killed, so a crashed test leaves nothing behind.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

function requireExecutable(path: string): void {
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new Error(`${path} is missing: Redis tests need a real redis-server (apt-get install redis-server)`)
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/** A free loopback port; `withBus` also wants port + 10000 free (the Redis Cluster bus). */
async function freePort(withBus = false): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * (withBus ? 25000 : 40000))
    if ((await portIsFree(port)) && (!withBus || (await portIsFree(port + 10000)))) return port
  }
  throw new Error('no free loopback port found after 200 attempts')
}

async function waitForPing(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited early:\n${output()}`)
    }
    const probe = new Redis({
      host: HOST,
      port,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    })
    probe.on('error', () => {})
    try {
      await probe.connect()
      if ((await probe.ping()) === 'PONG') return
    } catch {
      // not up yet
    } finally {
      probe.disconnect()
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${output()}`)
}

function launch(
  port: number,
  dir: string,
  args: readonly string[],
): { child: ChildProcess; output: () => string } {
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--dir',
      dir,
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let log = ''
  const collect = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  running.add(child)
  child.once('exit', () => running.delete(child))
  return { child, output: () => log }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGCONT') // a stopped process would never handle SIGTERM
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Starts a real redis-server on a free loopback port, its data under a fresh temp dir. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  requireExecutable(REDIS_SERVER)
  const root = mkdtempSync(join(tmpdir(), 'tollgate-redis-'))
  const args = [
    ...(options.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.args ?? []),
  ]
  let port = 0
  let current: { child: ChildProcess; output: () => string } | undefined
  // A port can be taken between the check and the bind: try a few.
  for (let attempt = 0; attempt < 5 && !current; attempt++) {
    port = await freePort()
    const started = launch(port, root, args)
    try {
      await waitForPing(port, started.child, started.output)
      current = started
    } catch (error) {
      await stopProcess(started.child)
      if (attempt === 4) throw error
    }
  }
  const server = current!
  let active = server
  const down = () => stopProcess(active.child)
  const up = async () => {
    active = launch(port, root, args)
    await waitForPing(port, active.child, active.output)
  }
  return {
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      return active.child.pid!
    },
    async stop() {
      await stopProcess(active.child)
      rmSync(root, { recursive: true, force: true })
    },
    async restart() {
      await down()
      await up()
    },
    down,
    up,
    kill(signal) {
      active.child.kill(signal)
    },
  }
}

function redisCli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`))
      else resolve(stdout)
    })
  })
}

/** Starts a real Redis Cluster (`masters` masters, optional replicas) on free loopback ports. */
export async function startRedisCluster(
  options: { masters?: number; replicasPerMaster?: 0 | 1 } = {},
): Promise<RedisCluster> {
  requireExecutable(REDIS_SERVER)
  requireExecutable(REDIS_CLI)
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 0
  if (masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters; got ${masters}`)
  const root = mkdtempSync(join(tmpdir(), 'tollgate-cluster-'))
  const started: { child: ChildProcess; output: () => string; port: number }[] = []
  const stopAll = async () => {
    await Promise.all(started.map((s) => stopProcess(s.child)))
    rmSync(root, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort(true)
      const dir = join(root, String(port))
      mkdirSync(dir)
      const node = launch(port, dir, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
        '--appendonly',
        'no',
      ])
      started.push({ ...node, port })
    }
    await Promise.all(started.map((s) => waitForPing(s.port, s.child, s.output)))
    await redisCli([
      '--cluster',
      'create',
      ...started.map((s) => `${HOST}:${s.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ])
    const deadline = Date.now() + 20_000
    for (const s of started) {
      for (;;) {
        const info = await redisCli(['-h', HOST, '-p', String(s.port), 'cluster', 'info'])
        if (info.includes('cluster_state:ok')) break
        if (Date.now() > deadline) throw new Error(`cluster node ${s.port} not ok within 20 s:\n${info}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  } catch (error) {
    await stopAll()
    throw error
  }
  return { nodes: started.map((s) => ({ host: HOST, port: s.port })), stop: stopAll }
}
