import { mergeConfig } from 'vitest/config'
import shared from '../vitest.shared'

// The bench's own instruments (parsers, CPU attribution, bounds, the GCRA reference); no speed is asserted.
export default mergeConfig(shared, { test: { include: ['test/**/*.test.mjs'] } })
