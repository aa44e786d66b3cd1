import { type Clock, ErrorCode, invalid, type TollgateError } from '@tollgate/core/store'
import { type RedisClient, type StoreClient, storeClient } from './client.js'
import type { FleetOptions } from './heartbeat.js'
import type { HashTag } from './keys.js'

export interface RedisStoreOptions extends FleetOptions {
  /**
   * An ioredis `Redis` or `Cluster` created with `enableOfflineQueue: false`, or a node-redis client
   * (`createClient`) or cluster (`createCluster`) with `disableOfflineQueue: true`. The store never closes it.
   */
  client: RedisClient
  /** Prefix of every key and of the pub/sub channel. No `{` or `}`. Default `tollgate:`. */
  prefix?: string
  /**
   * ms Redis may stay silent before a call fails with ERR_TOLLGATE_STORE_TIMEOUT: a decision fails once its
   * node has answered nothing for this long while it waited (a call waiting its turn behind others that are
   * being answered keeps waiting, at most 4 × this in all). Default 500: a healthy Redis on a busy host goes
   * unscheduled for a few hundred ms (see the README), and a down one fails calls at once anyway.
   */
  timeoutMs?: number
  /**
   * Redis Cluster only: buckets with equal tags share a hash slot, so a chain over them is one atomic
   * script. Default: every bucket its own tag (`level:key`). Example: `(level, key) => key.split('/')[0]`
   * for user keys written `org/user` and org keys written `org`.
   */
  hashTag?: HashTag
  /** ms between checks of the tier version counter (the safety net behind pub/sub). Default 1000. */
  registryRefreshMs?: number
  /**
   * ms Redis remembers each call's reply, so a call the client re-sends (a lost reply) is answered, not
   * applied twice, and a call that failed without an answer can be cancelled. A call whose reply came back
   * has its record deleted by the next call. Default 10000; 0 turns it off.
   */
  rememberCallsMs?: number
  /**
   * Most refusals remembered to answer locally (exact: see the README's "Local refusals"). A refused chain
   * asked again at the same cost before its retry time is refused without a Redis call. Default 10000; 0
   * turns it off.
   */
  localRefusals?: number
  /**
   * TESTS ONLY. Decisions normally take time from Redis (`TIME` inside the script), so app servers'
   * clocks never matter. With `clock`, the script receives `now` from this function instead, and keys
   * expire 10 minutes after the test clock says their bucket is full (real time does not follow it).
   */
  clock?: Clock
}

/** The options checked, defaults filled in. */
export interface StoreConfig {
  readonly client: StoreClient
  readonly prefix: string
  readonly timeoutMs: number
  readonly registryRefreshMs: number
  readonly rememberCallsMs: number
  readonly localRefusals: number
  readonly hashTag: HashTag | undefined
  readonly clock: Clock | undefined
  /** ms keys outlive their computed expiry: real time does not follow a test clock. */
  readonly expirySlackMs: number
}

const testClockSlackMs = 600_000

export function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return invalid(ErrorCode.InvalidOption, field, value, expectation)
}

function parseNumber(
  value: unknown,
  field: string,
  fallback: number,
  expectation: string,
  ok: (n: number) => boolean,
) {
  const ms = value ?? fallback
  if (typeof ms !== 'number' || !ok(ms)) throw optionError(field, ms, expectation)
  return ms
}

const positive = (n: number) => Number.isFinite(n) && n > 0
const whole = (n: number) => Number.isInteger(n) && n >= 0

export function parseStoreOptions(options: RedisStoreOptions): StoreConfig {
  if (typeof options !== 'object' || options === null) throw optionError('options', options, 'an object')
  const client = storeClient(options.client)
  const prefix = options.prefix ?? 'tollgate:'
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw optionError('prefix', prefix, 'a string without { or } (hash tags are placed by the store)')
  }
  const ms = (field: 'timeoutMs' | 'registryRefreshMs', fallback: number) =>
    parseNumber(options[field], field, fallback, 'a finite number of ms above 0', positive)
  const count = (field: 'rememberCallsMs' | 'localRefusals', fallback: number, unit: string) =>
    parseNumber(options[field], field, fallback, `a whole number of ${unit}, 0 or more`, whole)
  const timeoutMs = ms('timeoutMs', 500)
  const registryRefreshMs = ms('registryRefreshMs', 1000)
  const rememberCallsMs = count('rememberCallsMs', 10_000, 'ms')
  const localRefusals = count('localRefusals', 10_000, 'refusals')
  const { clock, hashTag } = options
  if (clock !== undefined && typeof clock !== 'function') throw optionError('clock', clock, 'a function')
  if (hashTag !== undefined && typeof hashTag !== 'function')
    throw optionError('hashTag', hashTag, 'a function')
  return {
    client,
    prefix,
    timeoutMs,
    registryRefreshMs,
    rememberCallsMs,
    localRefusals,
    hashTag,
    clock,
    expirySlackMs: clock ? testClockSlackMs : 0,
  }
}
