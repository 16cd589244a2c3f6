import { Family, type FamilyContext, type MetricSnapshot, Series } from './family.ts'
import { formatNumber } from './text.ts'

/**
 * Latency buckets in seconds, 1 ms to 60 s: 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
 * 0.5, 1, 2.5, 5, 10, 30, 60 (and `+Inf`, which every histogram has).
 * @example const h = registry.histogram('upstream_duration_seconds', 'Upstream time', ['upstream'], DEFAULT_LATENCY_BUCKETS)
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])

/**
 * One histogram series (a label set): keep it and call `observe()` with no lookup at all.
 * @example
 * const users = registry.histogram('http_request_duration_seconds', 'Request time', ['route']).labels('users')
 * users.observe(0.042)
 * const p95 = users.quantile(0.95)
 */
export interface HistogramChild {
  /** Counts `v` in the first bucket whose bound is ≥ `v` (`NaN` lands in `+Inf` and makes the sum `NaN`). */
  observe(v: number): void
  /** How many values were observed. */
  readonly count: number
  /** The sum of the observed values. */
  readonly sum: number
  /**
   * The `q`-quantile (0 ≤ q ≤ 1) estimated from the buckets by linear interpolation inside the
   * bucket that holds it, as PromQL's `histogram_quantile()` does (the first bucket starts at 0;
   * a rank in `+Inf` gives the highest finite bound). `NaN` when nothing was observed; a `q`
   * outside [0, 1] throws a RangeError.
   */
  quantile(q: number): number
}

/**
 * Counts observations (durations, sizes) in fixed buckets; exposed as cumulative `_bucket{le}`
 * series with `_sum` and `_count`.
 * @example
 * const size = registry.histogram('response_size_bytes', 'Response body size', [], [100, 1000, 10_000, 100_000])
 * size.observe(5120)
 */
export interface Histogram {
  /** The series of these label values (one per label name, in order); the wrong count throws a TypeError. */
  labels(...values: string[]): HistogramChild
  /** Observes `v` on a histogram without labels (one with labels throws a TypeError: use `labels()`). */
  observe(v: number): void
}

/** A histogram series: a count per bucket (not cumulative; the last slot is `+Inf`), a count and a sum. */
export class HistogramSeries extends Series implements HistogramChild {
  readonly #bounds: Float64Array
  readonly #counts: Float64Array
  #count = 0
  #sum = 0

  constructor(key: string, labelValues: readonly string[], bounds: Float64Array) {
    super(key, labelValues)
    this.#bounds = bounds
    this.#counts = new Float64Array(bounds.length + 1)
  }

  observe(v: number): void {
    if (typeof v !== 'number') throw new TypeError(`histogram observe() takes a number, got ${typeof v}`)
    const bounds = this.#bounds
    const n = bounds.length
    let i = 0
    // `!(v <= bound)` rather than `v > bound`, so NaN runs past every bound into +Inf.
    if (n <= LINEAR_SCAN_MAX) {
      while (i < n && !(v <= bounds[i]!)) i++
    } else {
      let hi = n
      while (i < hi) {
        const mid = (i + hi) >>> 1
        if (v <= bounds[mid]!) hi = mid
        else i = mid + 1
      }
    }
    this.#counts[i]!++
    this.#count++
    this.#sum += v
  }

  get count(): number {
    return this.#count
  }

  get sum(): number {
    return this.#sum
  }

  quantile(q: number): number {
    if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw new RangeError(`quantile() takes a number from 0 to 1, got ${String(q)}`)
    const total = this.#count
    if (total === 0) return Number.NaN
    const bounds = this.#bounds
    const counts = this.#counts
    const rank = q * total
    let below = 0 // observations in the buckets before bucket i
    for (let i = 0; i < bounds.length; i++) {
      const inBucket = counts[i]!
      // rank 0 (q = 0) belongs to the first non-empty bucket, not to an empty one before it.
      if (inBucket > 0 && below + inBucket >= rank) {
        const upper = bounds[i]!
        if (i === 0 && upper <= 0) return upper // PromQL: no lower bound to interpolate from
        const lower = i === 0 ? 0 : bounds[i - 1]!
        return lower + (upper - lower) * ((rank - below) / inBucket)
      }
      below += inBucket
    }
    return bounds[bounds.length - 1]! // the rank is in +Inf: the highest finite bound is the best estimate
  }

  /** Cumulative counts, one per finite bound then `+Inf` (which equals `count`). */
  cumulative(): number[] {
    const out = new Array<number>(this.#counts.length)
    let running = 0
    for (let i = 0; i < this.#counts.length; i++) out[i] = running += this.#counts[i]!
    return out
  }

  zero(): void {
    this.#counts.fill(0)
    this.#count = 0
    this.#sum = 0
  }
}

/** The histogram metric behind {@link Histogram}. */
export class HistogramFamily extends Family<HistogramSeries> implements Histogram {
  readonly type = 'histogram' as const
  readonly buckets: readonly number[]
  readonly #bounds: Float64Array
  /** `le="0.005"` … `le="+Inf"`, formatted once. */
  readonly #le: readonly string[]

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], ctx: FamilyContext) {
    super(name, help, labelNames, ctx)
    this.buckets = buckets
    this.#bounds = Float64Array.from(buckets)
    this.#le = [...buckets.map((b) => `le="${formatNumber(b)}"`), 'le="+Inf"']
    this.single = labelNames.length === 0 ? this.create([], '') : undefined
  }

  observe(v: number): void {
    ;(this.single ?? needsLabels(this.name)).observe(v)
  }

  reset(): void {
    if (this.single !== undefined) this.single.zero()
    else this.dropSeries()
  }

  exposition(): string {
    let out = this.header()
    const name = this.name
    for (const s of this.list()) {
      const pairs = s.pairs(this.labelNames)
      const open = pairs === '' ? '{' : `{${pairs},`
      const cumulative = s.cumulative()
      for (let i = 0; i < cumulative.length; i++) out += `${name}_bucket${open}${this.#le[i]}} ${formatNumber(cumulative[i]!)}\n`
      const braces = pairs === '' ? '' : `{${pairs}}`
      out += `${name}_sum${braces} ${formatNumber(s.sum)}\n${name}_count${braces} ${formatNumber(s.count)}\n`
    }
    return out
  }

  snapshot(): MetricSnapshot {
    return {
      name: this.name,
      type: 'histogram',
      help: this.help,
      series: this.list().map((s) => {
        const cumulative = s.cumulative()
        return {
          labels: s.labelRecord(this.labelNames),
          count: s.count,
          sum: s.sum,
          buckets: this.buckets.map((le, i): [number, number] => [le, cumulative[i]!]),
          p50: s.quantile(0.5),
          p95: s.quantile(0.95),
          p99: s.quantile(0.99),
        }
      }),
    }
  }

  protected create(labelValues: readonly string[], key: string): HistogramSeries {
    return new HistogramSeries(key, labelValues, this.#bounds)
  }
}

/** Up to this many bounds a linear scan (which stops early on the low buckets most latencies hit) beats bisection. */
const LINEAR_SCAN_MAX = 20

function needsLabels(name: string): never {
  throw new TypeError(`${name} has labels: call labels(...) first`)
}
