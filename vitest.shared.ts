import { defineConfig } from 'vitest/config'

/** Tests run against the TypeScript sources of workspace packages (their `source` export condition). */
const conditions = ['source', 'import', 'module', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['source'] } },
  test: { include: ['test/**/*.test.ts'] },
})
