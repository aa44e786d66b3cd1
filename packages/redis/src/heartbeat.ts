import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { ErrorCode, type FleetMembership, invalid } from '@tollgate/core/store'
import type { Bounded, Run } from './connection.js'
import { script } from './scripts.js'

export interface FleetOptions {
  /**
   * ms between the heartbeats by which a store counts the servers sharing its prefix, while a limiter
   * with `expectedServers: 'auto'` uses it. Default 1000.
   */
  heartbeatMs?: number
  /** ms, on Redis's clock, a server is counted after its last heartbeat. Default 3 × heartbeatMs. */
  heartbeatExpiryMs?: number
}

export interface FleetTiming {
  readonly intervalMs: number
  readonly expiryMs: number
}

const maxIntervalMs = 86_400_000

export function parseFleetOptions(options: FleetOptions): FleetTiming {
  const intervalMs = options.heartbeatMs ?? 1000
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > maxIntervalMs) {
    throw invalid(
      ErrorCode.InvalidOption,
      'heartbeatMs',
      intervalMs,
      'a whole number of ms from 1 to 86400000',
    )
  }
  const expiryMs = options.heartbeatExpiryMs ?? 3 * intervalMs
  if (!Number.isInteger(expiryMs) || expiryMs <= intervalMs) {
    throw invalid(
      ErrorCode.InvalidOption,
      'heartbeatExpiryMs',
      expiryMs,
      `a whole number of ms above heartbeatMs (${intervalMs}), so a live server is never dropped between beats`,
    )
  }
  return { intervalMs, expiryMs }
}

/**
 * KEYS: the fleet's sorted set. ARGV: this server's member, expiry ms, '1' to leave. On Redis's clock:
 * stamps the member (or removes it), drops members older than the expiry, and answers how many are left,
 * whether this member was missing or expired before (the set was lost in a restart or failover, or every
 * member outlived its expiry in an outage: the others may not have beaten again yet), and the time.
 * The set itself expires with its last member, so a fleet that is gone costs nothing.
 */
const beatScript = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[2])
local since = now - expiry
local fresh = 0
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not last or tonumber(last) < since then fresh = 1 end
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', since))
local n = redis.call('ZCARD', KEYS[1])
if n > 0 then redis.call('PEXPIRE', KEYS[1], expiry) end
return { n, fresh, now }
`)

/**
 * Counts the servers sharing a store's prefix for `expectedServers: 'auto'`: while any limiter has joined,
 * this store stamps its member in `<prefix>{fleet}:servers` every `intervalMs` (an unref'd timer), and keeps
 * the count the last answer gave. When Redis fails, the count stays as last seen: that is the fleet the
 * fallback divides by. Leaving (the last limiter closing, or the store closing) removes the member at once.
 *
 * A count may grow at once but shrink only once this server has beaten without a break for a whole expiry
 * (on Redis's clock), when every live server has had time to beat: right after Redis comes back the set is
 * being rebuilt, and a short second outage must not find a fleet of one.
 */
export class Heartbeat {
  /** One member per store object: limiters sharing a store count once. */
  private readonly member = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`
  private joined = 0
  private timer: NodeJS.Timeout | undefined
  private count: number | undefined
  /** Redis ms of the first beat of the current unbroken run; undefined after a failed beat. */
  private runSince: number | undefined
  private beating = false

  constructor(
    private readonly key: string,
    private readonly bounded: Bounded,
    private readonly run: Run,
    private readonly timing: FleetTiming,
  ) {}

  join(): FleetMembership {
    let member = true
    if (++this.joined === 1) this.start()
    return {
      size: () => this.count,
      leave: () => {
        if (!member) return
        member = false
        if (--this.joined === 0) void this.stop()
      },
    }
  }

  async close(): Promise<void> {
    this.joined = 0
    await this.stop()
  }

  private start(): void {
    void this.beat()
    this.timer = setInterval(() => void this.beat(), this.timing.intervalMs)
    this.timer.unref?.()
  }

  private async beat(): Promise<void> {
    // A beat still waiting on a slow Redis is not doubled.
    if (this.beating) return
    this.beating = true
    try {
      const [n, fresh, now] = ((await this.send('')) as unknown[]).map(Number) as [number, number, number]
      if (!Number.isInteger(n) || n < 1 || !Number.isFinite(now) || !this.timer) return
      if (this.runSince === undefined || fresh === 1) this.runSince = now
      const settled = now - this.runSince >= this.timing.expiryMs
      this.count = settled || this.count === undefined ? n : Math.max(this.count, n)
    } catch {
      // Redis is failing: keep the count last seen (the decision path reports the outage).
      this.runSince = undefined
    } finally {
      this.beating = false
    }
  }

  private async stop(): Promise<void> {
    if (!this.timer) return
    clearInterval(this.timer)
    this.timer = undefined
    try {
      await this.send('1')
    } catch {
      // Not removed now: it drops out of the count once its last beat is older than the expiry.
    }
  }

  private send(leave: '' | '1'): Promise<unknown> {
    return this.bounded(() => this.run(beatScript, [this.key], [this.member, this.timing.expiryMs, leave]))
  }
}
