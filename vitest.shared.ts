import { relative, resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

/** Tests run against the TypeScript sources of workspace packages (their `source` export condition). */
const conditions = ['source', 'import', 'module', 'node', 'default']
const root = import.meta.dirname
const reportName = relative(root, process.cwd()).replaceAll('/', '-') || 'root'

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // One JSON report per package so the test command can print a single closing count.
    reporters: ['default', 'json'],
    outputFile: { json: resolve(root, '.tmp', `vitest-${reportName}.json`) },
  },
})
