// The part every metric type shares: label-value lookup, the cardinality bound, stable ordering.
// Internal: not re-exported from index.ts.
import { escapeHelp, escapeLabelValue } from './text.ts'

/**
 * The metric types the registry makes.
 * @example const histograms = registry.snapshot().filter((m) => m.type === ('histogram' satisfies MetricType))
 */
export type MetricType = 'counter' | 'gauge' | 'histogram'

/**
 * One counter or gauge series in a {@link MetricSnapshot}.
 * @example const s: ValueSeriesSnapshot = { labels: { route: 'users' }, value: 3 }
 */
export interface ValueSeriesSnapshot {
  labels: Record<string, string>
  value: number
}

/**
 * One histogram series in a {@link MetricSnapshot}: `buckets` holds `[le, cumulative count]` for
 * every finite bound (the `+Inf` bucket is `count`); quantiles are bucket estimates, `NaN` when empty.
 * @example const s: HistogramSeriesSnapshot = { labels: {}, count: 0, sum: 0, buckets: [[0.1, 0]], p50: NaN, p95: NaN, p99: NaN }
 */
export interface HistogramSeriesSnapshot {
  labels: Record<string, string>
  count: number
  sum: number
  buckets: [le: number, cumulative: number][]
  p50: number
  p95: number
  p99: number
}

/**
 * Plain data of one metric and all its series, as `MetricsRegistry.snapshot()` returns it.
 * `NaN` and infinite values stay numbers here; `JSON.stringify` writes them as `null`.
 * @example const m: MetricSnapshot = { name: 'up', type: 'gauge', help: 'Is it up', series: [{ labels: {}, value: 1 }] }
 */
export type MetricSnapshot =
  | { name: string; type: 'counter' | 'gauge'; help: string; series: ValueSeriesSnapshot[] }
  | { name: string; type: 'histogram'; help: string; series: HistogramSeriesSnapshot[] }

/** Label value that every label of the fold series carries once a metric is out of series. */
export const OTHER = '_other'

/** What a family needs from its registry. */
export interface FamilyContext {
  /** Distinct label sets kept per metric; later ones fold into the `_other` series. */
  maxSeries: number
  /** Called once per `labels()` call that got folded, with the metric's full name. */
  onFold: (name: string) => void
}

/** One series of a family: its label values, its lookup key and its cached label text. */
export abstract class Series {
  readonly key: string
  readonly labelValues: readonly string[]
  #pairs: string | undefined

  constructor(key: string, labelValues: readonly string[]) {
    this.key = key
    this.labelValues = labelValues
  }

  /** `a="x",b="y"` (escaped), built at the first exposition and kept: the values never change. */
  pairs(labelNames: readonly string[]): string {
    if (this.#pairs !== undefined) return this.#pairs
    let text = ''
    for (let i = 0; i < labelNames.length; i++) text += `${i === 0 ? '' : ','}${labelNames[i]}="${escapeLabelValue(this.labelValues[i]!)}"`
    return (this.#pairs = text)
  }

  /** `{ name: value }` of this series, for snapshots. */
  labelRecord(labelNames: readonly string[]): Record<string, string> {
    const record: Record<string, string> = {}
    for (let i = 0; i < labelNames.length; i++) record[labelNames[i]!] = this.labelValues[i]!
    return record
  }
}

/** A metric: its name, help and label names, and its series by label values. */
export abstract class Family<S extends Series> {
  abstract readonly type: MetricType
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** The one series of a metric without labels (set by the subclass constructor); undefined with labels. */
  protected single: S | undefined
  readonly #ctx: FamilyContext
  readonly #series = new Map<string, S>()
  readonly #otherKey: string
  #distinct = 0
  #sorted: S[] | undefined

  constructor(name: string, help: string, labelNames: readonly string[], ctx: FamilyContext) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
    this.#ctx = ctx
    this.#otherKey = joinKey(labelNames.map(() => OTHER))
  }

  /** Makes the series for these label values (`[]` and key `''` for the single series). */
  protected abstract create(labelValues: readonly string[], key: string): S

  /** Drops every series (a metric without labels keeps its single series, back at zero). */
  abstract reset(): void

  /** The `# HELP`, `# TYPE` and sample lines of this metric, each ending in a line feed. */
  abstract exposition(): string

  /** Plain data of this metric and its series, in exposition order. */
  abstract snapshot(): MetricSnapshot

  /**
   * The series for these label values, created on first use. Past `maxSeries` distinct label sets
   * a new set gets the shared `_other` series instead (and the registry counts the fold).
   */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(`${this.name}: labels() takes ${this.labelNames.length} value(s) (${this.labelNames.join(', ') || 'none'}), got ${values.length}`)
    }
    if (this.single !== undefined) return this.single
    const key = keyOf(values, this.name)
    return this.#series.get(key) ?? this.#add(key, values)
  }

  /** The series to show, sorted by label values (the sort is kept until a series comes or goes). */
  protected list(): readonly S[] {
    if (this.single !== undefined) return this.shown(this.single) ? [this.single] : []
    return (this.#sorted ??= [...this.#series.values()].sort(byKey))
  }

  /** Whether a series appears in expositions and snapshots; only a cleared unlabeled gauge hides. */
  protected shown(_series: S): boolean {
    return true
  }

  /** Forgets every labeled series; callers that kept one keep a detached object nobody reads. */
  protected dropSeries(): void {
    this.#series.clear()
    this.#distinct = 0
    this.#sorted = undefined
  }

  /** `# HELP` and `# TYPE` lines. */
  protected header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`
  }

  #add(key: string, values: readonly string[]): S {
    if (key !== this.#otherKey) {
      if (this.#distinct >= this.#ctx.maxSeries) return this.#fold()
      this.#distinct++
    }
    const series = this.create(values, key)
    this.#series.set(key, series)
    this.#sorted = undefined
    return series
  }

  #fold(): S {
    this.#ctx.onFold(this.name)
    return this.#series.get(this.#otherKey) ?? this.#add(this.#otherKey, this.labelNames.map(() => OTHER))
  }
}

const SEPARATOR = '\u0001'
const ESCAPE = '\u0002'

/**
 * The lookup key of a label set: the values joined with U+0001. A value holding U+0001 or U+0002
 * has them escaped first (U+0002 U+0002 and U+0002 U+0003), so the separator never appears inside
 * a value and two different label sets never share a key.
 */
function keyOf(values: readonly string[], name: string): string {
  if (values.length === 1) {
    const v = values[0]
    if (typeof v !== 'string') throw new TypeError(`${name}: label values must be strings, got ${typeof v}`)
    return v // one value: no separator, nothing to escape
  }
  let plain = true
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v !== 'string') throw new TypeError(`${name}: label values must be strings, got ${typeof v}`)
    if (plain && (v.includes(SEPARATOR) || v.includes(ESCAPE))) plain = false
  }
  // measured: join() beats building the key with += in a loop
  return plain ? values.join(SEPARATOR) : values.map(escapeKeyPart).join(SEPARATOR)
}

function joinKey(values: readonly string[]): string {
  return values.length === 1 ? values[0]! : values.map(escapeKeyPart).join(SEPARATOR)
}

function escapeKeyPart(v: string): string {
  if (!v.includes(SEPARATOR) && !v.includes(ESCAPE)) return v
  return v.replaceAll(ESCAPE, ESCAPE + ESCAPE).replaceAll(SEPARATOR, `${ESCAPE}\u0003`)
}

function byKey(a: Series, b: Series): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}
