import { createHash } from 'node:crypto'
import type { Policy, PolicyBook, Versions } from '@tollgate/core/store'
import { escapeValue } from './history.js'

/**
 * The Lua side of the store. The maths is core's (`algorithm.ts`: assess, convertDebt, the state settle
 * writes, stateTtlMs; `advance.ts`; `resolve.ts`) done with the same IEEE double operations in the same
 * order, so Redis and the in-process store agree to the bit. Every value is an integer below 2^53 (exact in
 * a double); numbers sent back as text use `%.0f` (tostring would round past 14 digits).
 *
 * One script per policy book: the limiter's tier definitions are compiled into the script as constants, so
 * a decision sends only its keys, cost and tier, and the script allocates no table for the book. A book
 * changes only when tier limits change at runtime; EVALSHA of a new book's script loads it once (NOSCRIPT).
 *
 * A bucket state is six varints: tat, frac, capacity, tokens, per, and tat − the ms it was written (the
 * epoch registry changes are applied from). A tenant's registry entries are a hash beside its
 * state (same hash tag): field `a` its tier assignment, `b` its custom bucket, each a history
 * "since=value;since=value" (values escaped, empty = removed), read by the decision itself.
 */

const prelude = `
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A history as parallel arrays of moments and values (false = removed).
local function parse_hist(s)
  if not s then return nil end
  local at, val = {}, {}
  for since, v in string.gmatch(s, '([^;=]+)=([^;]*)') do
    at[#at + 1] = tonumber(since)
    val[#val + 1] = v ~= '' and v or false
  end
  return { at, val }
end

local function value_at(h, t)
  if not h then return false end
  local at, val = h[1], h[2]
  for i = #at, 1, -1 do
    if at[i] <= t then return val[i] end
  end
  return false
end

local function policy_numbers(id)
  local kind, cap, tokens, per = string.match(id, '^(%a+):(%d+):(%d+):(%d+)$')
  return tonumber(cap), tonumber(tokens), tonumber(per), kind == 'lbd'
end

-- A state is six unsigned base-128 varints (low 7 bits first, high bit = more bytes follow): tat, frac,
-- capacity, tokens, per, and zigzag(tat - epoch); 12 bytes for a typical bucket, which keeps a key under
-- 100 bytes of MEMORY USAGE. Five varints is the layout of earlier releases (no epoch): read as epoch 0.
local function read_state(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local bytes = { string.byte(raw, 1, -1) }
  local v, n, scale = {}, 0, 1
  for i = 1, #bytes do
    local b = bytes[i]
    if b >= 128 then
      n = n + (b - 128) * scale
      scale = scale * 128
    else
      v[#v + 1] = n + b * scale
      n, scale = 0, 1
    end
  end
  if scale ~= 1 then return nil end
  if #v == 5 then return { v[1], v[2], v[3], v[4], v[5], 0 } end
  if #v ~= 6 then return nil end
  local z = v[6]
  local age = math.fmod(z, 2) == 0 and z / 2 or -(z + 1) / 2
  return { v[1], v[2], v[3], v[4], v[5], v[1] - age }
end

local function pack(out, n)
  while n >= 128 do
    out[#out + 1] = 128 + math.fmod(n, 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = n
end

-- age false: no registry change could ever apply before this write, so no epoch is needed (five varints).
local function encode_state(tat, frac, cap, tokens, per, age)
  local out = {}
  pack(out, tat)
  pack(out, frac)
  pack(out, cap)
  pack(out, tokens)
  pack(out, per)
  if age then pack(out, age >= 0 and 2 * age or -2 * age - 1) end
  return string.char(unpack(out))
end

local function same_scale(st, cap, tokens, per)
  return st[3] == cap and st[4] == tokens and st[5] == per
end

-- Sub-units a state owes at t under its own policy.
local function own_debt(st, t)
  local frozen = st[4] == 0
  local k = frozen and 1 or st[4]
  local origin = frozen and 0 or t
  return math.max(0, (st[1] - origin) * k + st[2])
end

-- convertDebt: tokens held at t stay (clamped to the new capacity), re-expressed as debt, rounded up.
local function convert(st, cap, tokens, per, t)
  local own = own_debt(st, t)
  if own == 0 then return 0 end
  local old_T = st[4] == 0 and 1 or st[5]
  local available = math.min(math.max(st[3] - own / old_T, 0), cap)
  local T = tokens == 0 and 1 or per
  return math.max(0, math.ceil((cap - available) * T - 1e-9))
end

local function state_from_debt(debt, cap, tokens, per, origin, epoch)
  local k = tokens == 0 and 1 or tokens
  return { origin + math.floor(debt / k), math.fmod(debt, k), cap, tokens, per, epoch }
end
`

/** Lua string literal (a policy id or an escaped tier name holds nothing that needs more than quoting). */
function lua(text: string): string {
  return JSON.stringify(text)
}

function fullRefillMs(policy: Policy): number {
  return policy.tokens === 0 ? 0 : Math.ceil((policy.capacity * policy.per) / policy.tokens)
}

/** The book as Lua functions: tier_policy(level, tier, t), base_policy(level), known_tier, tier_moments, hold_ms. */
function compileBook(book: PolicyBook): string {
  const lines: string[] = []
  const tierNames = [...book.tiers.keys()]
  lines.push(
    `local DEFAULT_TIER = ${book.defaultTier === undefined ? 'false' : lua(escapeValue(book.defaultTier))}`,
  )
  lines.push('local function known_tier(name)')
  lines.push(
    tierNames.length === 0
      ? '  return false'
      : `  return ${tierNames.map((t) => `name == ${lua(escapeValue(t))}`).join(' or ')}`,
  )
  lines.push('end')

  const versionsReturn = (versions: Versions<Policy>, indent: string): string[] => {
    const out: string[] = []
    for (let v = versions.length - 1; v >= 0; v--) {
      const { since, value } = versions[v]!
      const ret = value === null ? 'return false' : `return ${lua(value.id)}`
      if (v === 0 && since === 0) out.push(`${indent}${ret}`)
      else out.push(`${indent}if t >= ${since} then ${ret} end`)
    }
    if (versions.length === 0 || versions[0]!.since !== 0) out.push(`${indent}return false`)
    return out
  }
  lines.push('local function tier_policy(lvl, tier, t)')
  book.levels.forEach((_, i) => {
    const branches: string[] = []
    for (const tier of tierNames) {
      const versions = book.tiers.get(tier)![i]
      if (!versions || versions.length === 0) continue
      branches.push(
        `    if tier == ${lua(escapeValue(tier))} then`,
        ...versionsReturn(versions, '      '),
        '    end',
      )
    }
    if (branches.length) lines.push(`  if lvl == ${i + 1} then`, ...branches, '  end')
  })
  lines.push('  return false', 'end')

  lines.push('local function base_policy(lvl)')
  book.base.forEach((policy, i) => {
    if (policy) lines.push(`  if lvl == ${i + 1} then return ${lua(policy.id)} end`)
  })
  lines.push('  return false', 'end')

  // Moments of runtime tier changes per level (configured versions hold from 0 and never move a bucket).
  const withMoments = book.levels.flatMap((_, i) =>
    tierNames.some((t) => (book.tiers.get(t)![i] ?? []).some((v) => v.since > 0)) ? [i + 1] : [],
  )
  lines.push(
    'local function tier_has_moments(lvl)',
    `  return ${withMoments.length ? withMoments.map((l) => `lvl == ${l}`).join(' or ') : 'false'}`,
    'end',
  )
  lines.push('local function tier_moments(lvl, forced, lo, hi, out)')
  book.levels.forEach((_, i) => {
    const moments: string[] = []
    for (const tier of tierNames) {
      for (const { since } of book.tiers.get(tier)![i] ?? []) {
        if (since > 0)
          moments.push(
            `    if (forced == '' or forced == ${lua(escapeValue(tier))}) and ${since} >= lo and ${since} <= hi then out[#out + 1] = ${since} end`,
          )
      }
    }
    if (moments.length) lines.push(`  if lvl == ${i + 1} then`, ...moments, '  end')
  })
  lines.push('end')

  // A key lives until its bucket is full under the slowest policy its level may be converted to, so a
  // change among the book's policies finds the state still there (see the README's key expiry note).
  lines.push('local function hold_ms(lvl)')
  book.levels.forEach((_, i) => {
    const ids = new Map<string, Policy>()
    const base = book.base[i]
    if (base) ids.set(base.id, base)
    for (const tier of tierNames)
      for (const v of book.tiers.get(tier)![i] ?? []) if (v.value) ids.set(v.value.id, v.value)
    if (ids.size > 1)
      lines.push(`  if lvl == ${i + 1} then return ${Math.max(...[...ids.values()].map(fullRefillMs))} end`)
  })
  lines.push('  return 0', 'end')
  return lines.join('\n')
}

/**
 * KEYS: per level decided here (in chain order): its state key, then its registry hash.
 * ARGV: 1 op ('d' decide, 'p' peek with the cost, 'r' refund), 2 now ('' = Redis TIME), 3 cost, 4 forced
 * tier ('' none, escaped), 5 slack (extra expiry, test clock only), 6 decidedAt (refund), 7 m = levels in
 * the chain; then per chain level j: its level number in the book, and '' when its keys are here or 'x' +
 * its assignment history when another slot holds it; then (refund) the policy id charged per local level.
 * Returns { now, allowed, tier, then per local level: debt before the decision, policy id ('' = no policy),
 * custom (1|0) }.
 */
const body = `
local op = ARGV[1]
local now = clock(ARGV[2])
local cost = tonumber(ARGV[3])
local forced = ARGV[4]
local slack = tonumber(ARGV[5])
local m = tonumber(ARGV[7])

-- The chain's levels: book level number, and registry histories (nil when none).
local lvls, assign, custom, keyslot = {}, {}, {}, {}
local n = 0
for j = 1, m do
  lvls[j] = tonumber(ARGV[6 + 2 * j])
  local src = ARGV[7 + 2 * j]
  if src == '' then
    n = n + 1
    keyslot[j] = n
    if redis.call('EXISTS', KEYS[2 * n]) == 1 then
      local reg = redis.call('HMGET', KEYS[2 * n], 'a', 'b')
      assign[j] = parse_hist(reg[1])
      custom[j] = parse_hist(reg[2])
    end
  elseif src ~= 'x' then
    assign[j] = parse_hist(string.sub(src, 2))
  end
end

local function tier_at(t)
  if forced ~= '' then return forced end
  for j = 1, m do
    local a = value_at(assign[j], t)
    if a and known_tier(a) then return a end
  end
  return DEFAULT_TIER
end

-- The policy of chain level j at t: custom, else the tier's, else the base; false when none.
local function policy_at(j, tier, t)
  local c = value_at(custom[j], t)
  if c then return c, 1 end
  if tier then
    local p = tier_policy(lvls[j], tier, t)
    if p then return p, 0 end
  end
  return base_policy(lvls[j]), 0
end

-- Moments in [lo, hi] at which chain level j's policy may have changed.
local function moments(j, lo, hi)
  local out = {}
  local c = custom[j]
  if c then for _, at in ipairs(c[1]) do if at >= lo and at <= hi then out[#out + 1] = at end end end
  if forced == '' then
    for jj = 1, m do
      local a = assign[jj]
      if a then for _, at in ipairs(a[1]) do if at >= lo and at <= hi then out[#out + 1] = at end end end
    end
  end
  tier_moments(lvls[j], forced, lo, hi, out)
  return out
end

-- advance: every registry change since the state was written, each at its moment (ms of the write included).
local function advance(st, j, t_now)
  local out = moments(j, st[6], t_now)
  if #out == 0 then return st end
  table.sort(out)
  local last = -1
  for _, at in ipairs(out) do
    if at ~= last then
      last = at
      local id = policy_at(j, tier_at(at), at)
      if id then
        local cap, tokens, per = policy_numbers(id)
        if not same_scale(st, cap, tokens, per) then
          local debt = convert(st, cap, tokens, per, at)
          if debt == 0 then return nil end
          st = state_from_debt(debt, cap, tokens, per, tokens == 0 and 0 or at, at)
        end
      end
    end
  end
  return st
end

local tier = tier_at(now)
local reply = { now, 1, tier or '' }
local local_levels = {}
local allowed = true
for j = 1, m do
  local k = keyslot[j]
  if k then
    local id, is_custom = policy_at(j, tier, now)
    local entry = { k = k, id = id or '', custom = is_custom }
    if id then
      local cap, tokens, per, delay = policy_numbers(id)
      local T = tokens == 0 and 1 or per
      local st = read_state(KEYS[2 * k - 1])
      if st then st = advance(st, j, now) end
      local debt = 0
      if st then
        if same_scale(st, cap, tokens, per) then
          debt = own_debt(st, now)
        else
          debt = convert(st, cap, tokens, per, now)
        end
      end
      local probe = cost == 0 and T or cost * T
      if debt + probe > cap * T then allowed = false end
      entry.cap, entry.tokens, entry.per, entry.T, entry.debt, entry.j = cap, tokens, per, T, debt, j
    end
    local_levels[#local_levels + 1] = entry
  end
end

-- Whether any registry change could ever concern chain level j (else a state needs no epoch).
local function has_history(j)
  if custom[j] or tier_has_moments(lvls[j]) then return true end
  if forced == '' then
    for jj = 1, m do if assign[jj] then return true end end
  end
  return false
end

-- Writes the state owing this debt; a full bucket is no key at all. slack: extra expiry (test clock only).
local function write(key, e, debt)
  if debt <= 0 then
    redis.call('DEL', key)
    return
  end
  local frozen = e.tokens == 0
  local k = frozen and 1 or e.tokens
  local origin = frozen and 0 or now
  local tat = origin + math.floor(debt / k)
  local frac = math.fmod(debt, k)
  local value = encode_state(tat, frac, e.cap, e.tokens, e.per, has_history(e.j) and tat - now)
  if frozen then
    redis.call('SET', key, value)
  else
    local ttl = math.max(tat - now + (frac > 0 and 1 or 0), hold_ms(lvls[e.j]))
    redis.call('SET', key, value, 'PX', string.format('%.0f', ttl + slack))
  end
end

if op == 'r' then
  local decided_at = tonumber(ARGV[6])
  for i, e in ipairs(local_levels) do
    local charged = ARGV[7 + 2 * m + i]
    -- Only a level still under the policy it was charged under, with no change since, gets tokens back.
    if e.debt and e.id == charged and e.debt > 0 and #moments(e.j, decided_at + 1, now) == 0 then
      write(KEYS[2 * e.k - 1], e, math.max(0, e.debt - cost * e.T))
    end
  end
  return 1
end

if not allowed then reply[2] = 0 end
for _, e in ipairs(local_levels) do
  if e.debt and op == 'd' and allowed and cost > 0 then write(KEYS[2 * e.k - 1], e, e.debt + cost * e.T) end
  reply[#reply + 1] = e.debt or 0
  reply[#reply + 1] = e.id
  reply[#reply + 1] = e.custom
end
return reply
`

export interface Script {
  readonly source: string
  readonly sha: string
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/** The decision script for one book. */
export function decisionScript(book: PolicyBook): Script {
  return script(`${prelude}\n${compileBook(book)}\n${body}`)
}

/**
 * KEYS: the tenant's registry hash. ARGV: field ('a' | 'b'), value (escaped; '' removes), condition
 * ('' | 'absent' | 'present'), channel, message, now ('' = Redis TIME), max versions.
 * Appends a version stamped now (dropping any at or after it, and the oldest past the bound) and publishes.
 */
export const entryWriteSource = `${prelude}
local hist = redis.call('HGET', KEYS[1], ARGV[1])
local current = ''
if hist then current = string.match(hist, '=([^;=]*)$') or '' end
if ARGV[3] == 'absent' and current ~= '' then return 0 end
if ARGV[3] == 'present' and current == '' then return 0 end
local now = clock(ARGV[6])
local out = {}
if hist then
  for since, v in string.gmatch(hist, '([^;=]+)=([^;]*)') do
    if tonumber(since) < now then out[#out + 1] = since .. '=' .. v end
  end
end
out[#out + 1] = string.format('%.0f', now) .. '=' .. ARGV[2]
local max = tonumber(ARGV[7])
while #out > max do table.remove(out, 1) end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ';'))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`

/**
 * KEYS: the tier hash, the tier version counter. ARGV: field, value (a policy id), channel, message, now,
 * max versions. Appends a version, bumps the version counter (the safety net behind pub/sub), publishes.
 */
export const tierWriteSource = `${prelude}
local hist = redis.call('HGET', KEYS[1], ARGV[1])
local now = clock(ARGV[5])
local out = {}
if hist then
  for since, v in string.gmatch(hist, '([^;=]+)=([^;]*)') do
    if tonumber(since) < now then out[#out + 1] = since .. '=' .. v end
  end
end
out[#out + 1] = string.format('%.0f', now) .. '=' .. ARGV[2]
local max = tonumber(ARGV[6])
while #out > max do table.remove(out, 1) end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ';'))
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`
