// Tests reach past the public entries to the modules they pin down.

export { summarize } from '../src/decision.js'
export { parseDuration } from '../src/duration.js'
export * from '../src/entries/http.js'
export * from '../src/entries/store.js'
export * from '../src/index.js'
export {
  DEFAULT_POLICY_INPUT,
  isPolicy,
  MAX_CAPACITY,
  policyToInput,
  ratePerSecond,
  windowSeconds,
} from '../src/policy.js'
