// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { MetricsRegistry } from '../../src/index.ts'

const registry = new MetricsRegistry()
const healthy = registry.gauge('upstream_healthy_endpoints', 'Healthy endpoints per upstream.', ['upstream'])
let live = new Map([['backend', 3], ['legacy', 1]])

registry.onCollect(() => {
  healthy.clear()
  for (const [upstream, count] of live) healthy.labels(upstream).set(count)
})

console.log(registry.snapshot()[0]?.series.length) // 2
live = new Map([['backend', 2]])
console.log(registry.snapshot()[0]?.series) // [ { labels: { upstream: 'backend' }, value: 2 } ]
