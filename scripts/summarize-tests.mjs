// Adds up the JSON reports every package's vitest run wrote, into one closing line for CI, after the name and
// first line of every failed test.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = join(import.meta.dirname, '..', '.tmp')
let passed = 0
let failed = 0
let skipped = 0
let files = 0
const failures = []
for (const name of readdirSync(dir).filter((n) => n.startsWith('vitest-') && n.endsWith('.json'))) {
  const report = JSON.parse(readFileSync(join(dir, name), 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests
  skipped += report.numPendingTests + report.numTodoTests
  files++
  for (const file of report.testResults) {
    for (const test of file.assertionResults) {
      if (test.status !== 'failed') continue
      const why = (test.failureMessages?.[0] ?? '').split('\n')[0]
      failures.push(`${name.slice('vitest-'.length, -'.json'.length)}: ${test.fullName}\n    ${why}`)
    }
    // A file that failed to load has no test results of its own, only a message.
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      failures.push(`${name}: ${file.name}\n    ${(file.message ?? '').split('\n')[0]}`)
    }
  }
}
if (files === 0) {
  console.error('tollgate: no test report found')
  process.exit(1)
}
console.log(`tollgate: ${files} packages tested`)
// Printed last, so the tail of a red CI log names what failed.
for (const failure of failures) console.log(`FAILED ${failure}`)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
