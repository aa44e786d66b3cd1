import { defineConfig } from 'vitest/config'

/**
 * Stryker runs core's tests in a copy of this package alone (`.stryker-tmp/sandbox-*`), where the repo's
 * shared config is out of reach. Core's tests import only core's sources and external packages, so they
 * need none of its workspace settings (the `source` condition) and none of its reports.
 */
export default defineConfig({ test: { include: ['test/**/*.test.ts'] } })
