// Adds up the JSON reports every package's vitest run wrote, into one closing line for CI.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = join(import.meta.dirname, '..', '.tmp')
let passed = 0
let failed = 0
let skipped = 0
let files = 0
for (const name of readdirSync(dir).filter((n) => n.startsWith('vitest-') && n.endsWith('.json'))) {
  const report = JSON.parse(readFileSync(join(dir, name), 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests
  skipped += report.numPendingTests + report.numTodoTests
  files++
}
if (files === 0) {
  console.error('tollgate: no test report found')
  process.exit(1)
}
console.log(`tollgate: ${files} packages tested`)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
