// The subjects of every group and what the orchestrator and the report need to know of them, with no import
// of any limiter: a store that fails to load fails its own samples, not the whole run.
// `semantics` says how many admissions a limit allows over a run: 'bucket' (capacity + rate × time) or
// 'window' (limit per fixed window started at the first hit).

/** In-process limiters. `groups`: 'speed' (decisions/s), 'heap' (bytes per key). */
export const inProcessSubjects = {
  'lru-cache token bucket': { reference: true, semantics: 'bucket', groups: ['speed', 'heap'] },
  tollgate: { semantics: 'bucket', groups: ['speed', 'heap'] },
  // The same limiter asked through checkNow: the Decision without a Promise when the store is in process.
  'tollgate checkNow': { semantics: 'bucket', groups: ['speed'] },
  'tollgate default limiter': { semantics: 'bucket', groups: [] },
  'express-rate-limit MemoryStore': { semantics: 'window', groups: ['speed', 'heap'] },
  'rate-limiter-flexible RateLimiterMemory': { semantics: 'window', groups: ['speed', 'heap'] },
  'limiter TokenBucket': { semantics: 'bucket', groups: ['heap'] },
}

/** Redis limiters. `cluster` marks those also run on the 3-master Cluster. */
export const redisSubjects = {
  'bare EVALSHA': { reference: true, semantics: 'bucket', autoPipelining: false, cluster: true },
  tollgate: { semantics: 'bucket', autoPipelining: false, cluster: true },
  'tollgate, auto-pipelined client': { semantics: 'bucket', autoPipelining: true },
  'rate-limiter-flexible RateLimiterRedis': { semantics: 'window', autoPipelining: false },
  'rate-limit-redis': { semantics: 'window', autoPipelining: false },
}
