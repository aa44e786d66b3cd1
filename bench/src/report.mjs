// Turns samples into medians, spreads, ratios to the reference of the same run, targets and markdown.
import { median } from './lib.mjs'

const metricOf = {
  'in-process': 'opsPerSec',
  memory: 'bytesPerKey',
  redis: 'opsPerSec',
  'redis-memory': 'bytesPerKey',
  http: 'opsPerSec',
}
const referenceOf = {
  'in-process': 'map token bucket',
  memory: 'map token bucket',
  redis: 'bare EVALSHA',
  'redis-memory': 'bare EVALSHA',
  http: 'bare',
}
const sameScenario = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/** Median, min and max of one field over a case's samples. */
function stat(samples, field) {
  const values = samples.map((s) => s[field]).filter((v) => typeof v === 'number' && Number.isFinite(v))
  if (values.length === 0) return undefined
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

export function summarize(report) {
  const rows = report.results.map((r) => ({
    ...r,
    value: stat(r.samples, metricOf[r.group]),
    p50: stat(r.samples, 'p50'),
    p99: stat(r.samples, 'p99'),
    correct: r.samples.length > 0 && r.samples.every((s) => s.correct),
  }))
  for (const row of rows) {
    const ref = rows.find(
      (r) =>
        r.group === row.group &&
        r.subject === referenceOf[row.group] &&
        sameScenario(r.scenario, row.scenario),
    )
    row.ratio = ref?.value && row.value ? row.value.median / ref.value.median : undefined
  }
  return rows
}

function find(rows, group, scenario, subject) {
  return rows.find((r) => r.group === group && r.subject === subject && sameScenario(r.scenario, scenario))
}

/** Each issue target: what it compares, the measured ratio or value, and whether it is met. */
export function evaluateTargets(report) {
  const rows = summarize(report)
  const targets = []
  // A figure from a row with wrong admissions or store errors counts for nothing: its speed is not a decision's.
  const ratio = (a, b) => (a?.value && b?.value && a.correct ? a.value.median / b.value.median : undefined)
  const add = (name, value, goal, met, unit = '×') =>
    targets.push({ name, value, goal, unit, met: value === undefined ? null : met })
  for (const keys of [1, 100_000]) {
    const one = { keys, levels: 1 }
    const tg = find(rows, 'in-process', one, 'tollgate')
    const label = keys === 1 ? '1 key' : '100k keys'
    if (!tg) continue
    const erl = ratio(tg, find(rows, 'in-process', one, 'express-rate-limit MemoryStore'))
    add(`in-process ${label}: tollgate vs express-rate-limit MemoryStore`, erl, '≥ 1.2×', erl >= 1.2)
    const rlf = ratio(tg, find(rows, 'in-process', one, 'rate-limiter-flexible memory'))
    add(`in-process ${label}: tollgate vs rate-limiter-flexible`, rlf, '≥ 3×', rlf >= 3)
    const lru = ratio(tg, find(rows, 'in-process', one, 'lru-cache token bucket'))
    add(`in-process ${label}: tollgate vs token bucket in lru-cache`, lru, '≥ 0.8×', lru >= 0.8)
    const chain = ratio(find(rows, 'in-process', { keys, levels: 3 }, 'tollgate'), tg)
    add(`in-process ${label}: tollgate 3-level chain vs one level`, chain, '≥ 0.4×', chain >= 0.4)
  }
  const c256 = { concurrency: 256, levels: 1 }
  const tgRedis = find(rows, 'redis', c256, 'tollgate')
  if (tgRedis) {
    const peers = ['rate-limiter-flexible RateLimiterRedis', 'rate-limit-redis']
      .map((p) => find(rows, 'redis', c256, p))
      .filter((p) => p?.value)
    const best = peers.sort((a, b) => b.value.median - a.value.median)[0]
    const vsBest = ratio(tgRedis, best)
    add(`Redis c=256: tollgate vs best peer (${best?.subject ?? '—'})`, vsBest, '≥ 1.5×', vsBest >= 1.5)
    const chain = ratio(find(rows, 'redis', { concurrency: 256, levels: 3 }, 'tollgate'), tgRedis)
    add('Redis c=256: tollgate 3-level chain vs one level', chain, '≥ 0.85×', chain >= 0.85)
    const c16 = { concurrency: 16, levels: 1 }
    const tg16 = find(rows, 'redis', c16, 'tollgate')
    const ref16 = find(rows, 'redis', c16, 'bare EVALSHA')
    const p99 = tg16?.p99 && ref16?.p99 ? tg16.p99.median / ref16.p99.median : undefined
    add('Redis c=16: tollgate p99 vs bare EVALSHA p99', p99, '≤ 1.2×', p99 <= 1.2)
    const correct = rows
      .filter((r) => r.group === 'redis' && r.subject === 'tollgate')
      .every((r) => r.correct)
    add(
      'Redis: tollgate decisions without store errors, admitted ≤ limit',
      correct ? 1 : 0,
      'all',
      correct,
      'ok',
    )
  }
  for (const framework of ['express', 'koa', 'fastify']) {
    const pass = { framework, mode: 'pass' }
    const tg = find(rows, 'http', pass, 'tollgate')
    if (!tg) continue
    const vsBare = ratio(tg, find(rows, 'http', pass, 'bare'))
    add(`HTTP ${framework} pass: tollgate vs bare`, vsBare, '≥ 0.9×', vsBare >= 0.9)
    const reject = { framework, mode: 'reject' }
    const vsPeer = ratio(find(rows, 'http', reject, 'tollgate'), find(rows, 'http', reject, 'peer'))
    add(`HTTP ${framework} reject: tollgate vs ${framework}'s own peer`, vsPeer, '> 1×', vsPeer > 1)
  }
  const heap = find(rows, 'memory', { keys: report.settings.memoryKeys }, 'tollgate')
  if (heap?.value)
    add('heap per key, memory store', heap.value.median, '≤ 150 B', heap.value.median <= 150, 'B')
  const redisBytes = find(rows, 'redis-memory', { keys: report.settings.redisMemoryKeys }, 'tollgate')
  if (redisBytes?.value) {
    add('Redis bytes per key', redisBytes.value.median, '≤ 100 B', redisBytes.value.median <= 100, 'B')
  }
  return targets
}

const fmt = (n, digits = 0) =>
  n === undefined || n === null || Number.isNaN(n)
    ? '—'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const rate = (s) => (s ? `${fmt(s.median)} | ${fmt(s.min)}–${fmt(s.max)}` : '— | —')
const ms = (s) => (s ? fmt(s.median, 2) : '—')
const times = (r) => (r === undefined ? '—' : `${fmt(r, 2)}×`)

function admissions(row) {
  const last = row.samples.at(-1)
  if (!last) return 'no sample'
  const mark = row.correct ? 'ok' : '**WRONG**'
  if (row.group === 'http')
    return `${mark} (${fmt(last.ok)} passed, ${fmt(last.limited)} limited, ${fmt(last.errors)} errors)`
  if (last.admitted === null || last.admitted === undefined) return 'no limit (reference)'
  const bound = last.bound === null || last.bound === undefined ? '' : ` ≤ ${fmt(last.bound)}`
  const errors = last.errors ? `, ${fmt(last.errors)} store errors` : ''
  return `${mark} (${fmt(last.admitted)} of ${fmt(last.offered ?? last.keys)}${bound}${errors})`
}

export function renderMarkdown(report) {
  const rows = summarize(report)
  const m = report.machine
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
  out.push('## Targets', '', '| target | measured | goal | met |', '|---|---:|---|---|')
  for (const t of report.targets) {
    let value = t.unit === 'B' ? `${fmt(t.value)} B` : times(t.value)
    if (t.unit === 'ok') value = t.met ? 'yes' : 'no'
    else if (t.value === undefined) value = 'no valid figure'
    out.push(`| ${t.name} | ${value} | ${t.goal} | ${t.met ? '✅ met' : '❌ missed'} |`)
  }
  const section = (group, title, head, line) => {
    const list = rows.filter((r) => r.group === group)
    if (list.length === 0) return
    out.push(
      '',
      `## ${title}`,
      '',
      head,
      `|${head
        .split('|')
        .slice(1, -1)
        .map(() => '---')
        .join('|')}|`,
    )
    for (const r of list) out.push(line(r))
  }
  section(
    'in-process',
    'In-process decisions/s',
    '| keys | levels | limiter | decisions/s | min–max | × map token bucket | admitted |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.scenario.levels} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} |`,
  )
  section(
    'redis',
    'Redis decisions/s and latency',
    '| concurrency | levels | client | decisions/s | min–max | × bare EVALSHA | p50 ms | p99 ms | admitted |',
    (r) =>
      `| ${r.scenario.concurrency} | ${r.scenario.levels} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${ms(r.p50)} | ${ms(r.p99)} | ${admissions(r)} |`,
  )
  section(
    'http',
    'HTTP requests/s (autocannon)',
    '| framework | mode | variant | requests/s | min–max | × bare | p99 ms | responses |',
    (r) =>
      `| ${r.scenario.framework} | ${r.scenario.mode} | ${r.subject === 'peer' ? peerName[r.scenario.framework] : r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${ms(r.p99)} | ${admissions(r)} |`,
  )
  section(
    'memory',
    'Heap bytes per key',
    '| keys | limiter | bytes/key | min–max | × map token bucket | admitted |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} |`,
  )
  section(
    'redis-memory',
    'Redis bytes per key (MEMORY USAGE)',
    '| keys | client | bytes/key | min–max | × bare EVALSHA | admitted |',
    (r) =>
      `| ${fmt(r.scenario.keys)} | ${r.subject} | ${rate(r.value)} | ${times(r.ratio)} | ${admissions(r)} |`,
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

const peerName = { express: 'express-rate-limit', koa: 'koa-ratelimit', fastify: '@fastify/rate-limit' }
