import { defineConfig } from 'vitest/config'
import shared from '../vitest.shared'

// The shared config without its 'module' condition: the blocks import @opentelemetry/api (through
// prom-client and @tollgate/otel), whose `module` build is for bundlers only.
const conditions = ['source', 'node', 'default']

export default defineConfig({
  ...shared,
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
})
