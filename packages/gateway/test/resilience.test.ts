import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net'
import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../src/index.ts'
import { retryAfterMs, RetryBudget, backoffMs } from '../src/upstream/resilience.ts'
import { simpleConfig, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** An upstream that resets every connection as soon as a request arrives. */
async function resetting(): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const sockets = new Set<import('node:net').Socket>()
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.once('data', () => {
      hits++
      s.resetAndDestroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

function answer(res: ServerResponse, status: number, body = String(status), headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}

/** One request with fetch; resolves with status, headers and text (no throw on 5xx). */
async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init)
  return { status: res.status, headers: res.headers, text: await res.text() }
}

const RETRY = { attempts: 3, backoff: { base: '1ms', max: '5ms' }, budget: false }

describe('config', () => {
  it('parses retry, circuitBreaker and route resilience keys with defaults, rejects bad ones with key paths', () => {
    const config = parseConfig(
      simpleConfig(['http://127.0.0.1:1'], {
        upstream: { retry: { attempts: 3, on: ['connect', 503, '429'] }, circuitBreaker: { consecutiveFailures: 2 } },
        route: { deadline: '3s', deadlineHeader: true, retryNonIdempotent: true },
      }),
    )
    const u = config.upstreams.backend
    expect(u.retry).toEqual({ attempts: 3, on: ['connect', 503, 429], backoff: { baseMs: 50, maxMs: 2000 }, budget: { ratio: 0.2, minPerSecond: 5, windowMs: 10_000 }, retryAfterCapMs: 10_000, reuseEndpoints: true })
    expect(u.circuitBreaker).toEqual({ consecutiveFailures: 2, failureRatio: 0.5, windowMs: 10_000, minRequests: 20, openForMs: 5_000, halfOpenRequests: 1 })
    expect(config.routes[0]).toMatchObject({ deadlineMs: 3000, deadlineHeader: true, retryNonIdempotent: true })
    // The shorthand: N + 1 attempts on connect/reset/timeout, no backoff, no budget, no other endpoint reuse.
    expect(parseConfig(simpleConfig(['http://127.0.0.1:1'], { upstream: { retries: 2 } })).upstreams.backend.retry).toEqual({
      attempts: 3, on: ['connect', 'reset', 'timeout'], backoff: { baseMs: 0, maxMs: 0 }, budget: undefined, retryAfterCapMs: 0, reuseEndpoints: false,
    })
    expect(() => parseConfig(simpleConfig(['http://127.0.0.1:1'], { upstream: { retry: { on: ['boom'] } } }))).toThrow(/upstreams\.backend\.retry\.on\[0\]/)
    expect(() => parseConfig(simpleConfig(['http://127.0.0.1:1'], { upstream: { circuitBreaker: { openFor: 'x' } } }))).toThrow(/upstreams\.backend\.circuitBreaker\.openFor/)
    expect(() => parseConfig(simpleConfig(['http://127.0.0.1:1'], { route: { deadlineHeader: 'yes' } }))).toThrow(/routes\[0\]\.deadlineHeader/)
  })

  it('reads Retry-After as seconds, an HTTP date and the -ms variants; backoff is full jitter under the cap', () => {
    expect(retryAfterMs({ 'retry-after': '2' })).toBe(2000)
    expect(retryAfterMs({ 'retry-after': new Date(10_000).toUTCString() }, 4_000)).toBe(6000)
    expect(retryAfterMs({ 'retry-after-ms': '150' })).toBe(150)
    expect(retryAfterMs({ 'x-ratelimit-reset-after-ms': '75', 'retry-after': '9' })).toBe(75)
    expect(retryAfterMs({ 'retry-after': 'soon' })).toBeUndefined()
    expect(backoffMs(1, 50, 2000, () => 0.999)).toBeLessThan(50)
    expect(backoffMs(10, 50, 2000, () => 0.999)).toBeLessThan(2000)
    expect(backoffMs(3, 50, 2000, () => 0.5)).toBe(100)
  })

  it('the budget floor is a rate accrued over time, not a lump', () => {
    let now = 1_000_000
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 10, windowMs: 10_000 }, () => now)
    expect(budget.tryRetry()).toBe(false) // nothing accrued yet
    now += 100
    expect(budget.tryRetry()).toBe(true) // 0.1 s × 10/s = 1 retry
    expect(budget.tryRetry()).toBe(false)
    now += 60_000 // idle for a minute: at most one second's worth is held
    let granted = 0
    while (budget.tryRetry()) granted++
    expect(granted).toBe(10)
  })
})

describe('retries over real sockets', () => {
  it('a 503 burst is retried on the other endpoint; the client sees 200', async () => {
    const bad = await upstream((_req, res) => answer(res, 503))
    const good = await upstream((_req, res) => answer(res, 200, 'good'))
    const gw = await gateway(simpleConfig([bad.url, good.url], { upstream: { retry: RETRY } }))
    for (let i = 0; i < 4; i++) {
      const r = await get(`${gw.url}/x${i}`)
      expect(r.status).toBe(200)
      expect(r.text).toBe('good')
    }
    expect(bad.requests.length).toBeGreaterThan(0)
    expect(good.requests.length).toBe(4)
  })

  it('one endpoint: retries go back to it (503, 503, then 200) within attempts', async () => {
    let n = 0
    const only = await upstream((_req, res) => (++n <= 2 ? answer(res, 503) : answer(res, 200, 'third')))
    const gw = await gateway(simpleConfig([only.url], { upstream: { retry: RETRY } }))
    const r = await get(`${gw.url}/`)
    expect(r.status).toBe(200)
    expect(r.text).toBe('third')
    expect(only.requests.length).toBe(3)
  })

  it('gives up after attempts: the last 503 goes to the client', async () => {
    const only = await upstream((_req, res) => answer(res, 503, 'down'))
    const gw = await gateway(simpleConfig([only.url], { upstream: { retry: RETRY } }))
    const r = await get(`${gw.url}/`)
    expect(r.status).toBe(503)
    expect(r.text).toBe('down')
    expect(only.requests.length).toBe(3)
  })

  it("a route's own retry rule replaces its upstream's", async () => {
    const only = await upstream((_req, res) => answer(res, 503, 'down'))
    const raw = simpleConfig([only.url], { upstream: { retry: RETRY } }) as { routes: Array<Record<string, unknown>> }
    raw.routes.unshift({ name: 'no-retry', match: { path: '/once' }, upstream: 'backend', retry: { attempts: 1 } })
    const gw = await gateway(raw)
    expect((await get(`${gw.url}/once`)).status).toBe(503)
    expect(only.requests.length).toBe(1)
    expect((await get(`${gw.url}/other`)).status).toBe(503)
    expect(only.requests.length).toBe(1 + 3)
  })

  it('refused and reset connections are retried on another endpoint', async () => {
    const good = await upstream((_req, res) => answer(res, 200, 'good'))
    const reset = await resetting()
    const refused = `http://127.0.0.1:${await closedPort()}`
    const gw = await gateway(simpleConfig([refused, reset.url, good.url], { upstream: { retry: RETRY } }))
    for (let i = 0; i < 6; i++) expect((await get(`${gw.url}/r${i}`)).status).toBe(200)
    expect(reset.hits()).toBeGreaterThan(0)
    // Statuses only: a reset is not retried when `on` does not list it.
    const gw2 = await gateway(simpleConfig([reset.url], { upstream: { retry: { ...RETRY, on: [503] } } }))
    const before = reset.hits()
    expect((await get(`${gw2.url}/`)).status).toBe(502)
    expect(reset.hits() - before).toBe(1)
  })

  it('429 with a short retry-after-ms is waited for and retried; one above the cap goes to the client with its Retry-After', async () => {
    const times: number[] = []
    let n = 0
    const limited = await upstream((_req, res) => {
      times.push(Date.now())
      if (++n === 1) answer(res, 429, 'slow down', { 'retry-after-ms': '150' })
      else answer(res, 200, 'ok')
    })
    const gw = await gateway(simpleConfig([limited.url], { upstream: { retry: { ...RETRY, retryAfterCap: '1s' } } }))
    const r = await get(`${gw.url}/`)
    expect(r.status).toBe(200)
    expect(times.length).toBe(2)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(140)

    const capped = await upstream((_req, res) => answer(res, 429, 'later', { 'retry-after': '60' }))
    const gw2 = await gateway(simpleConfig([capped.url], { upstream: { retry: { ...RETRY, retryAfterCap: '1s' } } }))
    const r2 = await get(`${gw2.url}/`)
    expect(r2.status).toBe(429)
    expect(r2.headers.get('retry-after')).toBe('60')
    expect(capped.requests.length).toBe(1)
  })

  it('POST is retried only when the route sets retryNonIdempotent', async () => {
    const only = await upstream((_req, res) => answer(res, 503))
    const off = await gateway(simpleConfig([only.url], { upstream: { retry: RETRY } }))
    expect((await get(`${off.url}/`, { method: 'POST' })).status).toBe(503)
    expect(only.requests.length).toBe(1)
    const on = await gateway(simpleConfig([only.url], { upstream: { retry: RETRY }, route: { retryNonIdempotent: true } }))
    expect((await get(`${on.url}/`, { method: 'POST' })).status).toBe(503)
    expect(only.requests.length).toBe(4)
  })

  it('no retry ever follows a response byte sent to the client (stream a body, then fail)', async () => {
    const streaming = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first part;')
      setTimeout(() => res.socket?.destroy(), 50)
    })
    const good = await upstream((_req, res) => answer(res, 200, 'good'))
    const gw = await gateway(
      simpleConfig([streaming.url, good.url], { upstream: { balancer: 'first-available', retry: { ...RETRY, on: ['connect', 'reset', 'timeout', 502, 503] } } }),
    )
    const res = await fetch(`${gw.url}/`)
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    let text = ''
    let failed = false
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
      }
    } catch {
      failed = true
    }
    expect(text).toBe('first part;')
    expect(failed).toBe(true)
    expect(streaming.requests.length).toBe(1)
    expect(good.requests.length).toBe(0)
  })
})

describe('retry budget: amplification measured', () => {
  it('with every endpoint failing, upstream requests ≤ (1 + ratio) × client requests + floor', async () => {
    const ups: TestUpstream[] = []
    for (let i = 0; i < 3; i++) ups.push(await upstream((_req, res) => answer(res, 503)))
    const ratio = 0.2
    const minPerSecond = 5
    // The floor accrues from the moment the upstream runtime exists: measure from before it.
    const started = Date.now()
    const gw = await gateway(
      simpleConfig(ups.map((u) => u.url), { upstream: { retry: { attempts: 3, backoff: { base: '1ms', max: '2ms' }, budget: { ratio, minPerSecond } } } }),
    )
    const clients = 200
    for (let batch = 0; batch < clients / 20; batch++) {
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${gw.url}/b${batch}-${i}`)))
      for (const r of rs) expect(r.status).toBe(503)
    }
    const seconds = (Date.now() - started) / 1000
    const upstreamRequests = ups.reduce((n, u) => n + u.requests.length, 0)
    const bound = (1 + ratio) * clients + minPerSecond * seconds
    expect(upstreamRequests).toBeLessThanOrEqual(bound)
    // Without the budget 3 attempts would triple the load; retries did happen.
    expect(upstreamRequests).toBeGreaterThan(clients)
    const budget = gw.gateway.upstream('backend')!.budget!.toJSON()
    expect(budget.refused).toBeGreaterThan(0)
    expect(budget.granted).toBe(upstreamRequests - clients)
    console.log(`amplification: ${clients} client requests → ${upstreamRequests} upstream requests in ${seconds.toFixed(2)} s (bound ${bound.toFixed(1)})`)
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold, answers 503 ERR_CIRCUIT_OPEN fast, admits exactly halfOpenRequests trials, closes on success, reopens on failure', async () => {
    const logs: Array<{ message: string; fields: Record<string, unknown> }> = []
    let mode: 'fail' | 'hold' | 'ok' = 'fail'
    const held: ServerResponse[] = []
    const up = await upstream((_req, res) => {
      if (mode === 'fail') answer(res, 503)
      else if (mode === 'hold') held.push(res)
      else answer(res, 200, 'ok')
    })
    const gw = await gateway(
      {
        ...simpleConfig([up.url], { upstream: { circuitBreaker: { consecutiveFailures: 3, openFor: '300ms', halfOpenRequests: 2 }, retries: 0 } }),
        admin: {},
      },
      { logger: (_level, message, fields) => logs.push({ message, fields: fields ?? {} }) },
    )
    for (let i = 0; i < 3; i++) expect((await get(`${gw.url}/`)).status).toBe(503)
    expect(up.requests.length).toBe(3)
    const open = await get(`${gw.url}/`)
    expect(open.status).toBe(503)
    expect(JSON.parse(open.text).error.code).toBe('ERR_CIRCUIT_OPEN')
    expect(up.requests.length).toBe(3) // not sent
    const circuit = gw.gateway.upstreamStats().backend[0].circuit as Record<string, unknown>
    expect(circuit).toMatchObject({ state: 'open', reason: '3 consecutive failures' })
    expect(typeof circuit.reopenAt).toBe('string')
    const admin = JSON.parse((await get(`${gw.url}/admin/breakers`)).text)
    expect(admin.breakers.backend.circuits[0]).toMatchObject({ endpoint: up.url, state: 'open' })

    // Half-open: 5 concurrent requests, exactly 2 trials reach the upstream.
    await waitFor(() => (gw.gateway.upstreamStats().backend[0].circuit as { state: string }).state === 'half-open', 3_000)
    mode = 'hold'
    const pending = Array.from({ length: 5 }, () => get(`${gw.url}/`))
    await waitFor(() => held.length === 2, 3_000)
    await new Promise((r) => setTimeout(r, 50))
    expect(held.length).toBe(2)
    expect(up.requests.length).toBe(5)
    for (const res of held) answer(res, 200, 'trial')
    const results = await Promise.all(pending)
    expect(results.filter((r) => r.status === 200).length).toBe(2)
    expect(results.filter((r) => r.status === 503 && r.text.includes('ERR_CIRCUIT_OPEN')).length).toBe(3)
    expect((gw.gateway.upstreamStats().backend[0].circuit as { state: string }).state).toBe('closed')

    // Open again, then a failing half-open trial reopens it.
    mode = 'fail'
    for (let i = 0; i < 3; i++) await get(`${gw.url}/`)
    await waitFor(() => (gw.gateway.upstreamStats().backend[0].circuit as { state: string }).state === 'half-open', 3_000)
    expect((await get(`${gw.url}/`)).status).toBe(503)
    expect(gw.gateway.upstreamStats().backend[0].circuit).toMatchObject({ state: 'open', reason: 'half-open trial failed' })

    const transitions = logs.filter((l) => l.fields.circuit !== undefined).map((l) => `${l.fields.from}>${l.fields.circuit}`)
    expect(transitions).toEqual(['closed>open', 'open>half-open', 'half-open>closed', 'closed>open', 'open>half-open', 'half-open>open'])
  })

  it('an open endpoint is skipped while another one still answers', async () => {
    const bad = await upstream((_req, res) => answer(res, 500))
    const good = await upstream((_req, res) => answer(res, 200, 'good'))
    const gw = await gateway(simpleConfig([bad.url, good.url], { upstream: { circuitBreaker: { consecutiveFailures: 2, openFor: '1m' }, retries: 0 } }))
    for (let i = 0; i < 10; i++) await get(`${gw.url}/`)
    expect(bad.requests.length).toBe(2)
    for (let i = 0; i < 5; i++) expect((await get(`${gw.url}/`)).status).toBe(200)
  })
})

describe('deadline', () => {
  it('bounds all tries together: 504 ERR_DEADLINE_EXCEEDED, X-Request-Timeout sent upstream', async () => {
    const slow = await upstream((_req, res) => {
      const t = setTimeout(() => answer(res, 200, 'late'), 3_000)
      res.on('close', () => clearTimeout(t))
    })
    const gw = await gateway(
      simpleConfig([slow.url], { upstream: { retry: { ...RETRY, on: ['timeout'] }, timeouts: { response: '10s' } }, route: { deadline: '300ms', deadlineHeader: true } }),
    )
    const r = await get(`${gw.url}/`)
    expect(r.status).toBe(504)
    expect(JSON.parse(r.text).error.code).toBe('ERR_DEADLINE_EXCEEDED')
    expect(slow.requests.length).toBe(1)
    const sent = Number(slow.requests[0].headers['x-request-timeout'])
    expect(sent).toBeGreaterThan(0)
    expect(sent).toBeLessThanOrEqual(300)
  })

  it('without deadlineHeader nothing extra is sent; a fast answer is untouched', async () => {
    const fast = await upstream()
    const gw = await gateway(simpleConfig([fast.url], { route: { deadline: '2s' } }))
    expect((await get(`${gw.url}/`)).status).toBe(200)
    expect(fast.requests[0].headers['x-request-timeout']).toBeUndefined()
  })
})

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}


describe('hedging', () => {
  /** A: every 20th request it receives waits 200 ms (5 %); B: always fast. */
  async function slowTail(): Promise<{ a: TestUpstream; b: TestUpstream; delayed: Set<string> }> {
    const delayed = new Set<string>()
    let n = 0
    const a = await upstream((req, res) => {
      const body = JSON.stringify({ upstream: 'a' })
      if (++n % 20 === 0) {
        delayed.add(req.url ?? '')
        const t = setTimeout(() => answer(res, 200, body), 200)
        res.on('close', () => clearTimeout(t))
      } else answer(res, 200, body)
    })
    const b = await upstream((_req, res) => answer(res, 200, JSON.stringify({ upstream: 'b' })))
    return { a, b, delayed }
  }

  async function run(url: string, count: number): Promise<{ latencies: number[]; from: Map<string, string> }> {
    const latencies: number[] = []
    const from = new Map<string, string>()
    for (let i = 0; i < count; i++) {
      const path = `/h${i}`
      const t0 = performance.now()
      const r = await get(`${url}${path}`)
      latencies.push(performance.now() - t0)
      expect(r.status).toBe(200)
      from.set(path, (JSON.parse(r.text) as { upstream: string }).upstream)
    }
    return { latencies, from }
  }

  const pct = (xs: number[], p: number): number => {
    const s = [...xs].sort((x, y) => x - y)
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
  }

  it('a second try on the other endpoint wins for the slow tail; hedges are counted', async () => {
    const count = 200
    const plain = await slowTail()
    const gwPlain = await gateway(simpleConfig([plain.a.url, plain.b.url]))
    const without = await run(gwPlain.url, count)
    const hedgedUp = await slowTail()
    const gw = await gateway(simpleConfig([hedgedUp.a.url, hedgedUp.b.url], { upstream: { retry: { attempts: 1 } }, route: { hedge: { after: '30ms' } } }))
    const withHedge = await run(gw.url, count)

    expect(hedgedUp.delayed.size).toBeGreaterThan(0)
    // Every request endpoint A held back was answered by B: the hedge won.
    for (const path of hedgedUp.delayed) expect(withHedge.from.get(path)).toBe('b')
    // Without hedging the held-back requests are answered by A, late.
    for (const path of plain.delayed) expect(without.from.get(path)).toBe('a')
    const hedges = gw.gateway.upstream('backend')!.hedges
    expect(hedges.sent).toBeGreaterThanOrEqual(hedgedUp.delayed.size)
    expect(hedges.won).toBeGreaterThanOrEqual(hedgedUp.delayed.size)
    const load = hedgedUp.a.requests.length + hedgedUp.b.requests.length
    expect(load).toBe(count + hedges.sent)
    console.log(
      `hedging: without p50 ${pct(without.latencies, 50).toFixed(1)} ms p99 ${pct(without.latencies, 99).toFixed(1)} ms; ` +
        `with (after 30ms) p50 ${pct(withHedge.latencies, 50).toFixed(1)} ms p99 ${pct(withHedge.latencies, 99).toFixed(1)} ms; ` +
        `hedges sent ${hedges.sent} (won ${hedges.won}) → upstream load +${((100 * (load - count)) / count).toFixed(1)} %`,
    )
  })

  it('streams the winning body with backpressure; POST and bodies are never hedged', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 'z')
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      let sent = 0
      const pump = (): void => {
        while (sent < big.length) {
          const chunk = big.subarray(sent, sent + 64 * 1024)
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      pump()
    })
    const other = await upstream((_req, res) => answer(res, 503))
    const gw = await gateway(simpleConfig([up.url, other.url], { upstream: { balancer: 'first-available', retry: { attempts: 1 } }, route: { hedge: { after: 'p95' } } }))
    const res = await fetch(`${gw.url}/big`)
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(res.status).toBe(200)
    expect(bytes.length).toBe(big.length)
    expect(bytes.equals(big)).toBe(true)
    expect((await get(`${gw.url}/p`, { method: 'POST', body: 'x' })).status).toBe(200)
    expect(gw.gateway.upstream('backend')!.hedges.sent).toBe(0)
  })
})
