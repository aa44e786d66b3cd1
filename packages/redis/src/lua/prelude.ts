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
