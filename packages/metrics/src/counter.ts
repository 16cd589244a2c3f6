import { Family, type FamilyContext, type MetricSnapshot, Series } from './family.ts'
import { formatNumber } from './text.ts'

/**
 * One counter series (a label set): keep it and call `inc()` with no lookup at all.
 * @example
 * const served = registry.counter('http_requests_total', 'Requests served', ['route']).labels('users')
 * served.inc()
 */
export interface CounterChild {
  /** Adds `n` (a non-negative number; a negative or NaN one throws a RangeError). @default 1 */
  inc(n?: number): void
  /** The running total. */
  readonly value: number
}

/**
 * A value that only goes up (requests, bytes, errors); its name ends in `_total`.
 * @example
 * const errors = registry.counter('upstream_errors_total', 'Upstream failures', ['upstream', 'kind'])
 * errors.labels('backend', 'timeout').inc()
 */
export interface Counter {
  /** The series of these label values (one per label name, in order); the wrong count throws a TypeError. */
  labels(...values: string[]): CounterChild
  /** Adds `n` to a counter without labels (one with labels throws a TypeError: use `labels()`). @default 1 */
  inc(n?: number): void
}

/** A counter series. */
export class CounterSeries extends Series implements CounterChild {
  #value = 0

  inc(n = 1): void {
    if (typeof n !== 'number' || !(n >= 0)) throw new RangeError(`a counter only goes up: inc() takes a non-negative number, got ${String(n)}`)
    this.#value += n
  }

  get value(): number {
    return this.#value
  }

  zero(): void {
    this.#value = 0
  }
}

/** The counter metric behind {@link Counter}. */
export class CounterFamily extends Family<CounterSeries> implements Counter {
  readonly type = 'counter' as const

  constructor(name: string, help: string, labelNames: readonly string[], ctx: FamilyContext) {
    super(name, help, labelNames, ctx)
    this.single = labelNames.length === 0 ? this.create([], '') : undefined
  }

  inc(n?: number): void {
    ;(this.single ?? needsLabels(this.name)).inc(n)
  }

  reset(): void {
    if (this.single !== undefined) this.single.zero()
    else this.dropSeries()
  }

  exposition(): string {
    let out = this.header()
    for (const s of this.list()) {
      const pairs = s.pairs(this.labelNames)
      out += `${this.name}${pairs === '' ? '' : `{${pairs}}`} ${formatNumber(s.value)}\n`
    }
    return out
  }

  snapshot(): MetricSnapshot {
    return { name: this.name, type: 'counter', help: this.help, series: this.list().map((s) => ({ labels: s.labelRecord(this.labelNames), value: s.value })) }
  }

  protected create(labelValues: readonly string[], key: string): CounterSeries {
    return new CounterSeries(key, labelValues)
  }
}

function needsLabels(name: string): never {
  throw new TypeError(`${name} has labels: call labels(...) first`)
}
