// `pnpm test:mutation`: runs Stryker over core's pure modules (stryker.config.mjs), times it, and writes
// reports/mutation/summary.md from its JSON report: the score per file, what survived and what is marked
// equivalent in the source, with the reasons. The HTML and JSON reports themselves are not committed.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

/**
 * Equivalent mutants left to survive rather than disabled: each sits on a line whose other mutants of the same
 * kind are killed, and a line-wide `Stryker disable` would hide those too. Matched by file, mutator and code.
 */
const equivalents = [
  {
    file: 'src/identity.ts',
    mutator: 'Regex',
    code: 'const ipv4 =',
    reason:
      "the IPv4 fast path: a narrower pattern sends more text to the full parse, which gives the same key; these wider ones let in only text the parse also finds invalid and keeps as given ('256.1.1.1', '1.2.3.4.5', '20x.1.1.1'). Patterns that let in text the parse rewrites (leading zeros, the two-part form) are killed",
  },
  {
    file: 'src/policy.ts',
    mutator: 'EqualityOperator',
    code: 'Math.abs(h1 / k1 - x) <= Math.abs(x) * 1e-12 || rest === 0',
    reason: 'differs only when the error equals the tolerance exactly; an exact convergent has error 0',
  },
  {
    file: 'src/policy.ts',
    mutator: 'ConditionalExpression',
    code: 'Math.abs(h1 / k1 - x) <= Math.abs(x) * 1e-12 || rest === 0',
    reason: 'when rest is 0 the convergent equals x, so the tolerance test breaks the loop already',
  },
  ...['ConditionalExpression', 'EqualityOperator', 'ArithmeticOperator'].map((mutator) => ({
    file: 'src/policy.ts',
    mutator,
    code: 'capacity * per > maxExact ||',
    reason:
      'capacity × per > 2^53 − 1 implies (capacity + 1) × per > 2^53 − 1, so the first test is redundant; the second is pinned at exactly 2^53 − 1',
  })),
  {
    file: 'src/policy.ts',
    mutator: 'Regex',
    code: 'const match = /^(tb|lb|lbd)',
    reason: "text around an id is refused anyway by the check that the parsed policy's id equals the text",
  },
  {
    file: 'src/resolve.ts',
    mutator: 'ConditionalExpression',
    code: 'if (assigned !== null && book.tiers.has(assigned))',
    reason: 'Map.has(null) is false: a removed assignment names no tier either way',
  },
  {
    file: 'src/resolve.ts',
    mutator: 'ConditionalExpression',
    code: 'if (!levels) {',
    reason: 'a memo per book: recomputing gives the same flags',
  },
  {
    file: 'src/resolve.ts',
    mutator: 'ArrayDeclaration',
    code: '(byLevel[i] ?? [])',
    reason:
      "a level with no versions: any stand-in array without a 'since' above 0 answers false the same way",
  },
  {
    file: 'src/resolve.ts',
    mutator: 'ConditionalExpression',
    code: 'const tierPolicy = tier === undefined ? null',
    reason: 'book.tiers.get(undefined) is undefined, so valueAt answers null either way',
  },
]
const whyEquivalent = (file, mutator, code) =>
  equivalents.find((e) => e.file === file && e.mutator === mutator && code.includes(e.code))?.reason ??
  '**not yet explained: kill it or explain it**'

/** Character offset of a Stryker location (1-based line, 1-based column) in the source. */
function offset(lines, { line, column }) {
  let at = 0
  for (let i = 0; i < line - 1; i++) at += lines[i].length + 1
  return at + column - 1
}

/** The reason once, then "as above" for the next mutants with the same one. */
let lastReason
function explain(reason) {
  if (reason === lastReason) return 'as above'
  lastReason = reason
  return reason
}

const started = Date.now()
const run = spawnSync('stryker', ['run', ...process.argv.slice(2)], { stdio: 'inherit', shell: true })
const seconds = Math.round((Date.now() - started) / 1000)

const report = JSON.parse(readFileSync('reports/mutation/mutation.json', 'utf8'))
const counted = ['Killed', 'Timeout', 'Survived', 'NoCoverage']
const rows = []
const total = Object.fromEntries([...counted, 'Ignored'].map((s) => [s, 0]))
const open = []
const ignored = new Map()
for (const [file, { mutants, source }] of Object.entries(report.files).sort(([a], [b]) =>
  a.localeCompare(b),
)) {
  const lines = source.split('\n')
  const count = Object.fromEntries([...counted, 'Ignored'].map((s) => [s, 0]))
  for (const m of mutants) {
    if (m.status in count) count[m.status]++
    const where = `${file}:${m.location.start.line}`
    if (m.status === 'Survived' || m.status === 'NoCoverage') {
      const code = lines[m.location.start.line - 1].trim()
      const original = source.slice(offset(lines, m.location.start), offset(lines, m.location.end))
      const cell = (text) => `\`${text.replaceAll('|', '\\|').replaceAll('\n', ' ')}\``
      open.push(
        `| ${where} | ${m.status} | ${m.mutatorName} | ${cell(original)} → ${cell(m.replacement ?? '')} | ${explain(whyEquivalent(file, m.mutatorName, code))} |`,
      )
    }
    if (m.status === 'Ignored') {
      const reason = m.statusReason ?? ''
      const key = `${where}|${reason}`
      ignored.set(key, (ignored.get(key) ?? 0) + 1)
    }
  }
  for (const s of Object.keys(count)) total[s] += count[s]
  rows.push([file, count])
}
const score = (c) => {
  const detected = c.Killed + c.Timeout
  const all = detected + c.Survived + c.NoCoverage
  return all === 0 ? 'n/a' : `${((100 * detected) / all).toFixed(2)}%`
}
const line = (name, c) =>
  `| ${name} | ${score(c)} | ${c.Killed} | ${c.Timeout} | ${c.Survived} | ${c.NoCoverage} | ${c.Ignored} |`
const md = [
  '# Mutation testing of core (StrykerJS)',
  '',
  `Written by \`pnpm test:mutation\` (packages/core/scripts/mutation.mjs); Stryker's own exit code ${run.status}.`,
  `Run time: ${Math.floor(seconds / 60)} min ${seconds % 60} s on ${availableParallelism()} cores shared with other work, concurrency 2${process.argv.includes('--incremental') ? ' (incremental: unchanged mutants reused from the previous run)' : ''}.`,
  'A run takes well over five minutes here (11 to 21 min measured), so scripts/test.sh does not run it; this summary',
  'is committed instead, as bench/ results are. Run it after changing one of the mutated modules or their tests.',
  '',
  'Score = (killed + timed out) / (killed + timed out + survived + not covered). Ignored mutants are those on a line',
  'marked in the source (`// Stryker disable next-line <mutator>: <reason>`, listed below): the mark names equivalent',
  "mutants, and also ignores that line's other mutants of the same kinds (those are killed when not ignored).",
  '',
  '| File | Score | Killed | Timed out | Survived | No coverage | Ignored |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(([file, c]) => line(file, c)),
  line('**All files**', total),
  '',
  '## Surviving mutants',
  '',
  ...(open.length === 0
    ? ['None.']
    : [
        'Each is an equivalent mutant on a line whose other mutants of the same kind are killed (a line-wide disable',
        'would hide those too), so it is explained here (scripts/mutation.mjs) instead of in the source.',
        '',
        '| Where | Status | Mutator | Original → mutant | Why it is equivalent |',
        '| --- | --- | --- | --- | --- |',
        ...open,
      ]),
  '',
  '## Marked equivalent in the source',
  '',
  '| Where | Mutants | Reason |',
  '| --- | ---: | --- |',
  ...[...ignored].map(([key, n]) => {
    const [where, ...rest] = key.split('|')
    const reason = rest.join('|')
    return `| ${where} | ${n} | ${reason.replaceAll('|', '\\|')} |`
  }),
  '',
]
writeFileSync('reports/mutation/summary.md', md.join('\n'))
// In the repo's own table layout, so `biome check .` passes on the committed file.
spawnSync('biome', ['format', '--write', 'reports/mutation/summary.md'], { stdio: 'inherit', shell: true })
process.exit(run.status ?? 1)
