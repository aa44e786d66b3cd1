import { ErrorCode, TollgateError } from '@tollgate/core/store'
import calculateSlot from 'cluster-key-slot'
import type { StoreClient } from './client.js'
import type { Script } from './scripts.js'

// Kept: Node's global `performance` is a getter, paid on every read.
const perf = performance

export type Bounded = <T>(work: () => Promise<T>) => Promise<T>
export type Run = (s: Script, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>

/** Anything Redis or the connection throws becomes ERR_TOLLGATE_STORE_UNAVAILABLE (the limiter's fallback trigger). */
export function unavailable(error: unknown): TollgateError {
  if (error instanceof TollgateError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new TollgateError(ErrorCode.StoreUnavailable, `redis store unavailable: ${message}`, {
    cause: error,
  })
}

export function timeoutError(timeoutMs: number): TollgateError {
  return new TollgateError(ErrorCode.StoreTimeout, `redis store did not answer within ${timeoutMs} ms`, {
    field: 'timeoutMs',
    value: timeoutMs,
  })
}

/**
 * Calls `expire` once `ms` have passed and every reply that had reached the socket by then was read. Timers
 * run before the event loop polls its sockets, so under load a reply that arrived in time would otherwise
 * lose to its own timer: that measures how busy this process is, not Redis. The verdict waits for the next
 * poll (setImmediate runs right after it). Returns the cancel.
 */
export function deadline(ms: number, expire: () => void): () => void {
  let check: NodeJS.Immediate | undefined
  const timer = setTimeout(() => {
    check = setImmediate(expire)
  }, ms)
  timer.unref?.()
  return () => {
    clearTimeout(timer)
    if (check) clearImmediate(check)
  }
}

/** When a node last answered anything (performance.now() ms): its calls wait on it while it answers. */
export interface Liveness {
  answeredAt: number
}

/** How many timeouts a call may wait at most while its node answers others (a lost reply, a long queue). */
const maxWaitTimeouts = 4

/** When a wait that began at `since` is due under silence()'s rule (performance.now() ms). */
export function silentSince(liveness: Liveness, since: number, timeoutMs: number): number {
  return Math.min(Math.max(since, liveness.answeredAt) + timeoutMs, since + maxWaitTimeouts * timeoutMs)
}

/**
 * Calls `expire` once the node has answered nothing for `timeoutMs` while this waited (since `since`), or
 * after `maxWaitTimeouts` × `timeoutMs` in all. A stopped or unreachable Redis answers nothing, so this
 * expires after `timeoutMs` as a plain timer would; a busy one keeps answering the calls ahead, and a call
 * waiting its turn behind them is not failed for the queue in front of it. Returns the cancel.
 */
export function silence(
  liveness: Liveness,
  since: number,
  timeoutMs: number,
  expire: () => void,
): () => void {
  let cancel = deadline(timeoutMs, check)
  function check() {
    const now = perf.now()
    const due = silentSince(liveness, since, timeoutMs)
    // A timer may fire up to a millisecond before performance.now() says it is due.
    if (now >= due - 1) expire()
    else cancel = deadline(due - now, check)
  }
  return () => cancel()
}

/** Keeps `work` under `key` in `inFlight` until it settles, so callers meanwhile wait for it instead. */
function track<T>(inFlight: Map<string, Promise<unknown>>, key: string, work: Promise<T>): Promise<T> {
  inFlight.set(key, work)
  const forget = () => {
    if (inFlight.get(key) === work) inFlight.delete(key)
  }
  work.then(forget, forget)
  return work
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/** FCALL of a library Redis does not hold (a restart, a failover, FUNCTION FLUSH, a new book). */
function isNoFunction(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('ERR Function not found')
}

/** Redis without Functions (before 7.0), or a user whose ACL denies them: EVAL serves instead. */
function isNoFunctions(error: unknown): boolean {
  return error instanceof Error && /^(ERR unknown command|NOPERM)/.test(error.message)
}

/** How every store call reaches Redis: after the first connection, within the timeout, scripts by SHA. */
export interface Connection {
  /** undefined when calls may go now; otherwise the first connection to wait for. */
  connected(): Promise<void> | undefined
  /** Bounds a call by timeoutMs (waiting for the connection included); a call failing after it is still caught. */
  bounded: Bounded
  /** Connected now. */
  readyNow(): boolean
  /** Resolves when the client is connected (at once if it is now); rejects if it closes for good. */
  whenReady(): Promise<void>
  /**
   * FCALL of the script's library; when Redis does not hold it, FUNCTION LOAD (one at a time, the others
   * waiting for it) and FCALL again. Where Functions are not available: EVALSHA, and on NOSCRIPT EVAL, which
   * also loads it (one call per node at a time likewise). No other retry.
   */
  run: Run
  /** The script loaded ahead: FUNCTION LOAD (else SCRIPT LOAD) on the node, or on every master of a Cluster. */
  load(s: Script): Promise<unknown>
}

export function connection(client: StoreClient, timeoutMs: number): Connection {
  // A client that never connected yet is waited for (bounded by the timeout): it is not a failing store.
  // One that lost its connection fails at once, so the fallback decides without waiting.
  let everReady = client.ready
  if (!everReady)
    client.nextReady().then(
      () => (everReady = true),
      () => undefined,
    )
  function connected(): Promise<void> | undefined {
    if (everReady || client.ready) return undefined
    if (client.ended) return Promise.reject(new Error('connection is closed'))
    return client.nextReady()
  }

  function bounded<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = deadline(timeoutMs, () => reject(timeoutError(timeoutMs)))
      const waiting = connected()
      ;(waiting ? waiting.then(work) : work()).then(
        (value) => {
          cancel()
          resolve(value)
        },
        (error) => {
          cancel()
          reject(unavailable(error))
        },
      )
    })
  }

  // A script missing on a node (restart, failover, a new book) is sent with its source by one call, and the
  // others that found it missing there meanwhile wait for that call, then go by SHA: a burst of EVALs of a
  // ~20 kB script each held a fresh Cluster's replies back past the timeout.
  const evaluating = new Map<string, Promise<unknown>>()
  // false once Redis said it has no Functions for this client; EVAL serves from then on.
  let functions = true
  const loadingLibraries = new Map<string, Promise<unknown>>()
  function loadLibrary(library: NonNullable<Script['library']>): Promise<unknown> {
    return (
      loadingLibraries.get(library.name) ??
      track(loadingLibraries, library.name, client.loadFunction(library.source))
    )
  }
  // Each step below fails before the script ran (Redis answers an unknown function or command without
  // running anything), so trying the next one never applies a decision twice. 'missing': the library was
  // gone again when called after loading it (FUNCTION FLUSH meanwhile); EVAL, which carries the code, serves.
  async function callAfterFailure(
    library: NonNullable<Script['library']>,
    keys: readonly string[],
    args: readonly (string | number)[],
    error: unknown,
  ): Promise<{ reply: unknown } | 'unsupported' | 'missing'> {
    if (isNoFunctions(error)) return 'unsupported'
    if (!isNoFunction(error)) throw error
    try {
      await loadLibrary(library)
    } catch (error) {
      if (isNoFunctions(error)) return 'unsupported'
      throw error
    }
    try {
      return { reply: await client.fcall(library.name, keys, args) }
    } catch (error) {
      if (isNoFunction(error)) return 'missing'
      throw error
    }
  }

  // The common case is one FCALL of a library Redis holds: the client's Promise with one handler on it, no
  // async frames around it (they were a tenth of what a decision allocated).
  function run(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const library = s.library
    if (!library || !functions) return runByScript(s, keys, args)
    let called: Promise<unknown>
    try {
      called = client.fcall(library.name, keys, args)
    } catch (error) {
      called = Promise.reject(error)
    }
    return called.then(undefined, async (error: unknown) => {
      const recovered = await callAfterFailure(library, keys, args, error)
      if (typeof recovered === 'object') return recovered.reply
      if (recovered === 'unsupported') functions = false
      return runByScript(s, keys, args)
    })
  }

  async function runByScript(
    s: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(s.sha, keys, args)
    } catch (error) {
      if (!isNoScript(error)) throw error
    }
    const at = client.isCluster ? `${s.sha}@${client.nodeOf(calculateSlot(keys[0]!))}` : s.sha
    const loading = evaluating.get(at)
    if (loading) {
      await loading.catch(() => undefined)
      try {
        return await client.evalsha(s.sha, keys, args)
      } catch (error) {
        if (!isNoScript(error)) throw error
      }
    }
    return await track(evaluating, at, client.eval(s.source, keys, args))
  }

  /** Loaded on the node (every master of a Cluster), so the first decisions need not send it. */
  async function load(s: Script): Promise<unknown> {
    if (s.library && functions) {
      try {
        return await loadLibrary(s.library)
      } catch (error) {
        if (!isNoFunctions(error)) throw error
        functions = false
      }
    }
    return client.loadScript(s.source)
  }

  const whenReady = () => (client.ready ? Promise.resolve() : client.nextReady())

  return { connected, bounded, run, load, whenReady, readyNow: () => client.ready }
}
