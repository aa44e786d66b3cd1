// What the three example APIs share, one concern per module; each main.ts wires these into its framework.
export { type Admin, type BodyReader, createAdmin } from './admin.js'
export { apiReply, debugClock, debugThrow, health } from './api.js'
export {
  BODY_LIMIT,
  badRequest,
  DISCARD_LIMIT,
  discardUnreadBodies,
  errorResult,
  type JsonResult,
  json,
  notFound,
  ProblemError,
  payloadTooLarge,
  problem,
  ROUTES,
  readBody,
  unauthorized,
  unmatchedRoute,
} from './http.js'
export { createExampleLimiter, type ExampleLimiter, ORG_FACTOR, routeLimit } from './limiter.js'
export { createMetrics, type ExampleMetrics } from './metrics.js'
export { loadOpsPage, type OpsPage } from './ops.js'
export type { BucketView, LimitView, OrgView, TierView } from './overview.js'
export { announce, type ExampleConfig, exampleConfig, onShutdown } from './process.js'
export {
  ANONYMOUS_TIER,
  API_KEYS,
  type Caller,
  caller,
  isKnownOrg,
  isPlanTier,
  ORG_TIERS,
  PLAN_TIERS,
  type PlanTier,
  ROUTE_COST,
  usersOf,
} from './tenants.js'
