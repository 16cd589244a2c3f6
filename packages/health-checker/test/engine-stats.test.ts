// The engine-stats scraper against a real fake engine whose /metrics follows its real load.
import { afterEach, describe, expect, it } from 'vitest'
import { createEndpoint, type EndpointState } from '@switchboard/balancer'
import { createEngineStatsScraper, type EngineScrapeReport, type EngineStatsScraper, type EngineStatsScraperOptions } from '../src/index.ts'
import { type FakeEngine, startFakeEngine, type FakeEngineOptions } from './fake-engine.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function engine(options: FakeEngineOptions = {}): Promise<FakeEngine> {
  const e = await startFakeEngine(options)
  cleanup.push(() => e.close())
  return e
}

/** A scraper over one endpoint per engine, with a queue of reports to wait on. */
function scraper(engines: FakeEngine[], options: Partial<EngineStatsScraperOptions> = {}) {
  const endpoints = engines.map((e) => createEndpoint({ url: e.url }))
  const reports: Array<{ endpoint: EndpointState; report: EngineScrapeReport }> = []
  const waiters: Array<{ test: (r: EngineScrapeReport) => boolean; resolve: (r: EngineScrapeReport) => void }> = []
  const s: EngineStatsScraper = createEngineStatsScraper({
    endpoints,
    intervalMs: 1_000,
    format: 'vllm',
    ...options,
    onUpdate: (target, report) => {
      reports.push({ endpoint: target as EndpointState, report })
      for (const w of waiters.splice(0)) {
        if (w.test(report)) w.resolve(report)
        else waiters.push(w)
      }
    },
  })
  cleanup.push(() => s.stop())
  const until = (test: (r: EngineScrapeReport) => boolean): Promise<EngineScrapeReport> =>
    new Promise((resolve) => {
      const seen = reports.find((r) => test(r.report))
      if (seen) resolve(seen.report)
      else waiters.push({ test, resolve })
    })
  return { scraper: s, endpoints, reports, until }
}

/** Starts `n` streamed chat requests on the engine; resolves once it has accepted them all. */
async function load(e: FakeEngine, n: number, prompt = 'hello'): Promise<Promise<void>[]> {
  const done = Array.from({ length: n }, () =>
    fetch(`${e.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'llama-3-8b', stream: true, messages: [{ role: 'user', content: prompt }] }),
    }).then((r) => r.text().then(() => undefined)),
  )
  while (e.running + e.waiting < n) await new Promise((r) => setTimeout(r, 2))
  return done
}

async function complete(e: FakeEngine, prompt: string): Promise<void> {
  const r = await fetch(`${e.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 1 }) })
  await r.text()
}

describe('engine stats scraper: vLLM', () => {
  it("reads running, waiting and KV usage that follow the engine's real load", async () => {
    const e = await engine({ slots: 1, tokenMs: 20, tokens: 40 })
    const { scraper: s, endpoints } = scraper([e])
    const running = await load(e, 3)
    await s.scrapeNow()
    const stats = endpoints[0].engine!
    expect(stats.running).toBe(1)
    expect(stats.waiting).toBe(2)
    expect(stats.kvCacheUsage).toBe(1)
    expect(stats.stale).toBe(false)
    await Promise.all(running)
    await s.scrapeNow()
    // A real zero from the engine is 0; only a missing metric is NaN.
    expect([endpoints[0].engine!.running, endpoints[0].engine!.waiting, endpoints[0].engine!.kvCacheUsage]).toEqual([0, 0, 0])
  })

  it('reads the pre-V1 name vllm:gpu_cache_usage_perc', async () => {
    const e = await engine({ slots: 2, metrics: 'vllm-old' })
    const { scraper: s, endpoints } = scraper([e])
    const running = await load(e, 1)
    await s.scrapeNow()
    expect(endpoints[0].engine!.kvCacheUsage).toBe(0.5)
    expect(endpoints[0].engine!.stale).toBe(false)
    await Promise.all(running)
  })

  it('computes the prefix-cache hit rate between two scrapes from the counters', async () => {
    const e = await engine()
    const { scraper: s, endpoints } = scraper([e])
    await complete(e, 'shared system prompt A')
    await complete(e, 'shared system prompt A') // hit
    await s.scrapeNow()
    expect(endpoints[0].engine!.prefixCacheHitRate).toBeNaN() // one sample of the counters: no rate yet
    await complete(e, 'shared system prompt A') // hit
    await complete(e, 'another prompt B') // miss
    await s.scrapeNow()
    expect(endpoints[0].engine!.prefixCacheHitRate).toBe(0.5)
  })

  it('lists the models from /v1/models once started', async () => {
    const e = await engine({ model: 'qwen2.5-7b' })
    const { scraper: s, endpoints, until } = scraper([e], { intervalMs: 50 })
    s.start()
    await until((r) => r.update.models !== undefined)
    expect(endpoints[0].engine!.models).toEqual(['qwen2.5-7b'])
    expect(endpoints[0].engine!.ageOf('models')).toBeLessThan(Number.POSITIVE_INFINITY)
  })

  it('shows a renamed metric as NaN and stale, never 0, and recovers when it returns', async () => {
    const e = await engine({ metrics: 'renamed' })
    const { scraper: s, endpoints, reports } = scraper([e])
    await s.scrapeNow()
    const stats = endpoints[0].engine!
    expect(stats.running).toBeNaN()
    expect(stats.waiting).toBeNaN()
    expect(stats.kvCacheUsage).toBeNaN()
    expect(stats.stale).toBe(true)
    expect(reports[0].report.missing).toEqual(['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc'])
    expect(endpoints[0].toJSON().engine).toMatchObject({ running: null, waiting: null, stale: true })
    e.setMetrics('vllm')
    await s.scrapeNow()
    expect(stats.stale).toBe(false)
    expect(stats.waiting).toBe(0)
  })
})

describe('engine stats scraper: other engines', () => {
  it('auto-detects SGLang names', async () => {
    const e = await engine({ slots: 1, tokenMs: 20, tokens: 40, metrics: 'sglang' })
    const { scraper: s, endpoints, reports } = scraper([e], { format: 'auto' })
    const running = await load(e, 2)
    await s.scrapeNow()
    expect(reports[0].report.format).toBe('sglang')
    expect([endpoints[0].engine!.running, endpoints[0].engine!.waiting, endpoints[0].engine!.kvCacheUsage]).toEqual([1, 1, 1])
    expect(endpoints[0].engine!.stale).toBe(false)
    await Promise.all(running)
  })

  it('auto-detects TGI names (no KV figure: NaN, yet not stale)', async () => {
    const e = await engine({ slots: 1, tokenMs: 20, tokens: 40, metrics: 'tgi' })
    const { scraper: s, endpoints, reports } = scraper([e], { format: 'auto' })
    const running = await load(e, 3)
    await s.scrapeNow()
    expect(reports[0].report.format).toBe('tgi')
    expect([endpoints[0].engine!.running, endpoints[0].engine!.waiting]).toEqual([1, 2])
    expect(endpoints[0].engine!.kvCacheUsage).toBeNaN()
    expect(endpoints[0].engine!.stale).toBe(false)
    await Promise.all(running)
  })

  it('reads nothing from an exposition of another engine when the format is fixed', async () => {
    const e = await engine({ metrics: 'sglang' })
    const { scraper: s, endpoints } = scraper([e], { format: 'vllm' })
    await s.scrapeNow()
    expect(endpoints[0].engine!.running).toBeNaN()
    expect(endpoints[0].engine!.stale).toBe(true)
  })
})

describe('engine stats scraper: bounds', () => {
  it('times out a hanging /metrics and never overlaps scrapes of one endpoint', async () => {
    const e = await engine({ metrics: 'hang' })
    let open = 0
    let maxOpen = 0
    const counting: typeof fetch = async (input, init) => {
      open++
      maxOpen = Math.max(maxOpen, open)
      try {
        return await fetch(input, init)
      } finally {
        open--
      }
    }
    // Interval shorter than the timeout: every tick falls inside a running scrape.
    const { scraper: s, endpoints, reports, until } = scraper([e], { intervalMs: 20, timeoutMs: 60, modelsPath: false, fetch: counting })
    s.start()
    await until(() => reports.length >= 3)
    expect(reports.slice(0, 3).map((r) => r.report.error)).toEqual(['timeout after 60ms', 'timeout after 60ms', 'timeout after 60ms'])
    expect(maxOpen).toBe(1)
    expect(e.metricsRequests).toBeGreaterThanOrEqual(3)
    expect(e.metricsRequests).toBeLessThanOrEqual(reports.length + 1) // one per scrape, never queued ticks
    expect(endpoints[0].engine!.stale).toBe(true)
    expect(endpoints[0].engine!.waiting).toBeNaN()
  })

  it('refuses a 10 MiB exposition at the 1 MiB bound', async () => {
    const e = await engine({ metrics: 'huge' })
    const { scraper: s, endpoints, reports } = scraper([e])
    await s.scrapeNow()
    expect(reports[0].report.ok).toBe(false)
    expect(reports[0].report.error).toBe('body over 1048576 bytes')
    expect(endpoints[0].engine!.stale).toBe(true)
    e.setMetrics('vllm')
    await s.scrapeNow()
    expect(endpoints[0].engine!.stale).toBe(false)
  })

  it('reports a failing status and a refused connection as stale', async () => {
    const e = await engine({ metrics: 'error' })
    const dead = await engine()
    await dead.close()
    const { scraper: s, endpoints, reports } = scraper([e, dead])
    await s.scrapeNow()
    const byUrl = new Map(reports.map((r) => [r.endpoint.url, r.report.error]))
    expect(byUrl.get(e.url)).toBe('status 503')
    expect(byUrl.get(dead.url)).toBe('ECONNREFUSED')
    expect(endpoints.every((ep) => ep.engine!.stale)).toBe(true)
  })

  it('stop() cancels a scrape in flight and resolves', async () => {
    const e = await engine({ metrics: 'hang' })
    const { scraper: s, reports } = scraper([e], { timeoutMs: 30_000, modelsPath: false })
    s.start()
    while (e.metricsRequests === 0) await new Promise((r) => setTimeout(r, 2))
    await s.stop()
    expect(reports).toHaveLength(0) // a stopped scrape reports nothing
    expect(() => s.start()).toThrow(/stopped/)
  })

  it('rejects bad options by name', () => {
    const endpoints = [createEndpoint({ url: 'http://127.0.0.1:1' })]
    expect(() => createEngineStatsScraper({ endpoints, intervalMs: 0 })).toThrow(/intervalMs must be a positive integer/)
    expect(() => createEngineStatsScraper({ endpoints, format: 'triton' as never })).toThrow(/format must be one of/)
    expect(() => createEngineStatsScraper({ endpoints, path: 'metrics' })).toThrow(/path must start with/)
    expect(() => createEngineStatsScraper({ endpoints: [{ url: 'x' } as never] })).toThrow(/endpoints\[0\]/)
  })
})
