import { type Counter, CounterFamily } from './counter.ts'
import type { Family, FamilyContext, MetricSnapshot, MetricType, Series } from './family.ts'
import { type Gauge, GaugeFamily } from './gauge.ts'
import { DEFAULT_LATENCY_BUCKETS, type Histogram, HistogramFamily } from './histogram.ts'

/**
 * Distinct label sets a metric keeps by default before new ones fold into `_other`.
 * @example const registry = new MetricsRegistry({ maxSeriesPerMetric: DEFAULT_MAX_SERIES_PER_METRIC / 4 })
 */
export const DEFAULT_MAX_SERIES_PER_METRIC = 2000

/**
 * The counter (named with the registry's prefix) that counts label sets folded into `_other`, by `metric`.
 * @example const dropped = registry.snapshot().find((m) => m.name === SERIES_DROPPED_METRIC)
 */
export const SERIES_DROPPED_METRIC = 'switchboard_metrics_series_dropped_total'

/**
 * Options of {@link MetricsRegistry}.
 * @example const registry = new MetricsRegistry({ prefix: 'switchboard_', maxSeriesPerMetric: 500 })
 */
export interface MetricsRegistryOptions {
  /**
   * Distinct label sets a metric keeps; past that, new label sets share one series whose every
   * label value is `_other`, and `switchboard_metrics_series_dropped_total{metric}` counts them.
   * @default 2000
   */
  maxSeriesPerMetric?: number
  /** Put before every metric name (`switchboard_` + `http_requests_total`); must itself be a valid name start. @default '' */
  prefix?: string
}

/**
 * Counters, gauges and histograms, exposed in the Prometheus text format 0.0.4 or as plain JSON.
 * Web-standard only: no `node:` modules, no dependencies.
 * @example
 * const registry = new MetricsRegistry({ prefix: 'switchboard_' })
 * const requests = registry.counter('http_requests_total', 'Requests served', ['route', 'status'])
 * requests.labels('users', '200').inc()
 * const body = registry.exposition() // serve it with Content-Type: registry.contentType
 */
export class MetricsRegistry {
  /** The Content-Type of {@link MetricsRegistry.exposition}'s text. */
  readonly contentType: 'text/plain; version=0.0.4; charset=utf-8' = 'text/plain; version=0.0.4; charset=utf-8'
  readonly #prefix: string
  readonly #ctx: FamilyContext
  readonly #metrics = new Map<string, AnyFamily>()
  readonly #collectors: (() => void)[] = []
  #sorted: AnyFamily[] | undefined
  #dropped: CounterFamily | undefined

  constructor(options: MetricsRegistryOptions = {}) {
    const max = options.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxSeriesPerMetric must be a positive integer, got ${String(max)}`)
    const prefix = options.prefix ?? ''
    if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
      throw new RangeError(`prefix must be empty or match ${METRIC_NAME.source}, got ${JSON.stringify(prefix)}`)
    }
    this.#prefix = prefix
    this.#ctx = { maxSeries: max, onFold: (name) => this.#countFold(name) }
  }

  /**
   * A counter: `name` (after the prefix) must end in `_total`. The same name, type and label names
   * again returns the same counter; anything else under a registered name throws a TypeError.
   * @example const requests = registry.counter('http_requests_total', 'Requests served', ['route', 'status'])
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register('counter', name, help, labelNames, undefined, (full, labels) => new CounterFamily(full, help, labels, this.#ctx))
  }

  /**
   * A gauge. The same name, type and label names again returns the same gauge.
   * @example const inflight = registry.gauge('http_requests_in_flight', 'Requests being served')
   */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register('gauge', name, help, labelNames, undefined, (full, labels) => new GaugeFamily(full, help, labels, this.#ctx))
  }

  /**
   * A histogram over `buckets` (finite, strictly increasing; a trailing `+Inf` may be given and is
   * always added). The same name, type, label names and buckets again returns the same histogram.
   * @example const duration = registry.histogram('http_request_duration_seconds', 'Request time', ['route'])
   */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_LATENCY_BUCKETS): Histogram {
    const bounds = checkBuckets(buckets)
    return this.#register('histogram', name, help, labelNames, bounds, (full, labels) => new HistogramFamily(full, help, labels, bounds, this.#ctx))
  }

  /**
   * Runs `fn` before every exposition and snapshot, in registration order: set gauges from live
   * state there. When collectors throw, the others still run and the exposition throws (the one
   * error, or an AggregateError). Returns a function that removes `fn` again (for reloads).
   * @example registry.onCollect(() => inflight.set(server.connections))
   */
  onCollect(fn: () => void): () => void {
    if (typeof fn !== 'function') throw new TypeError('onCollect() takes a function')
    this.#collectors.push(fn)
    return () => {
      const i = this.#collectors.indexOf(fn)
      if (i !== -1) this.#collectors.splice(i, 1)
    }
  }

  /**
   * Every metric in the Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` lines, then
   * the samples; metrics sorted by name and series by label values, so two calls over the same
   * state give the same text. Escapes label values and HELP text.
   * @example const response = new Response(registry.exposition(), { headers: { 'content-type': registry.contentType } })
   */
  exposition(): string {
    this.#collect()
    let out = ''
    for (const family of this.#families()) out += family.exposition()
    return out
  }

  /**
   * Plain data of every metric and series, in exposition order (for the admin dashboard).
   * @example const p95 = registry.snapshot().find((m) => m.type === 'histogram')?.series[0]?.p95
   */
  snapshot(): MetricSnapshot[] {
    this.#collect()
    return this.#families().map((family) => family.snapshot())
  }

  /**
   * Drops every series of every metric (a metric without labels keeps its one series, at zero).
   * Metrics stay registered; a child kept from before is detached and no longer shows: call
   * `labels()` again.
   * @example registry.reset()
   */
  reset(): void {
    for (const family of this.#metrics.values()) family.reset()
  }

  #register<F extends AnyFamily>(
    type: MetricType,
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] | undefined,
    make: (fullName: string, labelNames: readonly string[]) => F,
  ): F {
    if (typeof name !== 'string') throw new TypeError(`metric names are strings, got ${typeof name}`)
    const full = this.#prefix + name
    if (!Array.isArray(labelNames)) throw new TypeError(`${full}: labelNames must be an array of strings`)
    const existing = this.#metrics.get(full)
    if (existing !== undefined) {
      const sameBuckets = buckets === undefined || (existing instanceof HistogramFamily && sameList(existing.buckets, buckets))
      if (existing.type === type && sameList(existing.labelNames, labelNames) && sameBuckets) return existing as F
      throw new TypeError(`${full} is already registered as a ${describe(existing)}; asked for a ${type} with labels [${labelNames.join(', ')}]${buckets ? ` and buckets [${buckets.join(', ')}]` : ''}`)
    }
    checkName(type, full)
    if (typeof help !== 'string' || help === '') throw new TypeError(`${full}: help must be a non-empty string`)
    const labels = Object.freeze(checkLabelNames(full, labelNames))
    const family = make(full, labels)
    this.#metrics.set(full, family)
    this.#sorted = undefined
    return family
  }

  #families(): AnyFamily[] {
    return (this.#sorted ??= [...this.#metrics.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
  }

  #collect(): void {
    if (this.#collectors.length === 0) return
    const errors: unknown[] = []
    for (const fn of [...this.#collectors]) {
      try {
        fn()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} metrics collectors failed`)
  }

  #countFold(name: string): void {
    const dropped = (this.#dropped ??= this.counter(SERIES_DROPPED_METRIC, 'Label sets folded into the _other series because their metric reached maxSeriesPerMetric.', ['metric']) as CounterFamily)
    // Its own folds (more metrics than maxSeriesPerMetric folding) are not counted: that would recurse.
    if (name !== dropped.name) dropped.labels(name).inc()
  }
}

type AnyFamily = Family<Series> & { readonly type: MetricType }

/** Metric names: the Prometheus data model. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
/** Label names: the data model; `__` names are reserved for Prometheus itself. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function checkName(type: MetricType, full: string): void {
  if (!METRIC_NAME.test(full)) throw new RangeError(`metric name ${JSON.stringify(full)} must match ${METRIC_NAME.source}`)
  // The suffixes promtool's linter reserves: `_total` for counters, `_bucket`/`_sum`/`_count` for
  // histogram (and summary) series, which a gauge of that name would also collide with.
  if (type === 'counter' && !full.endsWith('_total')) throw new RangeError(`counter name ${full} must end in _total`)
  if (type !== 'counter' && full.endsWith('_total')) throw new RangeError(`${type} name ${full} must not end in _total (counters only)`)
  if (type === 'gauge' && /_(bucket|sum|count)$/.test(full)) throw new RangeError(`gauge name ${full} must not end in _bucket, _sum or _count (histogram series)`)
}

function checkLabelNames(full: string, labelNames: readonly string[]): string[] {
  const seen = new Set<string>()
  for (const label of labelNames) {
    if (typeof label !== 'string' || !LABEL_NAME.test(label)) throw new RangeError(`${full}: label name ${JSON.stringify(label)} must match ${LABEL_NAME.source}`)
    if (label.startsWith('__')) throw new RangeError(`${full}: label names starting with __ are reserved (${label})`)
    // `le` is the bucket bound of histograms and `quantile` the rank of summaries, on any metric.
    if (label === 'le' || label === 'quantile') throw new RangeError(`${full}: label name ${label} is reserved`)
    if (seen.has(label)) throw new RangeError(`${full}: label name ${label} is listed twice`)
    seen.add(label)
  }
  return [...labelNames]
}

function checkBuckets(buckets: readonly number[]): readonly number[] {
  if (!Array.isArray(buckets)) throw new TypeError('histogram buckets must be an array of numbers')
  const bounds = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : [...buckets]
  if (bounds.length === 0) throw new RangeError('a histogram needs at least one finite bucket bound')
  bounds.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b)) throw new RangeError(`histogram buckets[${i}] must be a finite number, got ${String(b)}`)
    if (i > 0 && !(b > bounds[i - 1]!)) throw new RangeError(`histogram buckets must increase strictly: buckets[${i}] = ${b} after ${bounds[i - 1]}`)
  })
  return Object.freeze(bounds)
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function describe(family: AnyFamily): string {
  const buckets = family instanceof HistogramFamily ? ` and buckets [${family.buckets.join(', ')}]` : ''
  return `${family.type} with labels [${family.labelNames.join(', ')}]${buckets}`
}
