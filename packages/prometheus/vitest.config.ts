import { defineConfig } from 'vitest/config'
import shared from '../../vitest.shared'

// The shared config without its 'module' condition: @opentelemetry/api's `module` build is for bundlers
// only (extensionless ESM imports Node cannot load), so Node must get its CommonJS `default`.
const conditions = ['source', 'node', 'default']

export default defineConfig({
  ...shared,
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
})
