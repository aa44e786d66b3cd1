// An app server that decides on request: reads {"cost":n} lines on stdin, answers each with the decision.
// argv[2]: { url, prefix, levels, policies, subject }
import { createInterface } from 'node:readline'
import { createLimiter } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { Redis } from 'ioredis'

const config = JSON.parse(process.argv[2])
const client = new Redis(config.url, {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  lazyConnect: true,
})
client.on('error', () => {})
await client.connect()
const store = redisStore({ client, prefix: config.prefix, timeoutMs: 2000 })
const limiter = createLimiter({
  store,
  levels: config.levels,
  policies: config.policies,
  onStoreError: 'closed',
})
process.stdout.write(`${JSON.stringify({ ready: true, dateNow: Date.now() })}\n`)
const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  const { cost } = JSON.parse(line)
  const d = await limiter.check(config.subject, { cost })
  process.stdout.write(
    `${JSON.stringify({ allowed: d.allowed, degraded: d.degraded ?? null, now: d.now, levels: d.levels.map((l) => [l.remaining, l.retryAfterMs, l.resetAfterMs]) })}\n`,
  )
}
await limiter.close()
await store.close?.()
client.disconnect()
