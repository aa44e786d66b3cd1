// The Redis reference, apart from any tollgate import so the ceiling and its test need no build.

/**
 * The reference: a minimal exact GCRA, one EVALSHA per decision on Redis's clock. KEYS are the levels'
 * keys; ARGV holds per level the emission interval and the burst tolerance in µs. A chain is decided
 * all-or-nothing: every level is read before any is written. State: one integer (the theoretical arrival
 * time, µs) per key, expiring when the bucket is full again.
 */
export const GCRA_SOURCE = `local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
if #KEYS == 1 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
  if tat < now then tat = now end
  local new = tat + tonumber(ARGV[1])
  if new - now > tonumber(ARGV[2]) then return 0 end
  redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000))
  return 1
end
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat < now then tat = now end
  local new = tat + tonumber(ARGV[2 * i - 1])
  if new - now > tonumber(ARGV[2 * i]) then return 0 end
  tats[i] = new
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000))
end
return 1`

/** The reference's ARGV for `levels`: per level, µs between tokens and the burst (limit tokens) in µs. */
export function gcraArgs(levels) {
  return levels.flatMap(({ limit, windowMs }) => {
    // Rounded up: a state of whole µs never admits more than the limit.
    const emission = Math.ceil((windowMs * 1000) / limit)
    return [String(emission), String(emission * limit)]
  })
}

/** Loads a script where EVALSHA will run it: on the node, or on every master of a Cluster. */
export async function loadScript(client, source) {
  const nodes = typeof client.nodes === 'function' ? client.nodes('master') : [client]
  const shas = await Promise.all(nodes.map((node) => node.script('LOAD', source)))
  return shas[0]
}
