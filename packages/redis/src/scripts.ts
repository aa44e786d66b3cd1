import { createHash } from 'node:crypto'
import type { PolicyBook } from '@tollgate/core/store'
import { compileBook } from './lua/book.js'
import { decideBody } from './lua/decide.js'
import { prelude } from './lua/prelude.js'

/**
 * The Lua side of the store. The maths is core's (`algorithm.ts`: assess, convertDebt, the state settle
 * writes, stateTtlMs; `advance.ts`; `resolve.ts`) done with the same IEEE double operations in the same
 * order, so Redis and the in-process store agree to the bit. Every value is an integer below 2^53 (exact in
 * a double); numbers sent back as text use `%.0f` (tostring would round past 14 digits).
 *
 * One script per policy book: the limiter's tier definitions are compiled into the script as constants, so
 * a decision sends only its keys, cost and tier, and the script allocates no table for the book. A book
 * changes only when tier limits change at runtime; a new book's library is loaded once (FUNCTION LOAD after
 * "Function not found"; NOSCRIPT → EVAL where Functions are not available).
 *
 * A bucket state is six varints: tat, frac, capacity, tokens, per, and tat − the ms it was written (the
 * epoch registry changes are applied from). A tenant's registry entries are a hash beside its
 * state (same hash tag): field `a` its tier assignment, `b` its custom bucket, each a history
 * "since=value;since=value" (values escaped, empty = removed), read by the decision itself.
 */

export interface Script {
  /** For EVAL. */
  readonly source: string
  readonly sha: string
  /**
   * The same code as a Redis Function library (Redis 7+), called by FCALL: its helpers and caches are built
   * at its first call and kept, where EVAL builds them on every call (about 20 µs of Redis CPU a call).
   */
  readonly library?: { readonly name: string; readonly source: string }
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex')
}

export function script(source: string): Script {
  return { source, sha: sha1(source) }
}

/**
 * The decision script for one book. `body` defines the local function `decide(keys, argv)`; it is built
 * inside a function of its own because a library's top level runs at FUNCTION LOAD, where Redis 7.0 hides
 * the standard libraries (string, math, …).
 */
export function decisionScript(book: PolicyBook): Script {
  const body = `${prelude}\n${compileBook(book)}\n${decideBody}`
  const build = `local function build()\n${body}\nreturn decide\nend\n`
  const name = `tollgate_${sha1(body)}`
  const library = `#!lua name=${name}
${build}local decide
redis.register_function('${name}', function(keys, argv)
  if not decide then decide = build() end
  return decide(keys, argv)
end)
`
  return { ...script(`${build}return build()(KEYS, ARGV)\n`), library: { name, source: library } }
}

/** Appends a version stamped `now` to a hash field's history (dropping any at or after it, the oldest past max). */
const appendVersion = `
local function append_version(key, field, value, now, max)
  local hist = redis.call('HGET', key, field)
  local out = {}
  if hist then
    for since, v in string.gmatch(hist, '([^;=]+)=([^;]*)') do
      if tonumber(since) < now then out[#out + 1] = since .. '=' .. v end
    end
  end
  out[#out + 1] = string.format('%.0f', now) .. '=' .. value
  while #out > max do table.remove(out, 1) end
  redis.call('HSET', key, field, table.concat(out, ';'))
end
`

/**
 * KEYS: the tenant's registry hash. ARGV: field ('a' | 'b'), value (escaped; '' removes), condition
 * ('' | 'absent' | 'present'), channel, message, now ('' = Redis TIME), max versions.
 * Appends a version stamped now and publishes the change, in one step.
 */
export const entryWriteSource = `${prelude}${appendVersion}
local hist = redis.call('HGET', KEYS[1], ARGV[1])
local current = ''
if hist then current = string.match(hist, '=([^;=]*)$') or '' end
if ARGV[3] == 'absent' and current ~= '' then return 0 end
if ARGV[3] == 'present' and current == '' then return 0 end
append_version(KEYS[1], ARGV[1], ARGV[2], clock(ARGV[6]), tonumber(ARGV[7]))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`

/**
 * KEYS: the tier hash, the tier version counter. ARGV: field, value (a policy id), channel, message, now,
 * max versions. Appends a version, bumps the version counter (the safety net behind pub/sub), publishes.
 */
export const tierWriteSource = `${prelude}${appendVersion}
append_version(KEYS[1], ARGV[1], ARGV[2], clock(ARGV[5]), tonumber(ARGV[6]))
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`
