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
 * One call decides a batch of decisions, in arrival order, each chain all-or-nothing (a decision sees what
 * the ones before it in the batch wrote).
 * KEYS: 1 the call's record (its reply, remembered `record ms`, so a re-sent call is answered, not applied
 * again), then per decision its levels' state key and registry hash.
 * ARGV: 1 now ('' = Redis TIME), 2 slack (extra expiry, test clock only), 3 record ms, 4 'run' | 'cancel',
 * 5 decisions; then per decision: op ('d' decide, 'p' look with the cost, 'r' refund), cost, forced tier ('' none,
 * escaped), decidedAt (refund), m = levels in its chain, then per chain level its number in the book and ''
 * when its keys are here or 'x' + its assignment history when another slot holds them, then (refund) the
 * policy id charged per level here.
 * Returns { now, then per decision: allowed (1|0), tier, then per level here: debt before, policy id ('' =
 * none), custom (1|0) } ('r': allowed and tier only); { 'cancelled' } for a call cancelled before it ran.
 * 'cancel' gives back what the call charged if it ran (its record says), and makes it a no-op if it did not.
 */
const body = `
local now = clock(ARGV[1])
local slack = tonumber(ARGV[2])
local record_ms = tonumber(ARGV[3])
local mode = ARGV[4]
local count = tonumber(ARGV[5])

local record = record_ms > 0 and redis.call('GET', KEYS[1]) or nil
if record == 'x' then return { 'cancelled' } end
local stored
if record then
  stored = {}
  for v in string.gmatch(record, '([^\\001]*)\\001') do stored[#stored + 1] = v end
  if mode == 'run' then return stored end
elseif mode == 'cancel' then
  redis.call('SET', KEYS[1], 'x', 'PX', record_ms)
  return { 'cancelled' }
end

-- A decision: its op, cost, forced tier, chain levels, registry histories and where its keys start.
local function read_decision(a, key_base)
  local d = { op = ARGV[a], cost = tonumber(ARGV[a + 1]), forced = ARGV[a + 2], decided_at = tonumber(ARGV[a + 3]) }
  local m = tonumber(ARGV[a + 4])
  d.m = m
  d.lvls, d.assign, d.custom, d.keyslot = {}, {}, {}, {}
  local n = 0
  for j = 1, m do
    d.lvls[j] = tonumber(ARGV[a + 3 + 2 * j])
    local src = ARGV[a + 4 + 2 * j]
    if src == '' then
      n = n + 1
      d.keyslot[j] = key_base + 2 * n - 1
      local reg_key = KEYS[key_base + 2 * n]
      if redis.call('EXISTS', reg_key) == 1 then
        local reg = redis.call('HMGET', reg_key, 'a', 'b')
        d.assign[j] = parse_hist(reg[1])
        d.custom[j] = parse_hist(reg[2])
      end
    elseif src ~= 'x' then
      d.assign[j] = parse_hist(string.sub(src, 2))
    end
  end
  d.n = n
  d.charged_at = a + 5 + 2 * m
  return d, d.charged_at + (d.op == 'r' and n or 0), key_base + 2 * n
end

local function tier_at(d, t)
  if d.forced ~= '' then return d.forced end
  for j = 1, d.m do
    local a = value_at(d.assign[j], t)
    if a and known_tier(a) then return a end
  end
  return DEFAULT_TIER
end

-- The policy of chain level j at t: custom, else the tier's, else the base; false when none.
local function policy_at(d, j, tier, t)
  local c = value_at(d.custom[j], t)
  if c then return c, 1 end
  if tier then
    local p = tier_policy(d.lvls[j], tier, t)
    if p then return p, 0 end
  end
  return base_policy(d.lvls[j]), 0
end

-- Moments in [lo, hi] at which chain level j's policy may have changed.
local function moments(d, j, lo, hi)
  local out = {}
  local c = d.custom[j]
  if c then for _, at in ipairs(c[1]) do if at >= lo and at <= hi then out[#out + 1] = at end end end
  if d.forced == '' then
    for jj = 1, d.m do
      local a = d.assign[jj]
      if a then for _, at in ipairs(a[1]) do if at >= lo and at <= hi then out[#out + 1] = at end end end
    end
  end
  tier_moments(d.lvls[j], d.forced, lo, hi, out)
  return out
end

-- Whether any registry change could ever concern chain level j (else a state needs no epoch).
local function has_history(d, j)
  if d.custom[j] or tier_has_moments(d.lvls[j]) then return true end
  if d.forced == '' then
    for jj = 1, d.m do if d.assign[jj] then return true end end
  end
  return false
end

-- advance: every registry change since the state was written, each at its moment (ms of the write included).
local function advance(d, st, j)
  if not has_history(d, j) then return st end
  local out = moments(d, j, st[6], now)
  if #out == 0 then return st end
  table.sort(out)
  local last = -1
  for _, at in ipairs(out) do
    if at ~= last then
      last = at
      local id = policy_at(d, j, tier_at(d, at), at)
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

-- Writes the state owing this debt; a full bucket is no key at all.
local function write(d, e, debt)
  local key = KEYS[e.k]
  if debt <= 0 then
    redis.call('DEL', key)
    return
  end
  local frozen = e.tokens == 0
  local k = frozen and 1 or e.tokens
  local origin = frozen and 0 or now
  local tat = origin + math.floor(debt / k)
  local frac = math.fmod(debt, k)
  local value = encode_state(tat, frac, e.cap, e.tokens, e.per, has_history(d, e.j) and tat - now)
  if frozen then
    redis.call('SET', key, value)
  else
    local ttl = math.max(tat - now + (frac > 0 and 1 or 0), hold_ms(d.lvls[e.j]))
    redis.call('SET', key, value, 'PX', string.format('%.0f', ttl + slack))
  end
end

-- Each level here: its policy now and its debt before this decision.
local function assess_levels(d, tier)
  local levels, allowed = {}, true
  for j = 1, d.m do
    local k = d.keyslot[j]
    if k then
      local id, is_custom = policy_at(d, j, tier, now)
      local e = { k = k, j = j, id = id or '', custom = is_custom }
      if id then
        local cap, tokens, per = policy_numbers(id)
        local T = tokens == 0 and 1 or per
        local st = read_state(KEYS[k])
        if st then st = advance(d, st, j) end
        local debt = 0
        if st then
          debt = same_scale(st, cap, tokens, per) and own_debt(st, now) or convert(st, cap, tokens, per, now)
        end
        local probe = d.cost == 0 and T or d.cost * T
        if debt + probe > cap * T then allowed = false end
        e.cap, e.tokens, e.per, e.T, e.debt = cap, tokens, per, T, debt
      end
      levels[#levels + 1] = e
    end
  end
  return levels, allowed
end

local reply = { now }
local a, key_base, at_reply = 6, 1, 2
for _ = 1, count do
  local d
  d, a, key_base = read_decision(a, key_base)
  if mode == 'cancel' then
    -- Undo what this decision charged when the call ran: a refund under the policies it was charged under.
    local charged = stored[at_reply] == '1' and d.op == 'd' and d.cost > 0
    local ids = {}
    if d.op ~= 'r' then
      for i = 1, d.n do ids[i] = stored[at_reply + 2 + 3 * (i - 1) + 1] end
      at_reply = at_reply + 2 + 3 * d.n
    else
      at_reply = at_reply + 2
    end
    if charged then d.op, d.decided_at, d.charged = 'r', tonumber(stored[1]), ids end
  end
  local tier = tier_at(d, now)
  local levels, allowed = assess_levels(d, tier)
  if d.op == 'r' then
    if mode == 'run' or d.charged then
      for i, e in ipairs(levels) do
        local charged = d.charged and d.charged[i] or ARGV[d.charged_at + i - 1]
        -- Only a level still under the policy it was charged under, with no change since, gets tokens back.
        if e.debt and e.id == charged and e.debt > 0 and #moments(d, e.j, d.decided_at + 1, now) == 0 then
          write(d, e, math.max(0, e.debt - d.cost * e.T))
        end
      end
    end
    reply[#reply + 1] = 1
    reply[#reply + 1] = ''
  else
    reply[#reply + 1] = allowed and 1 or 0
    reply[#reply + 1] = tier or ''
    for _, e in ipairs(levels) do
      if e.debt and d.op == 'd' and allowed and d.cost > 0 then write(d, e, e.debt + d.cost * e.T) end
      reply[#reply + 1] = e.debt or 0
      reply[#reply + 1] = e.id
      reply[#reply + 1] = e.custom
    end
  end
end
if mode == 'cancel' then
  redis.call('SET', KEYS[1], 'x', 'PX', record_ms)
  return { 'cancelled' }
end
if record_ms > 0 then
  local parts = {}
  for i, v in ipairs(reply) do parts[i] = type(v) == 'number' and string.format('%.0f', v) or v end
  redis.call('SET', KEYS[1], table.concat(parts, '\\001') .. '\\001', 'PX', record_ms)
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
