import { describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../src/index.ts'

describe('exposition', () => {
  it('writes HELP, TYPE and samples of every type, metrics sorted by name', () => {
    const registry = new MetricsRegistry()
    const requests = registry.counter('http_requests_total', 'Requests served.', ['route', 'status'])
    registry.gauge('in_flight', 'Requests in flight.').set(2)
    const duration = registry.histogram('duration_seconds', 'Request time.', ['route'], [0.1, 1])
    requests.labels('users', '200').inc(3)
    requests.labels('orders', '503').inc()
    duration.labels('users').observe(0.05)
    duration.labels('users').observe(0.5)
    duration.labels('users').observe(7)
    expect(registry.exposition()).toBe(
      [
        '# HELP duration_seconds Request time.',
        '# TYPE duration_seconds histogram',
        'duration_seconds_bucket{route="users",le="0.1"} 1',
        'duration_seconds_bucket{route="users",le="1"} 2',
        'duration_seconds_bucket{route="users",le="+Inf"} 3',
        'duration_seconds_sum{route="users"} 7.55',
        'duration_seconds_count{route="users"} 3',
        '# HELP http_requests_total Requests served.',
        '# TYPE http_requests_total counter',
        'http_requests_total{route="orders",status="503"} 1',
        'http_requests_total{route="users",status="200"} 3',
        '# HELP in_flight Requests in flight.',
        '# TYPE in_flight gauge',
        'in_flight 2',
        '',
      ].join('\n'),
    )
    expect(registry.contentType).toBe('text/plain; version=0.0.4; charset=utf-8')
  })

  it('is empty for an empty registry', () => {
    expect(new MetricsRegistry().exposition()).toBe('')
  })

  it('gives the same text whatever order metrics and series came in', () => {
    const build = (order: readonly number[]): string => {
      const registry = new MetricsRegistry()
      const names = ['b_total', 'a_total', 'c_total', 'a_b_total']
      for (const i of order) {
        const c = registry.counter(names[i]!, `help ${i}`, ['x', 'y'])
        for (const j of order) c.labels(`v${j}`, j % 2 === 0 ? 'even' : 'odd').inc(i + j)
        c.labels('v1', 'a').inc()
        c.labels('v', 'z').inc()
      }
      return registry.exposition()
    }
    const text = build([0, 1, 2, 3])
    expect(build([3, 1, 0, 2])).toBe(text)
    expect(build([2, 3, 1, 0])).toBe(text)
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1])
    expect(names).toEqual(['a_b_total', 'a_total', 'b_total', 'c_total'])
    // Series sort by label values in order: x first, then y ('v' before 'v0', 'v1' before 'v1' + 'odd').
    const series = [...text.matchAll(/^a_total\{(.*)\}/gm)].map((m) => m[1])
    expect(series).toEqual(['x="v",y="z"', 'x="v0",y="even"', 'x="v1",y="a"', 'x="v1",y="odd"', 'x="v2",y="even"', 'x="v3",y="odd"'])
  })

  it('escapes backslash, double quote and line feed in label values, and backslash and line feed in HELP', () => {
    const registry = new MetricsRegistry()
    registry.gauge('g', 'Say "hi"\\n\nthen stop').labels()
    const c = registry.counter('paths_total', 'Paths', ['path'])
    c.labels('C:\\dir\\"quoted"\nnext line').inc()
    c.labels('tab\there, cr\rhere, ünïcødé, {braces}=,').inc()
    const text = registry.exposition()
    expect(text).toContain('# HELP g Say "hi"\\\\n\\nthen stop\n')
    expect(text).toContain('paths_total{path="C:\\\\dir\\\\\\"quoted\\"\\nnext line"} 1\n')
    expect(text).toContain('paths_total{path="tab\there, cr\rhere, ünïcødé, {braces}=,"} 1\n')
    expect(text.split('\n').filter((l) => l.startsWith('paths_total'))).toHaveLength(2) // no raw line feed got through
  })

  it('formats numbers as Prometheus does', () => {
    const registry = new MetricsRegistry()
    const g = registry.gauge('value', 'Values', ['case'])
    const cases: [string, number, string][] = [
      ['zero', 0, '0'],
      ['negative_zero', -0, '0'],
      ['integer', 42, '42'],
      ['negative', -17, '-17'],
      ['big_integer', 123456789012345, '123456789012345'],
      ['max_safe', Number.MAX_SAFE_INTEGER, '9007199254740991'],
      ['fraction', 0.1, '0.1'],
      ['third', 1 / 3, '0.3333333333333333'],
      ['tiny', 1e-7, '1e-7'],
      ['huge', 1e21, '1e+21'],
      ['nan', Number.NaN, 'NaN'],
      ['inf', Infinity, '+Inf'],
      ['minus_inf', -Infinity, '-Inf'],
    ]
    for (const [name, v] of cases) g.labels(name).set(v)
    const text = registry.exposition()
    for (const [name, v, expected] of cases) {
      expect(text).toContain(`value{case="${name}"} ${expected}\n`)
      // Every form parses back to the same number (Go's ParseFloat reads the same forms).
      const back = expected === '+Inf' ? Infinity : expected === '-Inf' ? -Infinity : Number(expected)
      expect(Object.is(back, v) || (v === 0 && back === 0)).toBe(true)
    }
  })
})
