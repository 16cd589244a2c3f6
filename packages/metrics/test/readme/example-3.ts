// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { MetricsRegistry } from '../../src/index.ts'

const registry = new MetricsRegistry()
const size = registry.histogram('response_size_bytes', 'Response body size.', [], [100, 1000, 10_000])
for (const bytes of [20, 80, 300, 700, 5000, 20_000]) size.observe(bytes)

const child = size.labels()
console.log(child.count, child.sum, child.quantile(0.5)) // 6 26100 550
console.log(registry.exposition().split('\n').slice(2, 6)) // [ 'response_size_bytes_bucket{le="100"} 2', 'response_size_bytes_bucket{le="1000"} 4', 'response_size_bytes_bucket{le="10000"} 5', 'response_size_bytes_bucket{le="+Inf"} 6' ]
