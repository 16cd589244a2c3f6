import { describe, expect, it } from 'vitest'
import { type MetricSnapshot, MetricsRegistry, SERIES_DROPPED_METRIC } from '../src/index.ts'

function series(registry: MetricsRegistry, name: string): MetricSnapshot['series'] {
  return registry.snapshot().find((m) => m.name === name)?.series ?? []
}

describe('cardinality bound', () => {
  it('folds label sets past maxSeriesPerMetric into one _other series and counts the folds', () => {
    const registry = new MetricsRegistry({ maxSeriesPerMetric: 3 })
    const requests = registry.counter('requests_total', 'Requests', ['path', 'status'])
    for (const path of ['/a', '/b', '/c']) requests.labels(path, '200').inc()
    expect(registry.snapshot().map((m) => m.name)).toEqual(['requests_total']) // nothing folded yet, no dropped counter
    const folded = requests.labels('/d', '200')
    folded.inc()
    requests.labels('/e', '404').inc(2)
    expect(requests.labels('/f', '500')).toBe(folded)
    expect(requests.labels('/a', '200').value).toBe(1) // the first three keep their own series
    expect(folded.value).toBe(3)
    expect(series(registry, 'requests_total')).toEqual([
      { labels: { path: '/a', status: '200' }, value: 1 },
      { labels: { path: '/b', status: '200' }, value: 1 },
      { labels: { path: '/c', status: '200' }, value: 1 },
      { labels: { path: '_other', status: '_other' }, value: 3 },
    ])
    expect(series(registry, SERIES_DROPPED_METRIC)).toEqual([{ labels: { metric: 'requests_total' }, value: 3 }])
    expect(registry.exposition()).toContain(
      '# TYPE switchboard_metrics_series_dropped_total counter\nswitchboard_metrics_series_dropped_total{metric="requests_total"} 3\n',
    )
  })

  it('never keeps more than maxSeriesPerMetric + 1 series, whatever the label values', () => {
    const registry = new MetricsRegistry({ maxSeriesPerMetric: 50 })
    const g = registry.gauge('by_client', 'By client', ['client'])
    const h = registry.histogram('by_path_seconds', 'By path', ['path'])
    for (let i = 0; i < 20_000; i++) {
      g.labels(`client-${i}`).set(i)
      h.labels(`/users/${i}`).observe(0.01)
    }
    expect(series(registry, 'by_client')).toHaveLength(51)
    expect(series(registry, 'by_path_seconds')).toHaveLength(51)
    const other = series(registry, 'by_path_seconds').find((s) => s.labels.path === '_other')
    expect(other && 'count' in other ? other.count : 0).toBe(20_000 - 50)
    expect(series(registry, SERIES_DROPPED_METRIC)).toEqual([
      { labels: { metric: 'by_client' }, value: 20_000 - 50 },
      { labels: { metric: 'by_path_seconds' }, value: 20_000 - 50 },
    ])
    expect(registry.exposition().split('\n').filter((l) => l.startsWith('by_client{'))).toHaveLength(51)
  })

  it('asking for _other yourself gives the fold series, and it does not use up a place', () => {
    const registry = new MetricsRegistry({ maxSeriesPerMetric: 1 })
    const c = registry.counter('c_total', 'c', ['k'])
    const other = c.labels('_other')
    other.inc()
    const a = c.labels('a')
    a.inc()
    expect(c.labels('b')).toBe(other)
    expect(series(registry, 'c_total')).toEqual([
      { labels: { k: '_other' }, value: 1 },
      { labels: { k: 'a' }, value: 1 },
    ])
  })

  it('a cleared gauge and a reset registry get their whole budget back', () => {
    const registry = new MetricsRegistry({ maxSeriesPerMetric: 2 })
    const g = registry.gauge('g', 'g', ['k'])
    for (const k of ['a', 'b', 'c']) g.labels(k).set(1)
    g.clear()
    for (const k of ['x', 'y']) g.labels(k).set(2)
    expect(series(registry, 'g').map((s) => s.labels.k)).toEqual(['x', 'y'])
    const c = registry.counter('c_total', 'c', ['k'])
    for (const k of ['a', 'b', 'c']) c.labels(k).inc()
    registry.reset()
    for (const k of ['d', 'e']) c.labels(k).inc()
    expect(series(registry, 'c_total').map((s) => s.labels.k)).toEqual(['d', 'e'])
    expect(series(registry, SERIES_DROPPED_METRIC)).toEqual([]) // its series were dropped too
  })

  it('registers the dropped-series counter with the registry prefix', () => {
    const registry = new MetricsRegistry({ prefix: 'gw_', maxSeriesPerMetric: 1 })
    const c = registry.counter('hits_total', 'Hits', ['k'])
    c.labels('a').inc()
    c.labels('b').inc()
    expect(registry.exposition()).toContain('\ngw_switchboard_metrics_series_dropped_total{metric="gw_hits_total"} 1\n')
  })

  it('the dropped-series counter does not count its own folds (more folding metrics than places)', () => {
    const registry = new MetricsRegistry({ maxSeriesPerMetric: 1 })
    for (const name of ['a_total', 'b_total', 'c_total']) {
      const c = registry.counter(name, name, ['k'])
      c.labels('x').inc()
      c.labels('y').inc()
    }
    expect(series(registry, SERIES_DROPPED_METRIC)).toEqual([
      { labels: { metric: '_other' }, value: 2 },
      { labels: { metric: 'a_total' }, value: 1 },
    ])
  })
})
