import { createHash } from 'node:crypto'

/**
 * The Lua side of the store. The maths is core's `algorithm.ts` (assess, convertDebt, the state written by
 * settle, stateTtlMs) done with the same IEEE double operations in the same order, so Redis and the
 * in-process store agree to the bit. Every value is an integer below 2^53 (exact in a double); numbers
 * sent back as text use `%.0f` (tostring would round past 14 digits), and `math.fmod` is exact like
 * JavaScript's `%`.
 *
 * A bucket's state is one short binary string: tat, frac, capacity, tokens, per (see BucketState) as varints.
 * The scripts return only what JavaScript cannot know — Redis's `now` and each bucket's debt before
 * the decision — and core's `settle` turns them into figures, so no formula is written twice.
 */
const prelude = `
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A state is five unsigned integers as base-128 varints (low 7 bits first, high bit = more bytes follow):
-- 10 to 20 bytes for most buckets, which keeps a key under 100 bytes of MEMORY USAGE.
local function pack(values)
  local bytes = {}
  for _, n in ipairs(values) do
    while n >= 128 do
      bytes[#bytes + 1] = string.char(128 + math.fmod(n, 128))
      n = math.floor(n / 128)
    end
    bytes[#bytes + 1] = string.char(n)
  end
  return table.concat(bytes)
end

local function read_state(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local values, n, scale, pos = {}, 0, 1, 1
  while pos <= #raw do
    local b = string.byte(raw, pos)
    if b >= 128 then
      n = n + (b - 128) * scale
      scale = scale * 128
    else
      values[#values + 1] = n + b * scale
      n, scale = 0, 1
    end
    pos = pos + 1
  end
  if #values ~= 5 or scale ~= 1 then return nil end
  return values
end

local function same_policy(st, cap, tokens, per)
  return st[3] == cap and st[4] == tokens and st[5] == per
end

-- Sub-units owed at now under the policy (cap, tokens, per); a state of another policy is converted.
-- A state owing nothing is a full bucket, the same as no key (as if it had expired): full stays full.
local function debt_of(st, cap, tokens, per, now)
  if not st then return 0, false end
  local old_frozen = st[4] == 0
  local old_k = old_frozen and 1 or st[4]
  local old_origin = old_frozen and 0 or now
  local own = math.max(0, (st[1] - old_origin) * old_k + st[2])
  if own == 0 then return 0, false end
  if same_policy(st, cap, tokens, per) then return own, false end
  local old_T = old_frozen and 1 or st[5]
  local available = math.min(math.max(st[3] - own / old_T, 0), cap)
  local T = tokens == 0 and 1 or per
  return math.max(0, math.ceil((cap - available) * T - 1e-9)), true
end

-- Writes the state holding this debt; a full bucket is no key at all. slack: extra expiry (test clock only).
local function write(key, debt, cap, tokens, per, now, slack)
  if debt <= 0 then
    redis.call('DEL', key)
    return
  end
  local frozen = tokens == 0
  local k = frozen and 1 or tokens
  local origin = frozen and 0 or now
  local tat = origin + math.floor(debt / k)
  local frac = math.fmod(debt, k)
  local value = pack({ tat, frac, cap, tokens, per })
  if frozen then
    redis.call('SET', key, value)
  else
    local ttl = tat - now + (frac > 0 and 1 or 0)
    redis.call('SET', key, value, 'PX', string.format('%.0f', ttl + slack))
  end
end
`

/**
 * Decides a chain (or one slot group of it).
 * KEYS: one per bucket. ARGV: now ('' = Redis TIME), mode ('charge' | 'assess'), slack, then per bucket
 * cost, capacity, tokens, per. Returns { now, allowed (1|0), debt before the decision per bucket }.
 * 'charge' charges every bucket when all fit (all-or-nothing); 'assess' only looks (and, like core,
 * writes states that had to be converted to a new policy).
 */
export const decideSource = `${prelude}
local now = clock(ARGV[1])
local charge_mode = ARGV[2] == 'charge'
local slack = tonumber(ARGV[3])
local ops = {}
local allowed = true
for i = 1, #KEYS do
  local b = 3 + (i - 1) * 4
  local cost, cap, tokens, per = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local T = tokens == 0 and 1 or per
  local debt, converted = debt_of(read_state(KEYS[i]), cap, tokens, per, now)
  local probe = cost == 0 and T or cost * T
  if debt + probe > cap * T then allowed = false end
  ops[i] = { cost, cap, tokens, per, T, debt, converted }
end
local reply = { now, allowed and 1 or 0 }
for i = 1, #KEYS do
  local o = ops[i]
  if allowed and charge_mode and o[1] > 0 then
    write(KEYS[i], o[6] + o[1] * o[5], o[2], o[3], o[4], now, slack)
  elseif o[7] then
    write(KEYS[i], o[6], o[2], o[3], o[4], now, slack)
  end
  reply[2 + i] = o[6]
end
return reply
`

/**
 * Gives back what a refused cross-slot chain charged in an earlier slot group: exactly cost × T sub-units
 * per bucket, never below zero debt. A bucket whose policy changed since is left alone (never a gift).
 * KEYS: buckets. ARGV: now, slack, then per bucket cost, capacity, tokens, per.
 */
export const refundSource = `${prelude}
local now = clock(ARGV[1])
local slack = tonumber(ARGV[2])
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 4
  local cost, cap, tokens, per = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local st = read_state(KEYS[i])
  if st and same_policy(st, cap, tokens, per) then
    local T = tokens == 0 and 1 or per
    local debt = debt_of(st, cap, tokens, per, now)
    write(KEYS[i], math.max(0, debt - cost * T), cap, tokens, per, now, slack)
  end
end
return 1
`

/** KEYS: the kind's hash. ARGV: id, value, condition ('' | 'absent' | 'present'), channel, message. */
export const registryPutSource = `
if ARGV[3] == 'absent' then
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
else
  if ARGV[3] == 'present' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`

/** KEYS: the kind's hash. ARGV: id, channel, message. */
export const registryDeleteSource = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`

export interface Script {
  readonly source: string
  readonly sha: string
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}
