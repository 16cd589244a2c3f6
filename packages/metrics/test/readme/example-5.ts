// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { MetricsRegistry } from '../../src/index.ts'

const registry = new MetricsRegistry({ maxSeriesPerMetric: 2 })
const hits = registry.counter('hits_total', 'Hits by path.', ['path'])
for (const path of ['/a', '/b', '/c', '/d', '/c']) hits.labels(path).inc()

const lines = registry.exposition().split('\n').filter((line) => !line.startsWith('#') && line !== '')
console.log(lines) // [ 'hits_total{path="/a"} 1', 'hits_total{path="/b"} 1', 'hits_total{path="_other"} 3', 'switchboard_metrics_series_dropped_total{metric="hits_total"} 3' ]
