// Shared by promtool.test.ts and prometheus-scrape.test.ts: a registry that looks like a gateway's,
// and the Prometheus binaries from Debian's `prometheus` package (scripts/test-deps.sh installs it).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { MetricsRegistry } from '../src/index.ts'

/** Label values that need every escape the format has, and some that need none but look like they might. */
export const NASTY_VALUES: readonly string[] = ['C:\\temp\\"quoted"\nsecond line', 'ünïcødé ✓ 中文', 'tab\tand {braces}, commas = "eq", a carriage\rreturn', '\\', '"', '\n', '']

/**
 * A registry with what a gateway exposes: labeled counters (one folded into `_other`), gauges set
 * in `onCollect`, full, empty and labeled-but-unused histograms, awkward label values and help.
 */
export function realisticRegistry(): MetricsRegistry {
  const registry = new MetricsRegistry({ prefix: 'switchboard_', maxSeriesPerMetric: 20 })
  const requests = registry.counter('http_requests_total', 'HTTP requests answered, by route, method and status.', ['route', 'method', 'status'])
  for (const [i, route] of ['users', 'orders', 'docs'].entries()) {
    requests.labels(route, 'GET', '200').inc(100 * (i + 1))
    requests.labels(route, 'POST', '201').inc(7)
    requests.labels(route, 'GET', '503').inc()
  }
  for (let i = 0; i < 40; i++) requests.labels(`/raw/path/${i}`, 'GET', '404').inc() // past 20: folds into _other
  const paths = registry.counter('upstream_errors_total', 'Upstream failures by "kind" (a \\ backslash and\na second line in the help).', ['upstream', 'kind'])
  for (const v of NASTY_VALUES) paths.labels(v, 'timeout').inc(2)
  registry.counter('config_reloads_total', 'Configuration reloads.').inc(3)
  registry.counter('bytes_sent_total', 'Bytes sent to clients.').inc(1.5e10)

  const inflight = registry.gauge('http_requests_in_flight', 'Requests being served.')
  const healthy = registry.gauge('upstream_healthy_endpoints', 'Healthy endpoints per upstream.', ['upstream'])
  const ratio = registry.gauge('cache_hit_ratio', 'Cache hits over lookups (NaN before the first lookup).', ['cache'])
  registry.onCollect(() => {
    inflight.set(4)
    healthy.clear()
    healthy.labels('backend').set(3)
    healthy.labels('legacy').set(0)
    ratio.labels('pages').set(0.8125)
    ratio.labels('empty').set(Number.NaN)
  })
  registry.gauge('temperature_celsius', 'A negative, a fraction.').set(-3.25)

  const duration = registry.histogram('http_request_duration_seconds', 'Time to the last response byte.', ['route'])
  for (let i = 0; i < 1000; i++) duration.labels('users').observe(((i % 97) + 1) / 400) // 2.5 ms … 245 ms
  for (let i = 0; i < 10; i++) duration.labels('orders').observe(0.5 * 2 ** i) // up to 256 s: +Inf used
  duration.labels('docs') // registered series, never observed: all zeros
  registry.histogram('upstream_connect_duration_seconds', 'Time to connect upstream.', ['upstream']) // no series at all
  const size = registry.histogram('response_size_bytes', 'Response body size.', [], [100, 1000, 10_000, 100_000, 1_000_000])
  for (const v of [0, 50, 512, 4096, 65_536, 2_000_000]) size.observe(v)
  registry.histogram('queue_wait_seconds', 'Wait before an upstream connection was free.') // unlabeled, empty
  return registry
}

/** The path of a binary on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name)
    if (dir !== '' && existsSync(candidate)) return candidate
  }
  return undefined
}

/** What `promtool check metrics` said about a text exposition on its stdin. */
export interface PromtoolResult {
  status: number | null
  output: string
}

/** Runs `promtool check metrics` over `text` (it reports parse errors and lint problems and exits non-zero). */
export function promtoolCheck(text: string): PromtoolResult {
  const bin = findBinary('promtool')
  if (bin === undefined) throw new Error('promtool is not installed: bash scripts/test-deps.sh installs Debian\'s prometheus package (CI runs it)')
  const run = spawnSync(bin, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 })
  if (run.error) throw run.error
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}

/** A running Prometheus server scraping one target every second. */
export interface RunningPrometheus {
  url: string
  /** An instant query through the HTTP API: the `data.result` array. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>
  /** The scrape targets as `/api/v1/targets` reports them. */
  targets(): Promise<{ health: string; lastError: string }[]>
  stop(): Promise<void>
}

/** Starts `prometheus` on a free loopback port, scraping `http://127.0.0.1:<targetPort>/metrics`, with its TSDB in a temp dir. */
export async function startPrometheus(targetPort: number): Promise<RunningPrometheus> {
  const bin = findBinary('prometheus')
  if (bin === undefined) throw new Error('prometheus is not installed: bash scripts/test-deps.sh installs Debian\'s prometheus package (CI runs it)')
  const dir = mkdtempSync(join(tmpdir(), 'metrics-prometheus-'))
  const config = join(dir, 'prometheus.yml')
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ['127.0.0.1:${targetPort}']\n`)
  const port = await freePort()
  const child = spawn(bin, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  const collect = (chunk: string): void => {
    if (log.length < 8000) log += chunk
  }
  child.stdout.setEncoding('utf8').on('data', collect)
  child.stderr.setEncoding('utf8').on('data', collect)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', (err) => {
      collect(String(err))
      resolve()
    })
  })
  let gone = false
  void exited.then(() => (gone = true))
  const url = `http://127.0.0.1:${port}`
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path)
    const body = (await res.json()) as { status: string; data: T; error?: string }
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`)
    return body.data
  }
  const stop = async (): Promise<void> => {
    if (!gone) child.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; ; i++) {
    if (gone) {
      await stop()
      throw new Error(`prometheus exited before it was ready:\n${log}`)
    }
    try {
      const res = await fetch(`${url}/-/ready`)
      await res.arrayBuffer()
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (i >= 200) {
      await stop()
      throw new Error(`prometheus did not get ready after 200 tries:\n${log}`)
    }
    await sleep(100)
  }
  return {
    url,
    query: async (promql) => (await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result,
    targets: async () => (await api<{ activeTargets: { health: string; lastError: string }[] }>('/api/v1/targets')).activeTargets,
    stop,
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}
