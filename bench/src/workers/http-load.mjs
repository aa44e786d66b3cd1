// The load generator for one HTTP sample: autocannon, a warm-up run, then the measured run.
import autocannon from 'autocannon'
import { reply, workerConfig } from '../lib.mjs'

const { url, connections, warmupSeconds, seconds } = workerConfig()

function load(duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections, duration, pipelining: 1 }, (error, result) =>
      error ? reject(error) : resolve(result),
    )
  })
}

const warm = await load(warmupSeconds)
const run = await load(seconds)
const ok = warm['2xx'] + run['2xx']
reply({
  requestsPerSec: run.requests.average,
  requests: run.requests.total,
  p50: run.latency.p50,
  p99: run.latency.p99,
  ok,
  limited: warm.non2xx + run.non2xx,
  errors: warm.errors + run.errors + warm.timeouts + run.timeouts,
})
