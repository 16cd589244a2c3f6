// @switchboard/metrics: Prometheus counters, gauges and histograms with bounded labels, the text
// exposition format and JSON snapshots. Web-standard only.
export { MetricsRegistry, DEFAULT_MAX_SERIES_PER_METRIC, SERIES_DROPPED_METRIC, type MetricsRegistryOptions } from './registry.ts'
export type { Counter, CounterChild } from './counter.ts'
export type { Gauge, GaugeChild } from './gauge.ts'
export { DEFAULT_LATENCY_BUCKETS, type Histogram, type HistogramChild } from './histogram.ts'
export type { MetricSnapshot, MetricType, ValueSeriesSnapshot, HistogramSeriesSnapshot } from './family.ts'
export { parseExposition, ExpositionParseError, type Exposition, type ExpositionSample } from './parse.ts'
