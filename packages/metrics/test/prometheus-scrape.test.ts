import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HistogramChild, MetricsRegistry } from '../src/index.ts'
import { findBinary, NASTY_VALUES, realisticRegistry, type RunningPrometheus, sleep, startPrometheus } from './fixtures.ts'

// A real Prometheus (Debian's package, the same one that brings promtool) scrapes a node:http
// server serving our exposition; its HTTP API then says what it understood. Under CI
// (process.env.CI) a missing binary makes these tests fail: scripts/test-deps.sh installs it.
const skip = !process.env.CI && findBinary('prometheus') === undefined

describe.skipIf(skip)('a real Prometheus scraping the exposition', { timeout: 60_000 }, () => { // skipped only when prometheus is not installed locally: bash scripts/test-deps.sh
  let registry: MetricsRegistry
  let server: Server
  let prometheus: RunningPrometheus | undefined
  let scrapes = 0
  let setupError: unknown
  /** The running server; rethrows a setup failure in every test, so each one counts as failed. */
  const prom = (): RunningPrometheus => {
    if (setupError !== undefined || prometheus === undefined) throw setupError ?? new Error('prometheus did not start')
    return prometheus
  }

  beforeAll(async () => {
    try {
      await setup()
    } catch (err) {
      setupError = err
    }
  }, 60_000)

  async function setup(): Promise<void> {
    registry = realisticRegistry()
    server = createServer((req, res) => {
      scrapes++
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(registry.exposition())
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    prometheus = await startPrometheus((server.address() as AddressInfo).port)
    // Wait (bounded by tries, not by time) until a scrape has been committed: `up` is appended in
    // the same commit as the scraped samples.
    for (let i = 0; ; i++) {
      if ((await prometheus.query('up{job="gateway"}')).length === 1) break
      if (i >= 300) throw new Error(`no scrape after 300 tries: ${JSON.stringify(await prometheus.targets())}`)
      await sleep(100)
    }
  }

  afterAll(async () => {
    await prometheus?.stop()
    await new Promise((resolve) => server?.close(resolve))
  })

  it('scrapes the target without an error', async () => {
    expect(await prom().targets()).toMatchObject([{ health: 'up', lastError: '' }])
    expect(scrapes).toBeGreaterThan(0)
    const up = await prom().query('up{job="gateway"}')
    expect(up.map((r) => r.value[1])).toEqual(['1'])
  })

  it('ingests every sample of the exposition', async () => {
    const samples = registry.exposition().split('\n').filter((l) => l !== '' && !l.startsWith('#')).length
    const scraped = await prom().query('scrape_samples_scraped{job="gateway"}')
    expect(scraped.map((r) => Number(r.value[1]))).toEqual([samples])
  })

  it('reads back escaped label values exactly as they were given', async () => {
    const result = await prom().query('switchboard_upstream_errors_total')
    // An empty label value is the same as no label in Prometheus: that series has no `upstream`.
    expect(result.map((r) => r.metric.upstream ?? '').sort()).toEqual([...NASTY_VALUES].sort())
    expect(result.every((r) => r.value[1] === '2' && r.metric.kind === 'timeout')).toBe(true)
  })

  it('reads the values, NaN and the _other fold', async () => {
    const value = async (promql: string): Promise<string[]> => (await prom().query(promql)).map((r) => r.value[1])
    expect(await value('switchboard_bytes_sent_total')).toEqual(['15000000000'])
    expect(await value('switchboard_temperature_celsius')).toEqual(['-3.25'])
    expect(await value('switchboard_cache_hit_ratio{cache="empty"}')).toEqual(['NaN'])
    expect(await value('switchboard_upstream_healthy_endpoints{upstream="backend"}')).toEqual(['3'])
    expect(await value('switchboard_http_requests_total{route="_other",method="_other",status="_other"}')).toEqual(['29'])
    expect(await value('switchboard_switchboard_metrics_series_dropped_total{metric="switchboard_http_requests_total"}')).toEqual(['29'])
  })

  it("computes the same quantiles with histogram_quantile() as the registry's own estimate", async () => {
    const users = registry.histogram('http_request_duration_seconds', 'Time to the last response byte.', ['route']).labels('users') as HistogramChild
    const orders = registry.histogram('http_request_duration_seconds', 'Time to the last response byte.', ['route']).labels('orders') as HistogramChild
    for (const q of [0.5, 0.95, 0.99]) {
      const [u] = await prom().query(`histogram_quantile(${q}, switchboard_http_request_duration_seconds_bucket{route="users"})`)
      expect(Number(u!.value[1])).toBeCloseTo(users.quantile(q), 9)
      const [o] = await prom().query(`histogram_quantile(${q}, switchboard_http_request_duration_seconds_bucket{route="orders"})`)
      expect(Number(o!.value[1])).toBeCloseTo(orders.quantile(q), 9)
    }
    const [count] = await prom().query('switchboard_http_request_duration_seconds_count{route="users"}')
    expect(count!.value[1]).toBe('1000')
  })
})
