export { redisSuiteStores } from './adapter-harness.js'
export {
  type AdapterApp,
  type AdapterAppFactory,
  type AdapterAppSetup,
  describeAdapterConformance,
  type SuiteLimitOptions,
  type SuiteRequest,
} from './adapter-suite.js'
export { ABNORMAL_USAGE, describeAdapterBlocking } from './adapter-suite-block.js'
export { describeAdapterOptions, type SuiteStore } from './adapter-suite-options.js'
export { describeAdapterRefunds, type RefundSuiteOptions } from './adapter-suite-refund.js'
export { type ManualClock, manualClock } from './clock.js'
export {
  type ConformanceOptions,
  describeStoreConformance,
  eventually,
  type StoreFactory,
  seeded,
} from './conformance/index.js'
export { ModelBucket, type ModelPolicy, type ModelResult } from './model.js'
export { consumeOps, type TestOp } from './ops.js'
export {
  type RedisCluster,
  type RedisServer,
  type RedisServerOptions,
  startRedis,
  startRedisCluster,
} from './redis-server.js'
