// @tollgate/core/store: what store authors need: the Store contract, the algorithm's steps, the policy book
// and its resolution, and the in-process store to build on.
export { advance } from '../advance.js'
export {
  type Assessment,
  type AssessmentScratch,
  assess,
  assessDebt,
  assessDebtInto,
  assessInto,
  type BucketResult,
  type BucketState,
  convertDebt,
  decide,
  newAssessment,
  newLevelResult,
  sameScale,
  settle,
  settleInto,
  stateFromDebt,
  stateTtlMs,
} from '../algorithm.js'
export {
  type BlockRule,
  blockedDebt,
  blockRefusals,
  countsAsRefusal,
  noteRefusal,
  type RefusalLog,
  type RefusalLogs,
} from '../block.js'
export { makeBook, type PolicyBook } from '../book.js'
// The in-process store's table of states, which a store built on InProcessStore reads (export, import).
export type { BucketTable, LevelTable, Scale } from '../bucket-table.js'
export { type ChainEntry, type ChainOutcome, evaluateChain } from '../chain.js'
export { describeValue, ErrorCode, invalid, TollgateError } from '../errors.js'
export { bucketId, namespacedId, splitBucketId, splitNamespacedId } from '../ids.js'
export {
  type Clock,
  InProcessRegistry,
  InProcessStore,
  type InProcessStoreOptions,
  isExpired,
  monotonicClock,
  type NamespacedTierEntry,
} from '../in-process.js'
export type { KeyIndex } from '../key-index.js'
export { DEFAULT_LIMITER_NAME } from '../names.js'
export { normalizePolicy, type Policy, policyFromId, policyToInput } from '../policy.js'
export {
  changeMoments,
  latestChange,
  policyAt,
  type ResolvedPolicy,
  type TenantEntries,
  tierAt,
} from '../resolve.js'
/** The Store contract: what a store implements and what the limiter hands it. */
export type * from '../store.js'
export {
  appendVersion,
  latest,
  latestSince,
  MAX_VERSIONS,
  type Version,
  type Versions,
  valueAt,
} from '../versions.js'
