import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared'

// Tests start real redis-server processes: allow for their start-up.
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 30_000, hookTimeout: 60_000 } }))
