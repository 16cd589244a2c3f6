import { describe, expect, it } from 'vitest'
import { DEFAULT_LATENCY_BUCKETS, DEFAULT_MAX_SERIES_PER_METRIC, MetricsRegistry } from '../src/index.ts'

describe('registration', () => {
  it('the same name, type and label names returns the same metric', () => {
    const registry = new MetricsRegistry()
    const a = registry.counter('hits_total', 'Hits', ['route'])
    expect(registry.counter('hits_total', 'Hits (help text may differ)', ['route'])).toBe(a)
    const g = registry.gauge('temp', 'Temperature')
    expect(registry.gauge('temp', 'Temperature', [])).toBe(g)
    const h = registry.histogram('size_bytes', 'Size', ['route'], [1, 10, 100])
    expect(registry.histogram('size_bytes', 'Size', ['route'], [1, 10, 100, Infinity])).toBe(h)
    const d = registry.histogram('wait_seconds', 'Wait')
    expect(registry.histogram('wait_seconds', 'Wait', [], DEFAULT_LATENCY_BUCKETS)).toBe(d)
  })

  it('the same name with another type, label names, label order or buckets throws a TypeError', () => {
    const registry = new MetricsRegistry()
    registry.counter('hits_total', 'Hits', ['route', 'status'])
    registry.histogram('size_bytes', 'Size', [], [1, 10])
    registry.gauge('temp', 'Temperature', ['room'])
    expect(() => registry.counter('hits_total', 'Hits', ['route'])).toThrow(TypeError)
    expect(() => registry.counter('hits_total', 'Hits', ['status', 'route'])).toThrow(/already registered as a counter with labels \[route, status\]/)
    expect(() => registry.counter('hits_total', 'Hits')).toThrow(TypeError)
    expect(() => registry.histogram('size_bytes', 'Size', [], [1, 100])).toThrow(/buckets \[1, 10\]/)
    expect(() => registry.histogram('size_bytes', 'Size')).toThrow(TypeError)
    expect(() => registry.histogram('temp', 'Temperature', ['room'])).toThrow(/already registered as a gauge/)
  })

  it('checks metric names: the data model, _total on counters only, no histogram suffixes on gauges', () => {
    const registry = new MetricsRegistry()
    for (const bad of ['', '1st_total', 'with-dash_total', 'space here_total', 'é_total']) expect(() => registry.counter(bad, 'x')).toThrow(RangeError)
    expect(() => registry.counter('requests', 'Requests')).toThrow(/must end in _total/)
    expect(() => registry.gauge('queue_total', 'Queue')).toThrow(/must not end in _total/)
    expect(() => registry.histogram('latency_total', 'Latency')).toThrow(/must not end in _total/)
    for (const suffix of ['_bucket', '_sum', '_count']) expect(() => registry.gauge(`x${suffix}`, 'x')).toThrow(/histogram series/)
    expect(registry.counter('ns:sub_total', 'Colons are allowed').labels().value).toBe(0)
    expect(registry.gauge('_private', 'Leading underscore')).toBeDefined()
  })

  it('checks label names: the data model, no __ prefix, no le or quantile, no duplicates', () => {
    const registry = new MetricsRegistry()
    for (const bad of ['', '1a', 'a-b', 'a:b', '__name', '__']) expect(() => registry.gauge('g', 'g', [bad])).toThrow(RangeError)
    expect(() => registry.histogram('h_seconds', 'h', ['le'])).toThrow(/le is reserved/)
    expect(() => registry.gauge('g', 'g', ['le'])).toThrow(/reserved/)
    expect(() => registry.counter('c_total', 'c', ['quantile'])).toThrow(/reserved/)
    expect(() => registry.gauge('g', 'g', ['a', 'a'])).toThrow(/listed twice/)
    expect(() => registry.gauge('g', 'g', 'route' as unknown as string[])).toThrow(TypeError)
    // A rejected registration leaves nothing behind: the name is still free.
    expect(registry.gauge('g', 'g', ['_a', 'b2'])).toBeDefined()
  })

  it('needs a help text and valid buckets', () => {
    const registry = new MetricsRegistry()
    expect(() => registry.gauge('g', '')).toThrow(/help/)
    expect(() => registry.histogram('h_seconds', 'h', [], [])).toThrow(/at least one finite/)
    expect(() => registry.histogram('h_seconds', 'h', [], [Infinity])).toThrow(/at least one finite/)
    expect(() => registry.histogram('h_seconds', 'h', [], [1, 1])).toThrow(/increase strictly/)
    expect(() => registry.histogram('h_seconds', 'h', [], [2, 1])).toThrow(/increase strictly/)
    expect(() => registry.histogram('h_seconds', 'h', [], [1, Number.NaN])).toThrow(/finite/)
    expect(() => registry.histogram('h_seconds', 'h', [], [-Infinity, 1])).toThrow(/finite/)
    expect(registry.histogram('h_seconds', 'h', [], [-1, 0, 1])).toBeDefined()
  })

  it('puts the prefix before every name and checks the prefixed name', () => {
    const registry = new MetricsRegistry({ prefix: 'switchboard_' })
    registry.counter('http_requests_total', 'Requests').inc()
    expect(registry.snapshot().map((m) => m.name)).toEqual(['switchboard_http_requests_total'])
    expect(registry.exposition()).toContain('\nswitchboard_http_requests_total 1\n')
    // '1x' is no metric name on its own, but 'switchboard_1x_total' is.
    expect(registry.counter('1x_total', 'Digits after the prefix')).toBeDefined()
    expect(() => new MetricsRegistry({ prefix: '9lives_' })).toThrow(RangeError)
    expect(() => new MetricsRegistry({ prefix: 'a-b' })).toThrow(RangeError)
  })

  it('checks maxSeriesPerMetric', () => {
    expect(DEFAULT_MAX_SERIES_PER_METRIC).toBe(2000)
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) expect(() => new MetricsRegistry({ maxSeriesPerMetric: bad })).toThrow(RangeError)
    expect(new MetricsRegistry({ maxSeriesPerMetric: 1 })).toBeDefined()
  })

  it('has the default latency buckets, frozen, from 1 ms to 60 s', () => {
    expect(DEFAULT_LATENCY_BUCKETS).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
    expect(Object.isFrozen(DEFAULT_LATENCY_BUCKETS)).toBe(true)
  })

  it('keeps its own copy of the label names and buckets it was given', () => {
    const registry = new MetricsRegistry()
    const labels = ['route']
    const buckets = [1, 2]
    registry.histogram('h_seconds', 'h', labels, buckets).labels('a').observe(1.5)
    labels.push('status')
    buckets.push(3)
    expect(registry.exposition()).toContain('h_seconds_bucket{route="a",le="2"} 1\nh_seconds_bucket{route="a",le="+Inf"} 1\n')
    expect(registry.histogram('h_seconds', 'h', ['route'], [1, 2])).toBeDefined()
  })
})
