import { deadline, type Liveness, silence, silentSince, timeoutError } from './connection.js'
import type { Script } from './scripts.js'

// Kept: Node's global `performance` is a getter, paid on every read.
const perf = performance

/** One decision (or refund) for the batch script: its keys and its part of ARGV. */
export interface Job {
  readonly script: Script
  /** Its levels' state key and registry hash (and a blocking level's refusal log), in order. */
  readonly keys: readonly string[]
  /** Levels whose keys it carries: its reply holds 3 values for each. */
  readonly levels: number
  readonly args: readonly (string | number)[]
  /** 'd' decisions that charge: given back if their answer came too late to be used. */
  readonly charges: boolean
  /** The refund job that undoes this decision's charge, given its (late) answer. */
  readonly undo?: (reply: JobReply) => Job
}

/** The script's answer to one job: allowed, tier, then 3 per level (debt, policy id, custom). */
export type JobReply = readonly unknown[]

interface Pending {
  readonly job: Job
  readonly resolve: (reply: JobReply | 'cancelled') => void
  readonly reject: (error: unknown) => void
  /** When it was made (performance.now() ms): its timeout runs from here (see Deadlines). */
  readonly since: number
  /** Answered (or failed, or timed out): its timeout no longer matters. */
  settled: boolean
  /** Answered by the timeout already: a late reply must not charge behind the fallback's back. */
  abandoned: boolean
  queued: boolean
}

export type Send = (
  script: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>

export interface BatcherOptions {
  readonly send: Send
  readonly timeoutMs: number
  /** When the node behind this slot last answered: shared by the slots it serves. */
  readonly liveness: Liveness
  /** How long Redis remembers a call's reply (0: not at all). */
  readonly recordMs: number
  readonly nowArg: () => string
  readonly slack: number
  /** Waits for a client's first connection; undefined once connected. */
  readonly connected: () => Promise<void> | undefined
  /** Connected now: a call sent while not is refused before it reaches Redis. */
  readonly readyNow: () => boolean
  /** Resolves when the client is connected (at once if it is now); rejects if it closes for good. */
  readonly whenReady: () => Promise<void>
  /** Calls out at most; further decisions wait to go as one batch when a call comes back. */
  readonly maxInFlight?: number
  readonly maxBatch?: number
  /**
   * A call deletes answered records only once this many wait: deleting one key or sixteen costs Redis about
   * the same. On a single node 16, so a call pays for a DEL a sixteenth of the time; in a Cluster 1, since
   * every slot has a batcher of its own and thousands of them would each keep 15 records alive.
   */
  readonly minForget: number
}

const processTag = Math.random().toString(36).slice(2, 8)
let callSeq = 0
/** Cancels kept for the connection's return: the first calls to fail are those in flight when it went. */
const maxHeldCancels = 1000
/** Records of answered calls a call deletes at most (the rest wait for the next call, or expire). */
const maxForgetPerCall = 64
const maxAnswered = 1000
const cancelAttempts = 3
/**
 * Fewer calls than this out: a decision goes at once, alone, so the pipe to Redis is two calls deep without
 * any wait. With more out, decisions made in one turn share a call: it goes when `turnBatch` of them wait, or
 * at the end of the turn (process.nextTick, no timer). A call of one decision costs Redis about 8.6 µs, one
 * of four about 3 µs each: sent alone, sixteen concurrent decisions kept Redis busy with tiny calls.
 */
const eagerInFlight = 2
const turnBatch = 4

interface Cancel {
  readonly script: Script
  readonly keys: readonly string[]
  readonly args: readonly (string | number)[]
  /** After this (ms, real time) Redis has forgotten the call's record: a cancel can no longer give back. */
  readonly until: number
  attempts: number
}

/**
 * The timeouts of one batcher's decisions, on one timer: they wait in the order they were made, so the first
 * still waiting is always the first due under silence()'s rule (silentSince: `timeoutMs` without an answer
 * from the node, at most maxWaitTimeouts × `timeoutMs` in all). A timer and its closures per decision were
 * 770 of its 9,300 bytes allocated at c=16. Settled decisions leave from the front at once, so none is kept.
 */
class Deadlines {
  private waiting: (Pending | undefined)[] = []
  private head = 0
  private armed = false

  constructor(
    private readonly liveness: Liveness,
    private readonly timeoutMs: number,
    private readonly expire: (expired: Pending[]) => void,
  ) {}

  add(p: Pending): void {
    this.waiting.push(p)
    if (!this.armed) {
      this.armed = true
      deadline(this.timeoutMs, this.sweep)
    }
  }

  /** Drops the settled decisions at the front (called as they settle, mostly in order). */
  trim(): void {
    const { waiting } = this
    while (this.head < waiting.length && waiting[this.head]!.settled) waiting[this.head++] = undefined
    if (this.head === waiting.length) {
      waiting.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > waiting.length) {
      this.waiting = waiting.slice(this.head)
      this.head = 0
    }
  }

  private readonly sweep = (): void => {
    this.armed = false
    this.trim()
    const now = perf.now()
    const { waiting, timeoutMs } = this
    const expired: Pending[] = []
    for (let i = this.head; i < waiting.length; i++) {
      const p = waiting[i]!
      if (p.settled) continue
      const due = silentSince(this.liveness, p.since, timeoutMs)
      // A timer may fire up to a millisecond before performance.now() says it is due.
      if (now < due - 1) {
        this.armed = true
        deadline(due - now, this.sweep)
        break
      }
      p.settled = true
      expired.push(p)
    }
    this.trim()
    if (expired.length > 0) this.expire(expired)
  }
}

/**
 * Sends decisions to one slot's node, in the order they were made: alone while fewer than `eagerInFlight` calls
 * are out; else those of one turn together (see turnBatch) while fewer than `maxInFlight` are out; else as one
 * batch script call when a call comes back. Every call carries an id; Redis keeps
 * its reply for `recordMs`, so a call the client re-sends is answered from the record, not applied twice.
 * A call that failed without an answer is followed by a cancel, which gives back what it charged if it ran.
 */
export class Batcher {
  private inFlight = 0
  private queue: Pending[] = []
  private held: Cancel[] = []
  /** Record keys of calls whose reply came back: the next call deletes them (never re-sent, never cancelled). */
  private answered: string[] = []
  private awaitingReady = false
  private turnFlushQueued = false
  private readonly maxInFlight: number
  private readonly maxBatch: number
  private readonly minForget: number
  private readonly deadlines: Deadlines

  constructor(private readonly options: BatcherOptions) {
    this.maxInFlight = options.maxInFlight ?? 8
    this.maxBatch = options.maxBatch ?? 64
    this.minForget = options.minForget
    this.deadlines = new Deadlines(options.liveness, options.timeoutMs, (expired) => this.timedOut(expired))
  }

  submit(job: Job): Promise<JobReply | 'cancelled'> {
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        job,
        resolve,
        reject,
        since: perf.now(),
        settled: false,
        abandoned: false,
        queued: true,
      }
      this.deadlines.add(pending)
      const waiting = this.options.connected()
      if (waiting) {
        waiting.then(
          () => this.enqueue(pending),
          (error) => this.fail([pending], error),
        )
      } else this.enqueue(pending)
    })
  }

  /** Answered by the timeout: each is refused now (the fallback answers it); a late reply gives back. */
  private timedOut(expired: Pending[]): void {
    let queued = false
    for (const p of expired) {
      p.abandoned = true
      if (p.queued) queued = true
    }
    if (queued) this.queue = this.queue.filter((p) => !p.abandoned)
    for (const p of expired) p.reject(timeoutError(this.options.timeoutMs))
  }

  private enqueue(pending: Pending): void {
    if (pending.abandoned) return
    this.queue.push(pending)
    // All calls out: it goes with the batch sent when one comes back (done).
    if (this.inFlight >= this.maxInFlight) return
    if (this.inFlight < eagerInFlight || this.queue.length >= turnBatch) {
      this.send(this.queue.splice(0, this.maxBatch))
    } else if (!this.turnFlushQueued) {
      this.turnFlushQueued = true
      process.nextTick(this.flushTurn)
    }
  }

  /** At the end of a turn: what it left waiting goes now, while calls may go out. */
  private readonly flushTurn = (): void => {
    this.turnFlushQueued = false
    while (this.inFlight < this.maxInFlight && this.queue.length > 0)
      this.send(this.queue.splice(0, this.maxBatch))
  }

  private send(batch: Pending[]): void {
    this.inFlight++
    for (const p of batch) p.queued = false
    const first = batch[0]!.job
    const record = `${first.keys[0]}:call:${processTag}${++callSeq}`
    const keys: string[] = [record]
    const args: (string | number)[] = [
      this.options.nowArg(),
      this.options.slack,
      this.options.recordMs,
      'run',
      batch.length,
    ]
    for (const { job } of batch) {
      for (const key of job.keys) keys.push(key)
      for (const arg of job.args) args.push(arg)
    }
    if (this.answered.length >= this.minForget)
      for (const key of this.answered.splice(0, maxForgetPerCall)) keys.push(key)
    // A call that has not answered within the timeout stops counting as in flight: a hung or retried
    // command must not hold back the decisions queued behind it.
    let counted = true
    const release = () => {
      if (!counted) return
      counted = false
      this.done()
    }
    const stopStuck = silence(this.options.liveness, perf.now(), this.options.timeoutMs, release)
    const answered = (fromRedis: boolean) => {
      if (fromRedis) this.options.liveness.answeredAt = perf.now()
      stopStuck()
      release()
    }
    // Sent while disconnected, a call is refused by the client before it reaches Redis: nothing to cancel.
    const mayRun = this.options.readyNow()
    this.options.send(first.script, keys, args).then(
      (reply) => {
        answered(true)
        // A cancel's marker stays (it stops a copy of the call that might still arrive); a reply's record goes.
        if (this.options.recordMs > 0 && Array.isArray(reply) && reply[0] !== 'cancelled') this.forget(record)
        this.answer(batch, reply)
      },
      (error: unknown) => {
        answered(!isConnectionError(error))
        this.fail(batch, error)
        // It may have run before its answer was lost: cancel it (Redis runs this after it, if it is queued).
        if (this.options.recordMs > 0 && mayRun && isConnectionError(error)) {
          const until = Date.now() + this.options.recordMs
          // The same call with its mode (ARGV 4) made 'cancel'.
          const cancel = args.slice()
          cancel[3] = 'cancel'
          this.cancel({ script: first.script, keys, args: cancel, until, attempts: 0 })
        }
      },
    )
  }

  /**
   * Sends a cancel. The connection that lost the call's answer is usually still down, so a cancel that
   * cannot go now is held (bounded) and sent when it is back, while Redis still remembers the call.
   */
  private cancel(c: Cancel): void {
    c.attempts++
    this.options.send(c.script, c.keys, c.args).catch((error: unknown) => {
      if (!isConnectionError(error) || c.attempts >= cancelAttempts || this.held.length >= maxHeldCancels)
        return
      this.held.push(c)
      this.sendHeldWhenReady()
    })
  }

  private sendHeldWhenReady(): void {
    if (this.awaitingReady) return
    this.awaitingReady = true
    this.options.whenReady().then(
      () => {
        // A moment after: a client may say ready before it noticed the loss; its cancels must not spin.
        const wait = setTimeout(() => this.sendHeld(), Math.min(this.options.timeoutMs, 50))
        wait.unref?.()
      },
      () => {
        this.awaitingReady = false
        this.held = []
      },
    )
  }

  private sendHeld(): void {
    this.awaitingReady = false
    const held = this.held.filter((c) => c.until > Date.now())
    this.held = []
    for (const c of held) this.cancel(c)
  }

  private forget(record: string): void {
    if (this.answered.length >= maxAnswered) this.answered.shift()
    this.answered.push(record)
  }

  private done(): void {
    this.inFlight--
    if (this.queue.length === 0) return
    const batch = this.queue.splice(0, this.maxBatch)
    this.send(batch)
  }

  private answer(batch: Pending[], reply: unknown): void {
    if (Array.isArray(reply) && reply[0] === 'cancelled') {
      for (const p of batch) this.settle(p, () => p.resolve('cancelled'))
      this.deadlines.trim()
      return
    }
    if (!Array.isArray(reply)) {
      this.fail(batch, new Error('unexpected script reply'))
      return
    }
    const now = reply[0]
    let at = 1
    for (const p of batch) {
      const width = p.job.args[0] === 'r' ? 2 : 2 + 3 * p.job.levels
      // Copied by index: a slice and a spread made two arrays per decision.
      const part: unknown[] = new Array(width + 1)
      part[0] = now
      for (let k = 0; k < width; k++) part[k + 1] = reply[at + k]
      at += width
      if (p.abandoned) {
        // Answered by the fallback already: whatever this charged goes back, so the bucket ends where the answers say.
        if (p.job.charges && Number(part[1]) === 1 && p.job.undo)
          this.submit(p.job.undo(part)).catch(() => undefined)
        continue
      }
      p.settled = true
      p.resolve(part)
    }
    this.deadlines.trim()
  }

  private fail(batch: Pending[], error: unknown): void {
    for (const p of batch) this.settle(p, () => p.reject(error))
    this.deadlines.trim()
  }

  private settle(p: Pending, then: () => void): void {
    if (p.abandoned) return
    p.settled = true
    then()
  }
}

/** An error after which the call may or may not have run (the connection went), as opposed to a reply error. */
function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return true
  return !/^(ERR|NOSCRIPT|WRONGTYPE|BUSY|OOM|READONLY|NOPERM|CROSSSLOT|MOVED|ASK)\b/.test(error.message)
}
