import { relative, resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

/** Tests run against the TypeScript sources of workspace packages (their `source` export condition). */
// No 'import': Vite adds 'import' or 'require' per import itself; forcing 'import' makes require() of CommonJS
// dependencies (express → router → is-promise) load their ESM build.
const conditions = ['source', 'module', 'node', 'default']
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
