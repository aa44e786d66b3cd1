import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../vitest.shared'

// Load and fault tests share 2 cores and real Redis processes: files run one at a time so their figures
// are not measured against each other's load.
export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: ['*.test.ts'],
      fileParallelism: false,
      testTimeout: 180_000,
      hookTimeout: 60_000,
    },
  }),
)
