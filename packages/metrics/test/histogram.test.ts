import { describe, expect, it } from 'vitest'
import { DEFAULT_LATENCY_BUCKETS, type HistogramSeriesSnapshot, MetricsRegistry } from '../src/index.ts'

/** Cumulative bucket counts as the exposition writes them: `[le, count]` in line order. */
function bucketLines(registry: MetricsRegistry, name: string): [string, number][] {
  return [...registry.exposition().matchAll(new RegExp(`^${name}_bucket\\{(?:.*,)?le="([^"]+)"\\} (\\S+)$`, 'gm'))].map((m) => [m[1]!, Number(m[2])])
}

/** The same, as `{ le: count }` (for small integer-free cases; integer-like keys reorder in objects). */
function buckets(registry: MetricsRegistry, name: string): Record<string, number> {
  return Object.fromEntries(bucketLines(registry, name))
}

/** Just the cumulative counts, in line order. */
function counts(registry: MetricsRegistry, name: string): number[] {
  return bucketLines(registry, name).map(([, n]) => n)
}

/** A seeded PRNG (mulberry32), so the random cases are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** PromQL's bucketQuantile() (promql/quantile.go), written out independently as the oracle. */
function promqlQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number {
  const all = [...bounds, Infinity]
  const total = cumulative.at(-1)!
  if (total === 0) return Number.NaN
  let rank = q * total
  let b = 0
  while (b < all.length - 1 && !(cumulative[b]! >= rank)) b++ // sort.Search over all but +Inf
  if (b === all.length - 1) return all[all.length - 2]!
  if (b === 0 && all[0]! <= 0) return all[0]!
  let start = 0
  let count = cumulative[b]!
  if (b > 0) {
    start = all[b - 1]!
    count -= cumulative[b - 1]!
    rank -= cumulative[b - 1]!
  }
  return start + (all[b]! - start) * (rank / count)
}

describe('histogram buckets', () => {
  it('counts a value in the first bucket whose bound is >= it, cumulatively, with +Inf, _sum and _count', () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('size_bytes', 'Size', [], [10, 100, 1000])
    for (const v of [-5, 0, 10, 10.000001, 100, 999, 1000, 1001, Infinity]) h.observe(v)
    expect(buckets(registry, 'size_bytes')).toEqual({ '10': 3, '100': 5, '1000': 7, '+Inf': 9 })
    const child = h.labels()
    expect(child.count).toBe(9)
    expect(child.sum).toBe(Infinity)
    expect(registry.exposition()).toContain('size_bytes_sum +Inf\nsize_bytes_count 9\n')
  })

  it('puts NaN in +Inf (and the sum becomes NaN), like the Go client', () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('h_seconds', 'h', [], [1])
    h.observe(0.5)
    h.observe(Number.NaN)
    expect(buckets(registry, 'h_seconds')).toEqual({ '1': 1, '+Inf': 2 })
    expect(h.labels().sum).toBeNaN()
    expect(() => h.observe('1' as unknown as number)).toThrow(TypeError)
    expect(h.labels().count).toBe(2)
  })

  it('bisects long bucket lists and lands every value where a linear scan does', () => {
    const bounds = Array.from({ length: 64 }, (_, i) => (i - 8) * 0.25) // -2 … 13.75: more than the linear-scan limit
    const registry = new MetricsRegistry()
    const h = registry.histogram('wide', 'Wide', [], bounds)
    const expected = new Array<number>(bounds.length + 1).fill(0)
    const rand = seeded(7)
    const values = [...bounds, -3, 20, ...Array.from({ length: 5000 }, () => rand() * 18 - 3)]
    for (const v of values) {
      h.observe(v)
      let i = 0
      while (i < bounds.length && v > bounds[i]!) i++
      expected[i]!++
    }
    let running = 0
    const cumulative = expected.map((n) => (running += n))
    expect(counts(registry, 'wide')).toEqual(cumulative)
    expect(bucketLines(registry, 'wide').map(([le]) => le)).toEqual([...bounds.map(String), '+Inf'])
  })

  it('a histogram without labels shows zeroed buckets at once; one with labels shows no series until used', () => {
    const registry = new MetricsRegistry()
    registry.histogram('plain_seconds', 'Plain', [], [0.5])
    registry.histogram('labeled_seconds', 'Labeled', ['route'], [0.5])
    expect(registry.exposition()).toBe(
      '# HELP labeled_seconds Labeled\n# TYPE labeled_seconds histogram\n' +
        '# HELP plain_seconds Plain\n# TYPE plain_seconds histogram\n' +
        'plain_seconds_bucket{le="0.5"} 0\nplain_seconds_bucket{le="+Inf"} 0\nplain_seconds_sum 0\nplain_seconds_count 0\n',
    )
  })

  it('observe() on a labeled histogram throws; labels() checks the count', () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('h_seconds', 'h', ['route'])
    expect(() => h.observe(1)).toThrow(TypeError)
    expect(() => h.labels()).toThrow(TypeError)
  })
})

describe('histogram quantiles', () => {
  it('is NaN when empty and rejects q outside [0, 1]', () => {
    const child = new MetricsRegistry().histogram('h_seconds', 'h').labels()
    expect(child.quantile(0.5)).toBeNaN()
    child.observe(0.2)
    for (const bad of [-0.01, 1.01, Number.NaN]) expect(() => child.quantile(bad)).toThrow(RangeError)
  })

  it('recovers the quantiles of a uniform distribution exactly', () => {
    const bounds = Array.from({ length: 10 }, (_, i) => (i + 1) / 10)
    const child = new MetricsRegistry().histogram('u', 'Uniform', [], bounds).labels()
    for (let i = 1; i <= 10_000; i++) child.observe(i / 10_000)
    expect(child.quantile(0.5)).toBeCloseTo(0.5, 12)
    expect(child.quantile(0.95)).toBeCloseTo(0.95, 12)
    expect(child.quantile(0.99)).toBeCloseTo(0.99, 12)
    expect(child.quantile(0.25)).toBeCloseTo(0.25, 12)
    expect(child.quantile(1)).toBe(1)
  })

  it('estimates an exponential distribution as interpolation over its true bucket counts', () => {
    // 100k latencies with mean 100 ms drawn by the inverse CDF at evenly spaced probabilities.
    const mean = 0.1
    const n = 100_000
    const registry = new MetricsRegistry()
    const child = registry.histogram('latency_seconds', 'Latency').labels()
    for (let i = 0; i < n; i++) child.observe(-Math.log(1 - (i + 0.5) / n) * mean)
    const cdf = (x: number): number => 1 - Math.exp(-x / mean)
    for (const q of [0.5, 0.9, 0.95, 0.99]) {
      const truth = -Math.log(1 - q) * mean
      const upperIndex = DEFAULT_LATENCY_BUCKETS.findIndex((b) => b >= truth)
      const upper = DEFAULT_LATENCY_BUCKETS[upperIndex]!
      const lower = upperIndex === 0 ? 0 : DEFAULT_LATENCY_BUCKETS[upperIndex - 1]!
      const expected = lower + (upper - lower) * ((q - cdf(lower)) / (cdf(upper) - cdf(lower)))
      const estimate = child.quantile(q)
      expect(estimate).toBeGreaterThanOrEqual(lower)
      expect(estimate).toBeLessThanOrEqual(upper)
      expect(estimate).toBeCloseTo(expected, 3)
    }
    // p50 of an exponential with mean 0.1 is 0.0693; its bucket (0.05, 0.1] bounds the error.
    expect(Math.abs(child.quantile(0.5) - 0.0693)).toBeLessThan(0.05)
  })

  it('agrees with PromQL histogram_quantile() on random data, edges included', () => {
    const rand = seeded(42)
    for (let round = 0; round < 50; round++) {
      const bounds = round % 5 === 0 ? [-1, 0, 1, 2] : DEFAULT_LATENCY_BUCKETS
      const registry = new MetricsRegistry()
      const child = registry.histogram('r', 'Random', [], bounds).labels()
      const size = 1 + Math.floor(rand() * 300)
      for (let i = 0; i < size; i++) child.observe(rand() < 0.05 ? 100 : rand() ** 3 * (round % 5 === 0 ? 4 : 3) - (round % 5 === 0 ? 2 : 0))
      const cumulative = counts(registry, 'r')
      for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]) {
        expect(child.quantile(q)).toBeCloseTo(promqlQuantile(q, bounds, cumulative), 12)
      }
    }
  })

  it('handles the corners: a rank in +Inf, q = 0, empty leading buckets, a non-positive first bound', () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('c', 'Corners', ['case'], [1, 2, 4])
    const inf = h.labels('inf')
    inf.observe(10)
    expect(inf.quantile(0.5)).toBe(4) // beyond the last bound: the highest finite bound
    const gap = h.labels('gap')
    gap.observe(3)
    gap.observe(3)
    expect(gap.quantile(0)).toBe(2) // q = 0: the lower edge of the first non-empty bucket, not NaN
    expect(gap.quantile(0.5)).toBe(3)
    expect(gap.quantile(1)).toBe(4)
    const negative = registry.histogram('n', 'Negative', [], [-1, 0, 1]).labels()
    negative.observe(-5)
    expect(negative.quantile(0.5)).toBe(-1) // PromQL: no lower bound to interpolate from
    const one = h.labels('one')
    one.observe(1.5)
    expect(one.quantile(0.5)).toBe(1.5) // half-way through (1, 2]
  })

  it('snapshot() carries count, sum, finite cumulative buckets and p50/p95/p99', () => {
    const registry = new MetricsRegistry()
    const h = registry.histogram('d_seconds', 'D', ['route'], [0.1, 0.2, 0.4])
    for (let i = 1; i <= 100; i++) h.labels('a').observe(i / 250) // 0.004 … 0.4
    const [metric] = registry.snapshot()
    expect(metric!.type).toBe('histogram')
    const series = metric!.series[0] as HistogramSeriesSnapshot
    expect(series.labels).toEqual({ route: 'a' })
    expect(series.count).toBe(100)
    expect(series.sum).toBeCloseTo(20.2, 10)
    expect(series.buckets).toEqual([
      [0.1, 25],
      [0.2, 50],
      [0.4, 100],
    ])
    expect(series.p50).toBeCloseTo(0.2, 12)
    expect(series.p95).toBeCloseTo(0.38, 12)
    expect(series.p99).toBeCloseTo(0.396, 12)
    expect(JSON.parse(JSON.stringify(registry.snapshot()))).toEqual(registry.snapshot())
  })
})
