/** Shared Lua: the clock, histories, the state's varints and core's conversion maths. */
export const prelude = `
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

local byte, char, unpack_, sub = string.byte, string.char, unpack, string.sub
local out_bytes = {}
local function pack(count, n)
  while n >= 128 do
    local low = n % 128
    count = count + 1
    out_bytes[count] = 128 + low
    n = (n - low) / 128
  end
  count = count + 1
  out_bytes[count] = n
  return count
end
-- The varints of a policy's capacity, tokens and per, as a state holds them.
local function scale_text(cap, tokens, per)
  return char(unpack_(out_bytes, 1, pack(pack(pack(0, cap), tokens), per)))
end

-- Parsed policies, kept while the script lives (all of a call where it is built per call). Few policies are
-- in use at once; custom buckets may name many, so the cache starts afresh past 256.
local policy_cache, policies_cached = {}, 0
local function policy_numbers(id)
  local p = policy_cache[id]
  if not p then
    local kind, cap, tokens, per = string.match(id, '^(%a+):(%d+):(%d+):(%d+)$')
    p = { tonumber(cap), tonumber(tokens), tonumber(per), kind == 'lbd' }
    p[5] = scale_text(p[1], p[2], p[3])
    if policies_cached >= 256 then policy_cache, policies_cached = {}, 0 end
    policy_cache[id] = p
    policies_cached = policies_cached + 1
  end
  return p[1], p[2], p[3], p[4], p[5]
end

-- A number passed to redis.call is sent as its "%.17g" text, which is an integer's exact decimal text below
-- 10^17: so TTLs go as numbers (or their cached '%.0f' text, the same digits), capped at 10^15 ms (31,000
-- years). Above that cap SET PX could not take them anyway (Redis adds its clock and refuses an overflow).
local MAX_TTL = 1e15

-- States and refusal logs a call has decided but not yet written, by key (false: deleted), with their PX
-- (false: none): a decide call reads a key it already decided from here and writes each key once, at its end,
-- so a batch in which many decisions share a bucket (a global level, an org, a hot tenant) reads and writes it
-- once, and nothing is written before the call's record says it is the first run. Scripts that never stage a
-- write read Redis as before.
local pending_raw, pending_ttl, pending_keys, pending_count = {}, {}, {}, 0

-- A state is six unsigned base-128 varints (low 7 bits first, high bit = more bytes follow): tat, frac,
-- capacity, tokens, per, and zigzag(tat - epoch); 12 bytes for a typical bucket, which keeps a key under
-- 100 bytes of MEMORY USAGE. Five varints is the layout of earlier releases (no epoch): read as epoch 0.
-- Integer arithmetic below stays exact: every value is an integer below 2^53. scale is scale_text of the
-- policy now in force (cap, tokens, per): a state under it is read without decoding those three.
local function read_state(key, cap, tokens, per, scale)
  local raw = pending_raw[key]
  if raw == nil then raw = redis.call('GET', key) end
  if not raw then return nil end
  -- The common state: a 6-byte tat, a 1-byte frac, the policy's own scale, then the epoch's age if any.
  local b1, b2, b3, b4, b5, b6, b7 = byte(raw, 1, 7)
  if b7 and b7 < 128 and b6 < 128 and b5 >= 128 and b4 >= 128 and b3 >= 128 and b2 >= 128 and b1 >= 128 then
    local after = 8 + #scale
    if sub(raw, 8, after - 1) == scale then
      local tat = b1 - 128 + (b2 - 128) * 128 + (b3 - 128) * 16384 + (b4 - 128) * 2097152
        + (b5 - 128) * 268435456 + b6 * 34359738368
      local last = #raw
      if last < after then return { tat, b7, cap, tokens, per, 0 } end
      local z, weight = 0, 1
      for i = after, last do
        local b = byte(raw, i)
        if b >= 128 then
          z = z + (b - 128) * weight
          weight = weight * 128
        else
          if i ~= last then return nil end
          z = z + b * weight
          local age = z % 2 == 0 and z / 2 or -(z + 1) / 2
          return { tat, b7, cap, tokens, per, tat - age }
        end
      end
      return nil
    end
  end
  -- Any other state, of any layout.
  local v, count, n, weight = {}, 0, 0, 1
  for i = 1, #raw do
    local b = byte(raw, i)
    if b >= 128 then
      n = n + (b - 128) * weight
      weight = weight * 128
    else
      count = count + 1
      v[count] = n + b * weight
      n, weight = 0, 1
    end
  end
  if weight ~= 1 then return nil end
  if count == 5 then
    v[6] = 0
    return v
  end
  if count ~= 6 then return nil end
  local z = v[6]
  local age = z % 2 == 0 and z / 2 or -(z + 1) / 2
  v[6] = v[1] - age
  return v
end

-- scale: scale_text of the state's policy. age false: no registry change could ever apply before this
-- write, so no epoch is needed (five varints).
local function encode_state(tat, frac, scale, age)
  local head = char(unpack_(out_bytes, 1, pack(pack(0, tat), frac)))
  if not age then return head .. scale end
  return head .. scale .. char(unpack_(out_bytes, 1, pack(0, age >= 0 and 2 * age or -2 * age - 1)))
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

-- ceilMulDiv: ceil(a * b / c) in integers, exact while a and b * c are below 2^53 (see core's algorithm.ts).
local function ceil_mul_div(a, b, c)
  if b * c > 9007199254740991 then return math.ceil(a * b / c) end
  local q = math.floor(a / c)
  local rb = (a - q * c) * b
  local q2 = math.floor(rb / c)
  return q * b + q2 + (rb - q2 * c > 0 and 1 or 0)
end

-- convertDebt: tokens held at t stay (clamped to the new capacity), re-expressed as debt, rounded up.
local function convert(st, cap, tokens, per, t)
  local own = own_debt(st, t)
  if own == 0 then return 0 end
  local old_T = st[4] == 0 and 1 or st[5]
  local T = tokens == 0 and 1 or per
  local held = st[3] * old_T - own
  if held <= 0 then return cap * T end
  local missing = cap * old_T - held
  if missing <= 0 then return 0 end
  return ceil_mul_div(missing, T, old_T)
end

local function state_from_debt(debt, cap, tokens, per, origin, epoch)
  local k = tokens == 0 and 1 or tokens
  return { origin + math.floor(debt / k), math.fmod(debt, k), cap, tokens, per, epoch }
end
`
