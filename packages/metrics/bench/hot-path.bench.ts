// The hot path: a kept child's inc()/observe(), and labels() lookups by 1 and 3 values.
// Run: npx vitest bench --run packages/metrics   (from the repo root)
import { bench, describe } from 'vitest'
import { MetricsRegistry } from '../src/index.ts'

const registry = new MetricsRegistry()
const requests = registry.counter('http_requests_total', 'Requests', ['route', 'method', 'status'])
const byRoute = registry.counter('route_hits_total', 'Hits', ['route'])
const duration = registry.histogram('http_request_duration_seconds', 'Duration', ['route'])
const routes = Array.from({ length: 100 }, (_, i) => `route-${i}`)
for (const r of routes) requests.labels(r, 'GET', '200').inc()
const child = requests.labels('route-7', 'GET', '200')
const hist = duration.labels('route-7')
let i = 0

describe('hot path', () => {
  bench('kept CounterChild.inc()', () => {
    child.inc()
  })
  bench('kept HistogramChild.observe()', () => {
    hist.observe((i++ % 1000) / 1000)
  })
  bench('labels(1 value).inc()', () => {
    byRoute.labels(routes[i++ % 100]!).inc()
  })
  bench('labels(3 values).inc()', () => {
    requests.labels(routes[i++ % 100]!, 'GET', '200').inc()
  })
})

describe('exposition', () => {
  const big = new MetricsRegistry()
  const c = big.counter('c_total', 'c', ['a', 'b'])
  const h = big.histogram('h_seconds', 'h', ['a'])
  for (let k = 0; k < 1000; k++) {
    c.labels(`v${k}`, 'x').inc(k)
    h.labels(`v${k % 100}`).observe(k / 1000)
  }
  bench('1000 counter series + 100 histogram series', () => {
    big.exposition()
  })
})
