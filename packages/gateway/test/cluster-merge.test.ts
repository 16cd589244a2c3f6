// Merging the workers' answers: Prometheus text (checked with promtool where it is installed) and
// the admin API's JSON, the dashboard's /stats included.
import { spawnSync } from 'node:child_process'
import { MetricsRegistry } from '@switchboard/metrics'
import { describe, expect, it } from 'vitest'
import { mergeAdminJson, mergeExpositions, mergeValues } from '../src/cluster/merge.ts'

const HAS_PROMTOOL = spawnSync('sh', ['-c', 'command -v promtool']).status === 0

/** A worker's exposition, written by the real metrics registry. */
function worker(requests: number, latencies: number[], healthy: number, state: 'closed' | 'open', inFlight: number): string {
  const r = new MetricsRegistry()
  r.counter('switchboard_requests_total', 'Requests.', ['route', 'code']).labels('api', '2xx').inc(requests)
  const h = r.histogram('switchboard_request_duration_seconds', 'Duration.', ['route'], [0.01, 0.1, 1])
  for (const s of latencies) h.labels('api').observe(s)
  r.gauge('switchboard_upstream_endpoint_healthy', 'Healthy.', ['upstream', 'endpoint']).labels('a', 'http://x').set(healthy)
  const circuit = r.gauge('switchboard_circuit_state', 'Circuit.', ['endpoint', 'state'])
  for (const s of ['closed', 'open']) circuit.labels('http://x', s).set(s === state ? 1 : 0)
  r.gauge('switchboard_requests_in_flight', 'In flight.').set(inFlight)
  r.gauge('switchboard_uptime_seconds', 'Uptime.').set(requests)
  return r.exposition()
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('mergeExpositions', () => {
  const a = worker(3, [0.005, 0.05, 2], 1, 'closed', 2)
  const b = worker(4, [0.005, 0.5], 0, 'open', 5)
  const merged = mergeExpositions([a, b])

  it('sums counters and histogram buckets, sums and counts', () => {
    expect(value(merged, 'switchboard_requests_total{route="api",code="2xx"}')).toBe(7)
    expect(value(merged, 'switchboard_request_duration_seconds_bucket{route="api",le="0.01"}')).toBe(2)
    expect(value(merged, 'switchboard_request_duration_seconds_bucket{route="api",le="0.1"}')).toBe(3)
    expect(value(merged, 'switchboard_request_duration_seconds_bucket{route="api",le="1"}')).toBe(4)
    expect(value(merged, 'switchboard_request_duration_seconds_bucket{route="api",le="+Inf"}')).toBe(5)
    expect(value(merged, 'switchboard_request_duration_seconds_count{route="api"}')).toBe(5)
    expect(value(merged, 'switchboard_request_duration_seconds_sum{route="api"}')).toBeCloseTo(2.56, 10)
  })

  it('sums amount gauges and takes min/max of state gauges', () => {
    expect(value(merged, 'switchboard_requests_in_flight')).toBe(7)
    expect(value(merged, 'switchboard_upstream_endpoint_healthy{upstream="a",endpoint="http://x"}')).toBe(0)
    expect(value(merged, 'switchboard_circuit_state{endpoint="http://x",state="open"}')).toBe(1)
    expect(value(merged, 'switchboard_circuit_state{endpoint="http://x",state="closed"}')).toBe(1)
    expect(value(merged, 'switchboard_uptime_seconds')).toBe(4)
  })

  it('keeps one HELP and TYPE per family, and series only one worker has', () => {
    expect(merged.match(/# TYPE switchboard_requests_total counter/g)).toHaveLength(1)
    const extra = mergeExpositions([a, '# TYPE only_b_total counter\nonly_b_total{x="a\\"b"} 2\n'])
    expect(value(extra, 'only_b_total{x="a\\"b"}')).toBe(2)
    expect(value(extra, 'switchboard_requests_total{route="api",code="2xx"}')).toBe(3)
  })

  it('matches series whatever the order of their labels', () => {
    const m = mergeExpositions(['# TYPE x_total counter\nx_total{a="1",b="2"} 1\n', '# TYPE x_total counter\nx_total{b="2",a="1"} 2\n'])
    expect(m).toBe('# TYPE x_total counter\nx_total{a="1",b="2"} 3\n')
  })

  it.skipIf(!HAS_PROMTOOL && !process.env.CI)('passes promtool check metrics (promtool comes with scripts/test-deps.sh; skipped locally without it)', () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: merged, encoding: 'utf8' })
    expect(result.stderr + result.stdout).toBe('')
    expect(result.status).toBe(0)
  })
})

describe('mergeAdminJson', () => {
  const latency = (n: number) => ({ count: n, sum: n / 100, buckets: [[0.01, n], [0.1, n], ['+Inf', n]] })
  const stats = (requests: number, healthy: boolean, circuit: string, time: number) => ({
    time,
    uptimeS: time / 1000,
    totals: { requests, errors5xx: 0, inFlight: 1 },
    routes: [{ name: 'api', upstream: 'a', requests, byClass: { '2xx': requests }, latency: latency(requests), p50Ms: 1, p99Ms: 1 }],
    upstreams: [{ name: 'a', healthy: healthy ? 1 : 0, total: 1, saturated: 0, requests, errors5xx: 0, latency: latency(requests), p50Ms: 1, p99Ms: 1, endpoints: [{ url: 'http://x', healthy, circuit, inFlight: 1, latencyEwmaMs: requests }] }],
    recentErrors: [{ time: time, message: `e${requests}` }],
  })

  it('merges /stats for the dashboard: sums, recomputed percentiles, worst health', () => {
    const m = mergeAdminJson('/stats', [
      { id: 1, pid: 10, body: stats(2, true, 'closed', 1000) },
      { id: 2, pid: 11, body: stats(6, false, 'half-open', 2000) },
    ]) as ReturnType<typeof stats> & { workers: number }
    expect(m.workers).toBe(2)
    expect(m.time).toBe(2000)
    expect(m.totals).toEqual({ requests: 8, errors5xx: 0, inFlight: 2 })
    expect(m.routes).toHaveLength(1)
    expect(m.routes[0].requests).toBe(8)
    expect(m.routes[0].latency.buckets).toEqual([[0.01, 8], [0.1, 8], ['+Inf', 8]])
    expect(m.routes[0].p50Ms).toBe(5) // half of 8 in the first bucket, interpolated
    const up = m.upstreams[0]
    expect(up.healthy).toBe(0)
    expect(up.total).toBe(1)
    expect(up.endpoints[0]).toEqual({ url: 'http://x', healthy: false, circuit: 'half-open', inFlight: 2, latencyEwmaMs: 4 })
    expect(m.recentErrors.map((e) => e.message)).toEqual(['e6'])
  })

  it('sums /cache and purge counts, and says how many workers answered', () => {
    expect(mergeAdminJson('/cache', [{ id: 1, pid: 1, body: { cache: { hits: 1, misses: 2 } } }, { id: 2, pid: 2, body: { cache: { hits: 3, misses: 0 } } }])).toEqual({ cache: { hits: 4, misses: 2 }, workers: 2 })
    expect(mergeAdminJson('/cache/purge', [{ id: 1, pid: 1, body: { purged: 2 } }, { id: 2, pid: 2, body: { purged: 1 } }])).toEqual({ purged: 3, workers: 2 })
  })

  it('merges /upstreams per endpoint url, keeping settings', () => {
    const ep = (inFlight: number, healthy: boolean) => ({ id: 'http://x', url: 'http://x', weight: 2, healthy, inFlight, pool: { connected: inFlight, saturated: !healthy } })
    const m = mergeAdminJson('/upstreams', [{ id: 1, pid: 1, body: { upstreams: { a: [ep(1, true)] } } }, { id: 2, pid: 2, body: { upstreams: { a: [ep(3, false)] } } }])
    expect(m).toEqual({ upstreams: { a: [{ id: 'http://x', url: 'http://x', weight: 2, healthy: false, inFlight: 4, pool: { connected: 4, saturated: true } }] }, workers: 2 })
  })

  it('answers config-like endpoints from the first worker and names the ones that differ', () => {
    const same = mergeAdminJson('/routes', [{ id: 1, pid: 1, body: { routes: [{ name: 'a' }] } }, { id: 2, pid: 2, body: { routes: [{ name: 'a' }] } }])
    expect(same).toEqual({ routes: [{ name: 'a' }], workers: 2 })
    const differ = mergeAdminJson('/routes', [{ id: 1, pid: 1, body: { routes: [{ name: 'a' }] } }, { id: 2, pid: 2, body: { routes: [] } }])
    expect(differ).toEqual({ routes: [{ name: 'a' }], differs: [2], workers: 2 })
  })

  it('/usage: rows of the same client, route and model are summed, the others kept', () => {
    const row = (client: string, requests: number, counted = 0) => ({ client, route: 'chat', model: 'llama', requests, promptTokens: 10 * requests, completionTokens: 100 * requests, counted })
    const merged = mergeAdminJson('/usage', [
      { id: 1, pid: 11, body: { usage: [row('a', 1), row('b', 2, 1)] } },
      { id: 2, pid: 12, body: { usage: [row('a', 3, 1)] } },
    ]) as { usage: unknown[]; workers: number }
    expect(merged.workers).toBe(2)
    expect(merged.usage).toEqual([row('a', 4, 1), row('b', 2, 1)])
  })

  it('mergeValues: numbers summed, time maxed, booleans combined', () => {
    expect(mergeValues([{ hits: 1, time: 5, healthy: true, saturated: false }, { hits: 2, time: 7, healthy: false, saturated: true }])).toEqual({ hits: 3, time: 7, healthy: false, saturated: true })
  })
})
