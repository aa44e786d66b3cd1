import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'

/** The admin token every example started by the tests uses. */
export const ADMIN_TOKEN = 'e2e-admin-token'

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts an example as its users do (TypeScript sources through tsx), on a free loopback port; one process, one PID. */
export async function startExample(
  dir: string,
  redisUrl: string | undefined,
): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    ADMIN_TOKEN,
    HOST: '127.0.0.1',
    EXAMPLE_DEBUG_ROUTES: '1',
    // Refills the tests wait for are let happen with GET /debug/clock, never by sleeping.
    EXAMPLE_TEST_CLOCK: '1',
  }
  // A loaded machine can take longer than the store's 500 ms default, and the local fallback would then
  // decide (correctly, but not what the contract checks); the outage test gets refused connections at once.
  if (redisUrl) Object.assign(env, { REDIS_URL: redisUrl, REDIS_TIMEOUT_MS: '2000' })
  else delete env.REDIS_URL
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'src/main.ts'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk) => {
    output += chunk
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL') // by its PID: never leave a half-started example behind
      reject(new Error(`example did not start in 30 s:\n${output}`))
    }, 30_000)
    const check = () => {
      if (!output.includes('listening on')) return
      clearTimeout(timer)
      resolve()
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`example exited with ${code}:\n${output}`))
    })
  })
  return { url: `http://127.0.0.1:${port}`, child, output: () => output }
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid, 'SIGTERM')
  await exited
}
