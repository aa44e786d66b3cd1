import { registerMetrics } from '@tollgate/prometheus'
import { Registry } from 'prom-client'
import type { ExampleLimiter } from './limiter.js'

/** GET /metrics: the limiter's metrics in Prometheus's text format. */
export interface ExampleMetrics {
  readonly contentType: string
  scrape(): Promise<string>
}

/**
 * The limiter's metrics (@tollgate/prometheus) on a registry of the example's own. Their labels are levels,
 * tiers, outcomes and modes, never a tenant key, so the scrape names no user, org or address.
 */
export function createMetrics({ limiter, memory }: ExampleLimiter): ExampleMetrics {
  const registry = new Registry()
  registerMetrics(limiter, { registry, name: 'example', ...(memory ? { stores: { memory } } : {}) })
  return { contentType: registry.contentType, scrape: () => registry.metrics() }
}
