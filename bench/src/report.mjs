// Turns samples into medians, spreads, ratios to the reference of the same run, targets and markdown.
import { median } from './lib.mjs'

const metricOf = {
  'in-process': 'opsPerSec',
  'default-limiter': 'opsPerSec',
  memory: 'bytesPerKey',
  redis: 'opsPerSec',
  'redis-cluster': 'opsPerSec',
  'redis-ceiling': 'opsPerSec',
  'redis-memory': 'bytesPerKey',
  http: 'opsPerSec',
}
const referenceOf = {
  'in-process': 'lru-cache token bucket',
  memory: 'lru-cache token bucket',
  redis: 'bare EVALSHA',
  'redis-cluster': 'bare EVALSHA',
  'redis-memory': 'bare EVALSHA',
  http: 'bare',
}
const sameScenario = (a, b) => JSON.stringify(a) === JSON.stringify(b)
const peerName = { express: 'express-rate-limit', koa: 'koa-ratelimit', fastify: '@fastify/rate-limit' }
const REDIS_PEERS = ['rate-limiter-flexible RateLimiterRedis', 'rate-limit-redis']

/** Median, min and max of one field over a case's samples. */
function stat(samples, field) {
  const values = samples.map((s) => s[field]).filter((v) => typeof v === 'number' && Number.isFinite(v))
  if (values.length === 0) return undefined
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

const sum = (samples, field) => samples.reduce((total, s) => total + (s[field] ?? 0), 0)

export function summarize(report) {
  const rows = report.results.map((r) => ({
    ...r,
    value: stat(r.samples, metricOf[r.group]),
    p50: stat(r.samples, 'p50'),
    p99: stat(r.samples, 'p99'),
    redisMicros: stat(r.samples, 'redisMicrosPerDecision'),
    redisCpu: stat(r.samples, 'redisCpuMicrosPerDecision'),
    serverCpu: stat(r.samples, 'serverCpuMicrosPerRequest'),
    degraded: sum(r.samples, 'degraded'),
    errors: sum(r.samples, 'errors'),
    correct: r.samples.length > 0 && r.samples.every((s) => s.correct),
  }))
  for (const row of rows) {
    const ref = find(rows, row.group, row.scenario, referenceOf[row.group])
    row.ratio = ref?.value && row.value ? row.value.median / ref.value.median : undefined
  }
  return rows
}

function find(rows, group, scenario, subject) {
  return rows.find((r) => r.group === group && r.subject === subject && sameScenario(r.scenario, scenario))
}

/** The fastest row of `subjects` in one scenario (by median), among those with a figure. */
function best(rows, group, scenario, subjects) {
  return subjects
    .map((s) => find(rows, group, scenario, s))
    .filter((r) => r?.value)
    .sort((a, b) => b.value.median - a.value.median)[0]
}

/** Each target of issues 11, 12 and 13: what it compares, the measured value, the goal, whether it is met. */
export function evaluateTargets(report) {
  const rows = summarize(report)
  const targets = []
  // A figure from a row with wrong admissions, degraded decisions or errors counts for nothing.
  const ratio = (a, b, field = 'value') =>
    a?.[field] && b?.[field] && a.correct ? a[field].median / b[field].median : undefined
  const add = (issue, name, value, goal, met, unit = '×') =>
    targets.push({ issue, name, value, goal, unit, met: value === undefined ? null : met })

  for (const keys of [1, 100_000]) {
    const label = keys === 1 ? '1 key' : '100k keys'
    for (const regime of ['pass', 'reject']) {
      const one = { keys, levels: 1, regime }
      const tg = find(rows, 'in-process', one, 'tollgate')
      if (!tg) continue
      const where = `in-process ${label}, ${regime}`
      const erl = ratio(tg, find(rows, 'in-process', one, 'express-rate-limit MemoryStore'))
      add(13, `${where}: tollgate vs express-rate-limit MemoryStore`, erl, '≥ 1.2×', erl >= 1.2)
      const rlf = ratio(tg, find(rows, 'in-process', one, 'rate-limiter-flexible RateLimiterMemory'))
      add(13, `${where}: tollgate vs rate-limiter-flexible`, rlf, '≥ 3×', rlf >= 3)
      const lru = ratio(tg, find(rows, 'in-process', one, 'lru-cache token bucket'))
      add(13, `${where}: tollgate vs lru-cache token bucket`, lru, '≥ 0.8×', lru >= 0.8)
      const chain = ratio(find(rows, 'in-process', { keys, levels: 3, regime }, 'tollgate'), tg)
      add(13, `${where}: tollgate 3 levels vs 1 level`, chain, '≥ 0.5×', chain >= 0.5)
      // The same targets for checkNow, the call an in-process caller on a hot path makes (no Promise).
      const now = find(rows, 'in-process', one, 'tollgate checkNow')
      if (!now) continue
      const nowErl = ratio(now, find(rows, 'in-process', one, 'express-rate-limit MemoryStore'))
      add(
        13,
        `${where}: tollgate checkNow vs express-rate-limit MemoryStore`,
        nowErl,
        '≥ 1.2×',
        nowErl >= 1.2,
      )
      const nowRlf = ratio(now, find(rows, 'in-process', one, 'rate-limiter-flexible RateLimiterMemory'))
      add(13, `${where}: tollgate checkNow vs rate-limiter-flexible`, nowRlf, '≥ 3×', nowRlf >= 3)
      const nowLru = ratio(now, find(rows, 'in-process', one, 'lru-cache token bucket'))
      add(13, `${where}: tollgate checkNow vs lru-cache token bucket`, nowLru, '≥ 0.8×', nowLru >= 0.8)
      const nowChain = ratio(find(rows, 'in-process', { keys, levels: 3, regime }, 'tollgate checkNow'), now)
      add(13, `${where}: tollgate checkNow 3 levels vs 1 level`, nowChain, '≥ 0.5×', nowChain >= 0.5)
    }
  }
  const heapKeys = report.settings.memoryKeys
  const heap = find(rows, 'memory', { keys: heapKeys }, 'tollgate')
  if (heap) {
    const at = heapKeys === 1_000_000 ? '1M' : `${heapKeys / 1000}k (not 1M: quick run)`
    const value = heap.correct ? heap.value?.median : undefined
    add(13, `heap per key at ${at} keys, tollgate memory store`, value, '≤ 120 B', value <= 120, 'B')
  }
  const cold = find(rows, 'default-limiter', { keySet: 'cold' }, 'tollgate default limiter')
  const warm = find(rows, 'default-limiter', { keySet: 'warm' }, 'tollgate default limiter')
  if (cold && warm) {
    const r = ratio(cold, warm)
    add(11, 'default limiter: keys at 10× its capacity vs a warm key set', r, '≥ 0.5× (within 2×)', r >= 0.5)
  }
  for (const framework of ['express', 'koa', 'fastify']) {
    const pass = { framework, regime: 'pass' }
    const tg = find(rows, 'http', pass, 'tollgate')
    if (!tg) continue
    const vsBare = ratio(tg, find(rows, 'http', pass, 'bare'))
    add(13, `HTTP ${framework} pass: tollgate vs bare`, vsBare, '≥ 0.9×', vsBare >= 0.9)
    const reject = { framework, regime: 'reject' }
    const vsPeer = ratio(find(rows, 'http', reject, 'tollgate'), find(rows, 'http', reject, 'peer'))
    add(13, `HTTP ${framework} reject: tollgate vs ${peerName[framework]}`, vsPeer, '> 1×', vsPeer > 1)
  }

  const c256 = { concurrency: 256, levels: 1 }
  const tg256 = find(rows, 'redis', c256, 'tollgate')
  if (tg256) {
    const peer = best(rows, 'redis', c256, REDIS_PEERS)
    const vsPeer = ratio(tg256, peer)
    add(
      12,
      `Redis c=256, 1 level: tollgate vs best peer (${peer?.subject ?? '—'})`,
      vsPeer,
      '≥ 1.5×',
      vsPeer >= 1.5,
    )
    const c256x3 = { concurrency: 256, levels: 3 }
    const tg3 = find(rows, 'redis', c256x3, 'tollgate')
    const chain = ratio(tg3, tg256)
    add(12, 'Redis c=256, 3 levels: tollgate vs its own 1 level', chain, '≥ 0.85×', chain >= 0.85)
    const peer3 = best(rows, 'redis', c256x3, REDIS_PEERS)
    const vsPeer3 = ratio(tg3, peer3)
    add(
      12,
      `Redis c=256, 3 levels: tollgate vs best peer stacked 3 deep (${peer3?.subject ?? '—'})`,
      vsPeer3,
      '≥ 2×',
      vsPeer3 >= 2,
    )
    const c1 = { concurrency: 1, levels: 1 }
    const p50 = ratio(find(rows, 'redis', c1, 'tollgate'), find(rows, 'redis', c1, 'bare EVALSHA'), 'p50')
    add(12, 'Redis c=1: tollgate p50 vs bare EVALSHA p50', p50, '≤ 1.2×', p50 <= 1.2)
    const c16 = { concurrency: 16, levels: 1 }
    const p99 = ratio(find(rows, 'redis', c16, 'tollgate'), find(rows, 'redis', c16, 'bare EVALSHA'), 'p99')
    add(12, 'Redis c=16: tollgate p99 vs bare EVALSHA p99', p99, '≤ 1.5×', p99 <= 1.5)
    const hot = { concurrency: 256, levels: 1, hot: true }
    const hotPeer = best(rows, 'redis', hot, REDIS_PEERS)
    const vsHot = ratio(find(rows, 'redis', hot, 'tollgate'), hotPeer)
    add(
      12,
      `Redis reject-heavy (one tenant far over), c=256: tollgate vs best peer (${hotPeer?.subject ?? '—'})`,
      vsHot,
      '≥ 5×',
      vsHot >= 5,
    )
    for (const [levels, goal] of [
      [1, 10],
      [3, 20],
    ]) {
      const row = find(rows, 'redis', { concurrency: 256, levels }, 'tollgate')
      const usec = row?.correct ? row.redisMicros?.median : undefined
      add(
        12,
        `Redis µs per decision (INFO commandstats), ${levels} level${levels > 1 ? 's' : ''}, c=256`,
        usec,
        `≤ ${goal} µs`,
        usec <= goal,
        'µs',
      )
    }
    const ceiling = find(rows, 'redis-ceiling', { levels: 1 }, 'redis-benchmark -P 16')
    const moon = tg256.correct && ceiling?.value ? tg256.value.median / ceiling.value.median : undefined
    add(
      12,
      'moonshot: tollgate c=256, 1 level vs redis-benchmark pipelined ceiling of the bare script',
      moon,
      '≥ 0.5×',
      moon >= 0.5,
    )
  }
  // Bytes from a run with degraded decisions count for nothing: those keys were never written.
  const bytes = find(rows, 'redis-memory', { keys: report.settings.redisMemoryKeys }, 'tollgate')
  if (bytes) {
    const value = bytes.correct ? bytes.value?.median : undefined
    add(12, 'Redis bytes per key (MEMORY USAGE)', value, '≤ 100 B', value <= 100, 'B')
  }
  const redisRows = rows.filter(
    (r) => (r.group === 'redis' || r.group === 'redis-cluster') && r.samples.length,
  )
  if (redisRows.length) {
    const wrong = redisRows.filter((r) => !r.correct).length
    const degraded = redisRows.reduce((total, r) => total + r.degraded, 0)
    add(
      12,
      `Redis admissions: rows over the limit, with errors or with degraded decisions (${fmt(degraded)} degraded decisions in all)`,
      wrong,
      '0 rows',
      wrong === 0,
      'count',
    )
  }
  return targets
}

const fmt = (n, digits = 0) =>
  n === undefined || n === null || Number.isNaN(n)
    ? '—'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const rate = (s) => (s ? `${fmt(s.median)} | ${fmt(s.min)}–${fmt(s.max)}` : '— | —')
const ms = (s) => (s ? fmt(s.median, 2) : '—')
const micros = (s) => (s ? fmt(s.median, s.median < 10 ? 2 : 1) : '—')
const times = (r) => (r === undefined ? '—' : `${fmt(r, 2)}×`)

function admissions(row) {
  const last = row.samples.at(-1)
  if (!last) return 'no sample'
  const mark = row.correct ? 'ok' : '**WRONG**'
  if (last.admitted === null || last.admitted === undefined) return `${mark} (not counted)`
  const bound = last.bound === null || last.bound === undefined ? '' : ` ≤ ${fmt(last.bound)}`
  const limited = last.limited === undefined ? '' : `, ${fmt(last.limited)} limited`
  const errors = row.errors ? `, ${fmt(row.errors)} errors` : ''
  return `${mark} (${fmt(last.admitted)} of ${fmt(last.offered ?? last.keys)}${bound}${limited}${errors})`
}

function formatTarget(t) {
  if (t.value === undefined) return 'no valid figure'
  if (t.unit === 'B') return `${fmt(t.value)} B`
  if (t.unit === 'µs') return `${fmt(t.value, 1)} µs`
  if (t.unit === 'count') return fmt(t.value)
  return times(t.value)
}

const redisScenario = (s) =>
  `c=${s.concurrency}, ${s.levels} level${s.levels > 1 ? 's' : ''}${s.hot ? ', reject-heavy' : ''}`

export function renderMarkdown(report) {
  const rows = summarize(report)
  const m = report.machine ?? {}
  const out = []
  out.push(`# tollgate benchmarks${m.quick ? ' (quick mode)' : ''}`, '')
  out.push(
    `${report.date} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB · Node ${m.node} · Redis ${m.redis ?? '—'} · ${m.platform}` +
      ` · commit ${m.commit ?? '—'} · ${report.rounds} rounds, each sample in a fresh process, order shuffled per round (seed ${m.seed}) · ${report.seconds} s`,
    '',
  )
  out.push(
    'Figures are medians over the rounds with the min–max spread; × is the ratio to the reference measured in the same run. ',
    '"Admitted" is the last sample\'s count of admitted decisions against the most the configured limit allows over that run (warm-up included). See README.md for the method.',
    '',
  )
  out.push('## Targets', '', '| issue | target | measured | goal | met |', '|---|---|---:|---|---|')
  for (const t of report.targets) {
    const met = t.met === null ? '— no figure' : t.met ? '✅ met' : '❌ missed'
    out.push(`| ${t.issue} | ${t.name} | ${formatTarget(t)} | ${t.goal} | ${met} |`)
  }
  const section = (group, title, head, line, note) => {
    const list = rows.filter((r) => r.group === group)
    if (list.length === 0) return
    const columns = head.split('|').slice(1, -1)
    out.push('', `## ${title}`, '')
    if (note) out.push(note, '')
    out.push(head, `|${columns.map(() => '---').join('|')}|`)
    for (const r of list) out.push(line(r))
  }
  section(
    'in-process',
    'In-process decisions/s',
    '| keys | levels | regime | limiter | decisions/s | min–max | × lru-cache token bucket | admitted |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.scenario.levels} | ${r.scenario.regime} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} |`,
    'pass: every limit far above the load, all admitted; reject: the user level allows 1 per hour, so nearly all are refused.',
  )
  section(
    'default-limiter',
    'Default limiter (issue 11): `createLimiter()` with no store',
    '| key set | distinct keys | decisions/s | min–max | × warm | admitted |',
    (r) => {
      const warmRow = find(rows, 'default-limiter', { keySet: 'warm' }, r.subject)
      const d = report.settings.defaultLimiter
      const keys = r.scenario.keySet === 'warm' ? d.warmKeys : d.coldKeys
      return `| ${r.scenario.keySet} | ${fmt(keys)} (store holds ${fmt(d.capacity)}) | ${rate(r.value)} | ${times(ratio2(r, warmRow))} | ${admissions(r)} |`
    },
  )
  section(
    'memory',
    'Heap bytes per key',
    '| keys | limiter | bytes/key | min–max | × lru-cache token bucket | admitted |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} |`,
  )
  const redisHead =
    '| scenario | client | decisions/s | min–max | × bare EVALSHA | p50 ms | p99 ms | Redis µs/decision (commandstats) | Redis CPU µs/decision | admitted | degraded |'
  const redisLine = (r) =>
    `| ${redisScenario(r.scenario)} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${ms(r.p50)} | ${ms(r.p99)} | ${micros(r.redisMicros)} | ${micros(r.redisCpu)} | ${admissions(r)} | ${fmt(r.degraded)} |`
  section(
    'redis',
    'Redis decisions/s, latency and Redis CPU',
    redisHead,
    redisLine,
    "10k users under 100 orgs, 20 per user per second (3 levels: org 20,000/s, global 10⁹/s); reject-heavy: 9 of 10 decisions are one tenant's. " +
      'Redis µs/decision: INFO commandstats usec after CONFIG RESETSTAT, scripts counted with the commands they call (not twice), ' +
      'divided by decisions; Redis CPU: redis-server utime+stime from /proc, which also holds network I/O.',
  )
  section(
    'redis-cluster',
    'Redis Cluster (3 masters)',
    redisHead,
    redisLine,
    'One level: every bucket its own slot. Three levels: user → team → org, hash-tagged by the org, so a chain is one slot and one script call.',
  )
  section(
    'redis-ceiling',
    'Pipelined ceiling of the bare script (redis-benchmark)',
    '| levels | client | decisions/s | min–max | Redis µs/decision (script) | Redis CPU µs/decision | calls |',
    (r) =>
      `| ${r.scenario.levels} | ${r.subject} | ${rate(r.value)} | ${micros(r.redisMicros)} | ${micros(r.redisCpu)} | ${r.correct ? 'ok' : '**WRONG**'} |`,
  )
  section(
    'redis-memory',
    'Redis bytes per key (MEMORY USAGE)',
    '| keys | client | bytes/key | min–max | × bare EVALSHA | admitted | degraded |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} | ${fmt(r.degraded)} |`,
  )
  section(
    'http',
    'HTTP requests/s (wrk, pinned to the other core)',
    '| framework | regime | variant | requests/s | min–max | × bare | server CPU µs/request | p99 ms | admitted |',
    (r) =>
      `| ${r.scenario.framework} | ${r.scenario.regime} | ${r.subject === 'peer' ? peerName[r.scenario.framework] : r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${micros(r.serverCpu)} | ${ms(r.p99)} | ${admissions(r)} |`,
    "Every limiter: the same limit per hour (pass 10⁹, reject 10), keyed by the client address. Server CPU: the server process's utime+stime over the measured run, divided by its requests.",
  )
  const seconds = new Map()
  for (const r of rows) seconds.set(r.group, (seconds.get(r.group) ?? 0) + sum(r.samples, 'sampleMs') / 1000)
  out.push('', `Time per group (s): ${[...seconds].map(([group, s]) => `${group} ${fmt(s)}`).join(', ')}.`)
  // The hypervisor's steal (/proc/stat) while each group ran: where it is large, so is the noise.
  const steal = new Map()
  for (const r of rows)
    for (const s of r.samples)
      if (s.stealMs !== undefined) steal.set(r.group, (steal.get(r.group) ?? 0) + s.stealMs / 1000)
  if (steal.size)
    out.push(
      '',
      `CPU time stolen by the host while each group ran (s, both cores): ${[...steal].map(([group, s]) => `${group} ${s.toFixed(1)}`).join(', ')}.`,
    )
  if (report.failures.length) {
    out.push('', '## Failed samples', '')
    for (const f of report.failures) {
      out.push(
        `- round ${f.round}, ${f.group} ${JSON.stringify(f.scenario)} ${f.subject}: ${f.error.split('\n')[0]}`,
      )
    }
  }
  return `${out.join('\n')}\n`
}

const ratio2 = (a, b) => (a?.value && b?.value ? a.value.median / b.value.median : undefined)
