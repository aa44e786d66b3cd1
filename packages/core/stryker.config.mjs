// Mutation testing of core's pure modules (`pnpm test:mutation` at the root): every mutant Stryker makes of
// the maths must be caught by a test in test/, or be marked in the source as an equivalent with its reason.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'src/algorithm.ts',
    'src/chain.ts',
    'src/policy.ts',
    'src/headers.ts',
    'src/identity.ts',
    'src/duration.ts',
    'src/advance.ts',
    'src/resolve.ts',
    'src/versions.ts',
    'src/breaker.ts',
  ],
  coverageAnalysis: 'perTest',
  // The machine's two cores are shared.
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 95, low: 90, break: 90 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
