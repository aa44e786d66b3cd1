import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** A script under test/children, as a path node can run. */
export function childScript(name: string): string {
  return fileURLToPath(new URL(`../children/${name}`, import.meta.url))
}

export interface ChildRun {
  readonly child: ChildProcess
  /** Resolves with stdout's JSON lines when the child exits 0 within the time limit; rejects otherwise. */
  readonly done: Promise<unknown[]>
  /** Every JSON line so far. */
  readonly lines: unknown[]
  /** Writes one JSON line to the child's stdin. */
  send(message: unknown): void
}

// Children still running when the test process exits are killed by PID, so nothing outlives the tests.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Runs `node [nodeArgs] children/<name> <args>`; every stdout line must be JSON. The child is killed
 * (by its PID) after `timeLimitMs`, and that run rejects.
 */
export function runChild(
  name: string,
  args: readonly string[],
  options: { nodeArgs?: readonly string[]; timeLimitMs: number; env?: NodeJS.ProcessEnv },
): ChildRun {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), childScript(name), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  running.add(child)
  const lines: unknown[] = []
  let stderr = ''
  let partial = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString()
    let newline = partial.indexOf('\n')
    while (newline >= 0) {
      const line = partial.slice(0, newline).trim()
      partial = partial.slice(newline + 1)
      if (line) {
        try {
          lines.push(JSON.parse(line))
        } catch {
          stderr += `(stdout, not JSON) ${line}\n`
        }
      }
      newline = partial.indexOf('\n')
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000)
  })
  const done = new Promise<unknown[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child ${name} exceeded ${options.timeLimitMs} ms and was killed\n${stderr}`))
    }, options.timeLimitMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      if (code === 0) resolve(lines)
      else reject(new Error(`child ${name} exited with ${code ?? signal}\n${stderr}`))
    })
  })
  // A rejection nobody awaited yet must not become an unhandled rejection of the test process.
  done.catch(() => {})
  return {
    child,
    done,
    lines,
    send: (message) => child.stdin!.write(`${JSON.stringify(message)}\n`),
  }
}
