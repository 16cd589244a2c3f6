// LLM balancing through the gateway: three fake engines of different capacity (vLLM-style
// /metrics that follow their real queues), scraped every 100 ms by `engineStats:`.
import { afterEach, describe, expect, it } from 'vitest'
import { startFakeEngine, type FakeEngine } from '../../health-checker/test/fake-engine.ts'
import { startGateway, type TestGateway } from './helpers.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

/** Slots 4, 2 and 1 at one token per 4 ms, 12 tokens per answer: the third is 4× slower overall. */
async function engines(): Promise<FakeEngine[]> {
  const list = await Promise.all([4, 2, 1].map((slots) => startFakeEngine({ slots, tokenMs: 4, tokens: 12 })))
  for (const e of list) cleanup.push(() => e.close())
  return list
}

async function gateway(list: FakeEngine[], balancer: unknown): Promise<TestGateway> {
  const g = await startGateway(
    {
      server: { shutdownTimeout: '1s' },
      upstreams: { llm: { targets: list.map((e) => e.url), engineStats: { path: '/metrics', interval: '100ms', format: 'vllm' }, balancer, retries: 0 } },
      routes: [{ name: 'chat', match: { path: '/v1/*' }, upstream: 'llm' }],
    },
  )
  cleanup.push(() => g.close())
  return g
}

interface Run {
  /** Mean over samples of (largest − smallest waiting queue of the three engines). */
  meanSpread: number
  /** Largest waiting queue any engine had at a sample. */
  maxWaiting: number
  statuses: Record<number, number>
}

/** `clients` closed-loop clients send `requests` streamed chats; the fakes' queues are sampled meanwhile. */
async function drive(g: TestGateway, list: FakeEngine[], requests: number, clients: number, prompt: (i: number) => string = (i) => `question ${i}`): Promise<Run> {
  const spreads: number[] = []
  let maxWaiting = 0
  const sampler = setInterval(() => {
    const w = list.map((e) => e.waiting)
    spreads.push(Math.max(...w) - Math.min(...w))
    maxWaiting = Math.max(maxWaiting, ...w)
  }, 10)
  const statuses: Record<number, number> = {}
  let next = 0
  try {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < requests) {
          const i = next++
          const res = await fetch(`${g.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'llama-3-8b', stream: true, messages: [{ role: 'user', content: prompt(i) }] }),
          })
          await res.text()
          statuses[res.status] = (statuses[res.status] ?? 0) + 1
        }
      }),
    )
  } finally {
    clearInterval(sampler)
  }
  return { meanSpread: spreads.reduce((a, b) => a + b, 0) / Math.max(1, spreads.length), maxWaiting, statuses }
}

async function untilScraped(g: TestGateway): Promise<void> {
  for (;;) {
    const eps = g.gateway.upstreamStats().llm
    if (eps.every((e) => (e.engine as { stale?: boolean } | undefined)?.stale === false)) return
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('gateway: engine-aware LLM balancing', () => {
  it('least-queue and score keep the waiting queues even where round-robin lets the slow engine grow', async () => {
    const runs: Record<string, Run> = {}
    for (const balancer of ['round-robin', 'least-queue', 'score']) {
      const list = await engines()
      const g = await gateway(list, balancer)
      await untilScraped(g)
      runs[balancer] = await drive(g, list, 140, 14)
      expect(runs[balancer].statuses).toEqual({ 200: 140 })
    }
    // Stated bound: 14 clients over 4 + 2 + 1 slots. Equal running + waiting (14 / 3 each) leaves the
    // slow engine ~3.7 waiting and the big one ~0.7, so engine-aware picks keep the mean spread of
    // the waiting queues at most 5 and no queue above 7; round-robin piles clients onto the slow one.
    for (const name of ['least-queue', 'score']) {
      expect(runs[name].meanSpread, `${name} ${JSON.stringify(runs)}`).toBeLessThanOrEqual(5)
      expect(runs[name].maxWaiting, name).toBeLessThanOrEqual(7)
      expect(runs[name].meanSpread).toBeLessThan(runs['round-robin'].meanSpread)
    }
    expect(runs['round-robin'].maxWaiting).toBeGreaterThan(7)
  })

  it('prefix-affinity raises the engines’ prefix-cache hits over round-robin', async () => {
    const hits: Record<string, number> = {}
    // 8 conversations, each with its own long system prompt, 10 turns each.
    const prompt = (i: number): string => `${'You are assistant number ' + (i % 8) + '. '.repeat(1)}${'Follow the house style guide closely. '.repeat(8)} turn ${i}`
    for (const balancer of ['round-robin', 'prefix-affinity']) {
      const list = await engines()
      const g = await gateway(list, { strategy: balancer, options: balancer === 'prefix-affinity' ? { chunkChars: 32, loadFactor: 2 } : {} })
      await untilScraped(g)
      const run = await drive(g, list, 80, 4, prompt)
      expect(run.statuses).toEqual({ 200: 80 })
      hits[balancer] = list.reduce((n, e) => n + e.prefixHits, 0)
    }
    // Round-robin spreads each conversation over all three caches (at most 80 − 8×3 hits).
    expect(hits['prefix-affinity'], JSON.stringify(hits)).toBeGreaterThan(hits['round-robin'])
    expect(hits['prefix-affinity']).toBeGreaterThanOrEqual(60)
  })

  it('a renamed metric turns an engine stale in /admin/upstreams and least-queue falls back to in-flight counts, still spreading load', async () => {
    const list = await engines()
    const g = await gateway(list, 'least-queue')
    await untilScraped(g)
    list[2].setMetrics('renamed')
    for (;;) {
      const slow = g.gateway.upstreamStats().llm.find((e) => e.url === list[2].url)!
      const engine = slow.engine as { stale: boolean; waiting: number | null }
      if (engine.stale) {
        expect(engine.waiting).toBeNull() // NaN in the endpoint, null in JSON: never 0
        break
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    const run = await drive(g, list, 140, 14)
    expect(run.statuses).toEqual({ 200: 140 })
    expect(run.maxWaiting).toBeLessThanOrEqual(7)
    expect(list.every((e) => e.served > 0)).toBe(true)
  })

  it('score answers 503 with Retry-After when every engine is saturated (429 when configured)', async () => {
    for (const status of [503, 429]) {
      const list = await Promise.all([1, 1].map(() => startFakeEngine({ slots: 1, tokenMs: 10, tokens: 40 })))
      for (const e of list) cleanup.push(() => e.close())
      const g = await gateway(list, { strategy: 'score', options: { maxQueue: 1, onSaturated: status, retryAfter: '2s' } })
      await untilScraped(g)
      // One long answer on each engine; the gateway's own count covers the gap until the next scrape.
      const pending = Array.from({ length: 2 }, (_, i) =>
        fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, prompt: `p${i}` }) }),
      )
      while (list.reduce((n, e) => n + e.running, 0) < 2) await new Promise((r) => setTimeout(r, 5))
      for (;;) {
        const res = await fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'one more' }) })
        if (res.status === 200) {
          pending.push(Promise.resolve(res)) // an engine still had room in the queue: it waits there now
          continue
        }
        const body = await res.text()
        expect(res.status).toBe(status)
        expect(res.headers.get('retry-after')).toBe('2')
        expect(JSON.parse(body).error.code).toBe('ERR_POOL_SATURATED')
        break
      }
      for (const p of pending) await (await p).text()
    }
  })
})
