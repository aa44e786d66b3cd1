import { defineConfig } from 'vitest/config'

// Like ../../vitest.shared but without the 'import' condition: forced onto CommonJS dependencies
// (express → router → is-promise) it makes require() load their ESM build.
const conditions = ['source', 'module', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
  test: { include: ['test/**/*.test.ts'] },
})
