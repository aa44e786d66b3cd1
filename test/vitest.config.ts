import { defineConfig } from 'vitest/config'
import shared from '../vitest.shared'

// The shared config less its 'import' condition: forced onto CommonJS dependencies
// (express → router → is-promise) it makes require() load their ESM build.
const conditions = ['source', 'module', 'node', 'default']

export default defineConfig({
  ...shared,
  resolve: { ...shared.resolve, conditions },
  ssr: { ...shared.ssr, resolve: { conditions, externalConditions: ['source'] } },
  test: {
    ...shared.test,
    include: ['*.test.ts'],
    // Load and fault tests share 2 cores and real Redis processes: files run one at a time so their
    // figures are not measured against each other's load.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
})
