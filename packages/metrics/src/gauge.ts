import { Family, type FamilyContext, type MetricSnapshot, Series } from './family.ts'
import { formatNumber } from './text.ts'

/**
 * One gauge series (a label set): keep it and call `set()` with no lookup at all.
 * @example
 * const open = registry.gauge('upstream_connections', 'Open upstream connections', ['upstream']).labels('backend')
 * open.inc()
 * open.dec()
 */
export interface GaugeChild {
  /** Sets the value (any number, `NaN` and infinities included). */
  set(v: number): void
  /** Adds `n` (may be negative). @default 1 */
  inc(n?: number): void
  /** Subtracts `n`. @default 1 */
  dec(n?: number): void
  /** The current value. */
  readonly value: number
}

/**
 * A value that goes up and down (connections, queue length, healthy endpoints).
 * @example
 * const healthy = registry.gauge('upstream_healthy_endpoints', 'Healthy endpoints', ['upstream'])
 * registry.onCollect(() => {
 *   healthy.clear()
 *   healthy.labels('backend').set(3)
 * })
 */
export interface Gauge {
  /** The series of these label values (one per label name, in order); the wrong count throws a TypeError. */
  labels(...values: string[]): GaugeChild
  /** Sets a gauge without labels (one with labels throws a TypeError: use `labels()`). */
  set(v: number): void
  /** Adds `n` to a gauge without labels. @default 1 */
  inc(n?: number): void
  /** Subtracts `n` from a gauge without labels. @default 1 */
  dec(n?: number): void
  /**
   * Removes every series (before re-setting from live state in `onCollect`). A child kept from
   * before is detached: call `labels()` again. A gauge without labels disappears until set again.
   */
  clear(): void
}

/** A gauge series. */
export class GaugeSeries extends Series implements GaugeChild {
  #value = 0
  /** False only for the single series of a cleared gauge without labels, until it is set again. */
  shown = true

  set(v: number): void {
    if (typeof v !== 'number') throw new TypeError(`gauge set() takes a number, got ${typeof v}`)
    this.#value = v
    this.shown = true
  }

  inc(n = 1): void {
    if (typeof n !== 'number') throw new TypeError(`gauge inc() takes a number, got ${typeof n}`)
    this.#value += n
    this.shown = true
  }

  dec(n = 1): void {
    if (typeof n !== 'number') throw new TypeError(`gauge dec() takes a number, got ${typeof n}`)
    this.#value -= n
    this.shown = true
  }

  get value(): number {
    return this.#value
  }

  zero(shown: boolean): void {
    this.#value = 0
    this.shown = shown
  }
}

/** The gauge metric behind {@link Gauge}. */
export class GaugeFamily extends Family<GaugeSeries> implements Gauge {
  readonly type = 'gauge' as const

  constructor(name: string, help: string, labelNames: readonly string[], ctx: FamilyContext) {
    super(name, help, labelNames, ctx)
    this.single = labelNames.length === 0 ? this.create([], '') : undefined
  }

  set(v: number): void {
    ;(this.single ?? needsLabels(this.name)).set(v)
  }

  inc(n?: number): void {
    ;(this.single ?? needsLabels(this.name)).inc(n)
  }

  dec(n?: number): void {
    ;(this.single ?? needsLabels(this.name)).dec(n)
  }

  clear(): void {
    if (this.single !== undefined) this.single.zero(false)
    else this.dropSeries()
  }

  reset(): void {
    if (this.single !== undefined) this.single.zero(true)
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
    return { name: this.name, type: 'gauge', help: this.help, series: this.list().map((s) => ({ labels: s.labelRecord(this.labelNames), value: s.value })) }
  }

  protected shown(series: GaugeSeries): boolean {
    return series.shown
  }

  protected create(labelValues: readonly string[], key: string): GaugeSeries {
    return new GaugeSeries(key, labelValues)
  }
}

function needsLabels(name: string): never {
  throw new TypeError(`${name} has labels: call labels(...) first`)
}
