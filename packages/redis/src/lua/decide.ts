/**
 * One call decides a batch of decisions, in arrival order, each chain all-or-nothing (a decision sees what
 * the ones before it in the batch wrote).
 * KEYS: 1 the call's record (its reply as MessagePack, remembered `record ms`, so a re-sent call is answered,
 * not applied again), then per decision its levels' state key and registry hash (and, for a level that
 * blocks, its refusal log), then any records of earlier calls already answered (deleted: no longer needed).
 * ARGV: 1 now ('' = Redis TIME), 2 slack (extra expiry, test clock only), 3 record ms, 4 'run' | 'cancel',
 * 5 decisions; then per decision: op ('d' decide, 'p' look with the cost, 'r' refund), cost, forced tier ('' none,
 * escaped), decidedAt (refund), m = levels in its chain, then per chain level its number in the book and ''
 * when its keys are here or 'x' + its assignment history when another slot holds them, then (refund) the
 * policy id charged per level here. The common decision is the one argument 'D': decide at cost 1, no forced
 * tier, every level of the book in the chain with its keys here.
 * Returns { now, then per decision: allowed (1|0), tier, then per level here: debt before, policy id ('' =
 * none), custom (1|0) } ('r': allowed and tier only); { 'cancelled' } for a call cancelled before it ran.
 * 'cancel' gives back what the call charged if it ran (its record says), and makes it a no-op if it did not.
 */
export const decideBody = `
-- Set at the start of every call. Everything else here is built once: by a Redis Function when it is
-- first called (then kept), or by EVAL on every call where Functions are not available.
local KEYS, ARGV, now, slack
-- A decision: its op, cost, forced tier, chain levels, registry histories and where its keys start. One
-- table set serves every decision of the call in turn (decisions are decided one after the other).
local d = { lvls = {}, assign = {}, custom = {}, keyslot = {}, logslot = {} }
-- Registry hashes read in this call, by key (false: none), and their keys in order.
local registry_seen, registry_keys, registry_count = {}, {}, 0
-- SET with both NX and GET: Redis 7.0 and later (which also name their version to scripts).
local LATE_RECORD = (tonumber(redis.REDIS_VERSION_NUM) or 0) >= 0x070000

-- Empties what the last call staged and read (also after a call that failed half-way): the tables are
-- kept, not made again, so a call of one decision allocates nothing for them.
local function forget_call()
  for i = 1, pending_count do
    local key = pending_keys[i]
    pending_raw[key], pending_ttl[key], pending_keys[i] = nil, nil, nil
  end
  pending_count = 0
  for i = 1, registry_count do
    registry_seen[registry_keys[i]], registry_keys[i] = nil, nil
  end
  registry_count = 0
end
local function read_decision(a, key_base)
  -- 'D', the common decision in one argument: six fewer for Redis to parse and make strings of (1 level).
  local short = ARGV[a] == 'D'
  local m
  if short then
    d.op, d.cost, d.forced, d.decided_at = 'd', 1, '', nil
    m = LEVEL_COUNT
  else
    d.op, d.cost, d.forced, d.decided_at = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
    m = tonumber(ARGV[a + 4])
  end
  d.charged = nil
  d.m = m
  local assign, custom, keyslot, logslot = d.assign, d.custom, d.keyslot, d.logslot
  for j = 1, m do
    assign[j], custom[j], keyslot[j], logslot[j] = nil, nil, nil, nil
  end
  -- p: the next key of this decision (key_base is the last key of the one before).
  local n, p = 0, key_base + 1
  for j = 1, m do
    local src = ''
    if short then
      d.lvls[j] = j
    else
      d.lvls[j] = tonumber(ARGV[a + 3 + 2 * j])
      src = ARGV[a + 4 + 2 * j]
    end
    if src == '' then
      n = n + 1
      d.keyslot[j] = p
      local reg_key = KEYS[p + 1]
      p = p + 2
      if blocks(d.lvls[j]) then
        d.logslot[j] = p
        p = p + 1
      end
      -- Registry entries change only by admin scripts, never during a call: read each hash once per call.
      local reg = registry_seen[reg_key]
      if reg == nil then
        reg = false
        if redis.call('EXISTS', reg_key) == 1 then
          local fields = redis.call('HMGET', reg_key, 'a', 'b')
          reg = { parse_hist(fields[1]), parse_hist(fields[2]) }
        end
        registry_seen[reg_key] = reg
        registry_count = registry_count + 1
        registry_keys[registry_count] = reg_key
      end
      if reg then
        d.assign[j] = reg[1]
        d.custom[j] = reg[2]
      end
    elseif src ~= 'x' then
      d.assign[j] = parse_hist(string.sub(src, 2))
    end
  end
  d.n = n
  if short then
    d.charged_at = a + 1
    return d, a + 1, p - 1
  end
  d.charged_at = a + 5 + 2 * m
  return d, d.charged_at + (d.op == 'r' and n or 0), p - 1
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

-- Stages a state or refusal-log write for the end of the call (see pending_raw); the last write of a key wins.
local function stage(key, value, ttl)
  if pending_raw[key] == nil then
    pending_count = pending_count + 1
    pending_keys[pending_count] = key
  end
  pending_raw[key], pending_ttl[key] = value, ttl
end

-- A TTL as redis.call gets it cheapest. Redis turns a number argument into text on every call (about a
-- quarter of a SET PX); most TTLs recur (a bucket charged from full owes one token, whichever it is), so a
-- TTL seen a second time is formatted once and its text sent from then on. Bounded: past 1024 it starts afresh.
local ttl_texts, ttl_count = {}, 0
local function ttl_arg(ttl)
  local text = ttl_texts[ttl]
  if text then return text end
  if text == nil then
    if ttl_count >= 1024 then ttl_texts, ttl_count = {}, 0 end
    ttl_texts[ttl] = false
    ttl_count = ttl_count + 1
    return ttl
  end
  text = string.format('%.0f', ttl)
  ttl_texts[ttl] = text
  return text
end

-- Sends the staged writes: one DEL or SET per key, however many decisions of the call wrote it.
local function flush()
  for i = 1, pending_count do
    local key = pending_keys[i]
    local value, ttl = pending_raw[key], pending_ttl[key]
    if not value then
      redis.call('DEL', key)
    elseif ttl then
      redis.call('SET', key, value, 'PX', ttl_arg(ttl))
    else
      redis.call('SET', key, value)
    end
  end
end

-- Writes the state owing this debt; a full bucket is no key at all.
local function write(d, e, debt)
  local key = KEYS[e.k]
  if debt <= 0 then
    stage(key, false, false)
    return
  end
  local frozen = e.tokens == 0
  local k = frozen and 1 or e.tokens
  local origin = frozen and 0 or now
  local tat = origin + math.floor(debt / k)
  local frac = math.fmod(debt, k)
  local value = encode_state(tat, frac, e.scale, has_history(d, e.j) and tat - now)
  if frozen then
    stage(key, value, false)
  else
    local ttl = math.max(tat - now + (frac > 0 and 1 or 0), hold_ms(d.lvls[e.j]))
    stage(key, value, math.min(ttl + slack, MAX_TTL))
  end
end

-- Each level here: its policy now and its debt before this decision (the tables are reused per decision).
local levels, level_pool = {}, {}
local function assess_levels(d, tier)
  local allowed, count = true, 0
  for j = 1, d.m do
    local k = d.keyslot[j]
    if k then
      local id, is_custom = policy_at(d, j, tier, now)
      count = count + 1
      local e = level_pool[count]
      if not e then
        e = {}
        level_pool[count] = e
      end
      e.k, e.j, e.id, e.custom, e.debt = k, j, id or '', is_custom, nil
      if id then
        local cap, tokens, per, _, scale = policy_numbers(id)
        local T = tokens == 0 and 1 or per
        local st = read_state(KEYS[k], cap, tokens, per, scale)
        if st then st = advance(d, st, j) end
        local debt = 0
        if st then
          debt = same_scale(st, cap, tokens, per) and own_debt(st, now) or convert(st, cap, tokens, per, now)
        end
        local probe = d.cost == 0 and T or d.cost * T
        if debt + probe > cap * T then allowed = false end
        e.cap, e.tokens, e.per, e.T, e.debt, e.scale = cap, tokens, per, T, debt, scale
      end
      levels[count] = e
    end
  end
  levels[count + 1] = nil
  return levels, allowed, count
end

-- block.ts: a refusal of a blocking level counts (countsAsRefusal, noteRefusal); the log is "t1,t2,…" (ms of
-- recent counted refusals) or "b<end>" during a block. The after-th within the span writes the blocked debt
-- (blockedDebt); e.debt becomes what the reply reports.
local function note_refusal(d, e)
  local limit = e.cap * e.T
  if e.tokens == 0 or d.cost * e.T > limit or e.debt + d.cost * e.T <= limit or e.debt > limit then return end
  local log_key = KEYS[d.logslot[e.j]]
  local recent = {}
  -- Staged like a state (see stage): a later decision of the call reads what this one noted.
  local raw = pending_raw[log_key]
  if raw == nil then raw = redis.call('GET', log_key) end
  if raw then
    local blocked_until = string.match(raw, '^b(%d+)$')
    if blocked_until then
      if now < tonumber(blocked_until) then return end
    else
      for t in string.gmatch(raw, '%d+') do
        if tonumber(t) > now - BLOCK_WITHIN then recent[#recent + 1] = t end
      end
    end
  end
  if #recent + 1 < BLOCK_AFTER then
    recent[#recent + 1] = string.format('%.0f', now)
    stage(log_key, table.concat(recent, ','), BLOCK_WITHIN + slack)
    return
  end
  stage(log_key, 'b' .. string.format('%.0f', now + BLOCK_FOR), BLOCK_FOR + slack)
  local debt = math.max(e.debt, limit - e.per + math.min(BLOCK_FOR * e.tokens, 9007199254740991 - limit))
  write(d, e, debt)
  e.debt = debt
end

local function decide(keys, argv)
  KEYS, ARGV = keys, argv
  forget_call()
  now = clock(ARGV[1])
  slack = tonumber(ARGV[2])
  local record_ms = tonumber(ARGV[3])
  local mode = ARGV[4]
  local count = tonumber(ARGV[5])

  -- A run looks at its record at its end, by the SET that writes it (NX GET), before anything is written
  -- (every write is staged): one call instead of a GET and a SET. Not before Redis 7 (no SET NX GET).
  local late = mode == 'run' and record_ms > 0 and LATE_RECORD
  local record = record_ms > 0 and not late and redis.call('GET', KEYS[1]) or nil
  if record == 'x' then return { 'cancelled' } end
  local stored
  if record then
    -- The reply as MessagePack (one C call each way, no number formatting).
    stored = cmsgpack.unpack(record)
    if mode == 'run' then return stored end
  elseif mode == 'cancel' then
    redis.call('SET', KEYS[1], 'x', 'PX', ARGV[3])
    return { 'cancelled' }
  end

  -- The reply's length, kept here: #reply would search for it at every append.
  local reply, reply_len = { now }, 1
  local a, key_base, at_reply = 6, 1, 2
  for _ = 1, count do
    local d
    d, a, key_base = read_decision(a, key_base)
    if mode == 'cancel' then
      -- Undo what this decision charged when the call ran: a refund under the policies it was charged under.
      local charged = stored[at_reply] == 1 and d.op == 'd' and d.cost > 0
      local ids = {}
      if d.op ~= 'r' then
        for i = 1, d.n do ids[i] = stored[at_reply + 2 + 3 * (i - 1) + 1] end
        at_reply = at_reply + 2 + 3 * d.n
      else
        at_reply = at_reply + 2
      end
      if charged then d.op, d.decided_at, d.charged = 'r', stored[1], ids end
    end
    local tier = tier_at(d, now)
    local levels, allowed, level_count = assess_levels(d, tier)
    if d.op == 'r' then
      if mode == 'run' or d.charged then
        for i, e in ipairs(levels) do
          local charged = d.charged and d.charged[i] or ARGV[d.charged_at + i - 1]
          -- Only a level still under the policy it was charged under, with no change since, gets tokens back.
          -- A blocked bucket (debt above a full one's) is never credited.
          if e.debt and e.id == charged and e.debt > 0 and e.debt <= e.cap * e.T
            and #moments(d, e.j, d.decided_at + 1, now) == 0 then
            write(d, e, math.max(0, e.debt - d.cost * e.T))
          end
        end
      end
      reply[reply_len + 1], reply[reply_len + 2] = 1, ''
      reply_len = reply_len + 2
    else
      reply[reply_len + 1], reply[reply_len + 2] = allowed and 1 or 0, tier or ''
      reply_len = reply_len + 2
      if BLOCK_AFTER and mode == 'run' and not allowed and d.op == 'd' and d.cost > 0 then
        for _, e in ipairs(levels) do
          if e.debt and d.logslot[e.j] then note_refusal(d, e) end
        end
      end
      for i = 1, level_count do
        local e = levels[i]
        -- A cancel only gives back: a decision it finds refused in the record is not charged now.
        if e.debt and mode == 'run' and d.op == 'd' and allowed and d.cost > 0 then write(d, e, e.debt + d.cost * e.T) end
        reply[reply_len + 1], reply[reply_len + 2], reply[reply_len + 3] = e.debt or 0, e.id, e.custom
        reply_len = reply_len + 3
      end
    end
  end
  if late then
    -- Already answered (a copy of this call ran) or cancelled: nothing of this run is written.
    local prior = redis.call('SET', KEYS[1], cmsgpack.pack(reply), 'NX', 'GET', 'PX', ARGV[3])
    if prior == 'x' then return { 'cancelled' } end
    if prior then return cmsgpack.unpack(prior) end
  end
  flush()
  -- The keys after the decisions' are records of this process's calls that were answered: a call whose reply
  -- came back is never re-sent nor cancelled, so its record has served (else it expires after record ms).
  if #KEYS > key_base then redis.call('DEL', unpack(KEYS, key_base + 1, #KEYS)) end
  if mode == 'cancel' then
    redis.call('SET', KEYS[1], 'x', 'PX', ARGV[3])
    return { 'cancelled' }
  end
  if record_ms > 0 and not late then redis.call('SET', KEYS[1], cmsgpack.pack(reply), 'PX', ARGV[3]) end
  return reply
end
`
