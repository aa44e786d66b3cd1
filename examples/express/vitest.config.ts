import { defineConfig } from 'vitest/config'
import shared from '../../vitest.shared'

// The shared config less its 'import' condition: forced onto CommonJS dependencies
// (express → router → is-promise) it makes require() load their ESM build.
const conditions = ['source', 'module', 'node', 'default']

export default defineConfig({
  ...shared,
  resolve: { ...shared.resolve, conditions },
  ssr: { ...shared.ssr, resolve: { conditions, externalConditions: ['source'] } },
})
