// Metrics, the admin listener, access logs, trace context and explain, over real sockets.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { simpleConfig, useFixtures } from './helpers.ts'

const { upstream, gateway } = useFixtures()

const TOKEN = 'admin-token-0123456789abcdef'
const HAS_PROMTOOL = spawnSync('sh', ['-c', 'command -v promtool']).status === 0

async function text(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { headers })
  return { status: res.status, body: await res.text(), headers: res.headers }
}

/** `name{labels} value` lines of a scrape whose name and labels match. */
function sample(scrape: string, name: string, labels: Record<string, string>): number {
  let total = 0
  for (const line of scrape.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    if (ok) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

describe('metrics and the admin listener', () => {
  it('counts requests by route, upstream and status class, and serves them on /metrics and the admin listener', async () => {
    const up = await upstream((req, res) => {
      res.statusCode = req.url === '/api/fail' ? 500 : 200
      res.end('x')
    })
    const gw = await gateway({
      ...simpleConfig([up.url]),
      routes: [
        { name: 'api', match: { path: '/api/*' }, upstream: 'backend' },
        { name: 'static', match: { path: '/static/*' }, upstream: 'backend' },
      ],
      metrics: { path: '/metrics' },
      admin: { listen: '127.0.0.1:0', token: TOKEN },
    })
    for (let i = 0; i < 7; i++) expect((await fetch(`${gw.url}/api/ok`)).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await fetch(`${gw.url}/static/a.css`)).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await fetch(`${gw.url}/api/fail`)).status).toBe(500)
    // Unrouted paths never become labels: they all count under one route label.
    for (let i = 0; i < 5; i++) expect((await fetch(`${gw.url}/nowhere/${Math.random()}`)).status).toBe(404)
    await new Promise((r) => setTimeout(r, 20))
    const scrape = await text(`${gw.url}/metrics`)
    expect(scrape.status).toBe(200)
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(sample(scrape.body, 'switchboard_requests_total', { route: 'api', upstream: 'backend', code: '2xx' })).toBe(7)
    expect(sample(scrape.body, 'switchboard_requests_total', { route: 'api', upstream: 'backend', code: '5xx' })).toBe(2)
    expect(sample(scrape.body, 'switchboard_requests_total', { route: 'static', code: '2xx' })).toBe(3)
    expect(sample(scrape.body, 'switchboard_requests_total', { route: '(none)', code: '4xx' })).toBe(5)
    expect(sample(scrape.body, 'switchboard_request_duration_seconds_count', { route: 'api' })).toBe(9)
    expect(sample(scrape.body, 'switchboard_rejections_total', { route: '(none)', reason: 'no_route' })).toBe(5)
    expect(sample(scrape.body, 'switchboard_upstream_endpoint_healthy', { upstream: 'backend' })).toBe(1)
    expect(scrape.body).not.toMatch(/nowhere/)

    const admin = `http://127.0.0.1:${gw.gateway.adminAddress!.port}`
    expect((await text(`${admin}/metrics`)).status).toBe(401)
    expect((await text(`${admin}/metrics`, { authorization: `Bearer ${TOKEN}` })).body).toContain('switchboard_requests_total')
    expect((await text(`${admin}/metrics?token=${TOKEN}`)).status).toBe(200)
    expect((await text(`${admin}/admin/routes`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    // Admin paths are not on the main listener when the admin has its own.
    expect((await fetch(`${gw.url}/admin/routes`)).status).toBe(404)

    const stats = JSON.parse((await text(`${admin}/admin/stats`, { authorization: `Bearer ${TOKEN}` })).body)
    expect(stats.totals.requests).toBeGreaterThanOrEqual(17)
    const api = stats.routes.find((r: { name: string }) => r.name === 'api')
    expect(api).toMatchObject({ upstream: 'backend', requests: 9, byClass: { '2xx': 7, '5xx': 2 } })
    expect(api.latency.count).toBe(9)
    expect(api.latency.buckets.at(-1)).toEqual(['+Inf', 9])
    expect(stats.upstreams[0]).toMatchObject({ name: 'backend', healthy: 1, total: 1 })
    expect(stats.recentErrors.filter((e: { route: string; status: number }) => e.route === 'api' && e.status === 500)).toHaveLength(2)
  })

  it.skipIf(!HAS_PROMTOOL && !process.env.CI)('a scrape under traffic passes promtool check metrics (promtool is installed by scripts/test-deps.sh; skipped locally without it)', async () => {
    const up = await upstream()
    const gw = await gateway({ ...simpleConfig([up.url]), metrics: true, upstreams: { backend: { targets: [up.url], circuitBreaker: true, healthCheck: { interval: '1s' } } } })
    await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`${gw.url}/p/${i}`).then((r) => r.text())))
    const scrape = (await text(`${gw.url}/metrics`)).body
    const dir = mkdtempSync(join(tmpdir(), 'sb-prom-'))
    writeFileSync(join(dir, 'scrape.txt'), scrape)
    const result = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' })
    expect({ status: result.status, out: `${result.stdout}${result.stderr}` }).toEqual({ status: 0, out: '' })
  })

  it('explain says which route, policies, upstream and endpoints a request would get', async () => {
    const up = await upstream()
    const gw = await gateway({
      server: { shutdownTimeout: '1s' },
      upstreams: { backend: { targets: [up.url, 'http://127.0.0.1:9'], circuitBreaker: true } },
      policies: { keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'a', key: 'k-0123456789abcdef' }] }, trace: { use: 'request-id' } },
      routes: [
        { name: 'users', match: { path: '/users/:id', methods: ['GET'] }, upstream: 'backend', policies: ['trace', 'keys'] },
        { name: 'open', match: { path: '/open/*' }, upstream: 'backend' },
      ],
      admin: true,
    })
    const out = JSON.parse((await text(`${gw.url}/admin/explain?method=GET&path=/users/42`)).body)
    expect(out).toMatchObject({ outcome: 'route', route: 'users', params: { id: '42' }, authenticated: true, upstream: 'backend', routePolicies: ['trace', '(authentication: api-key)'] })
    expect(out.endpoints).toHaveLength(2)
    expect(out.endpoints[0]).toMatchObject({ url: up.url, candidate: true, reason: 'candidate', circuit: 'closed' })
    const none = JSON.parse((await text(`${gw.url}/admin/explain?method=POST&path=/users/42`)).body)
    expect(none).toMatchObject({ outcome: 'no route', status: 404 })
    const bad = JSON.parse((await text(`${gw.url}/admin/explain?path=/../etc`)).body)
    expect(bad).toMatchObject({ outcome: 'refused', status: 400 })
    const posted = await fetch(`${gw.url}/admin/explain`, { method: 'POST', body: JSON.stringify({ method: 'GET', path: '/open/x' }) })
    expect(await posted.json()).toMatchObject({ route: 'open', authenticated: false })
  })
})

describe('admin discovery view', () => {
  it('lists remembered discovery routes with the counters', async () => {
    const d = await upstream()
    const gw = await gateway({ discovery: { endpoints: [d.url], store: { driver: 'memory' } }, admin: true })
    expect((await fetch(`${gw.url}/some/path`)).status).toBe(200)
    const body = JSON.parse((await text(`${gw.url}/admin/discovery`)).body)
    expect(body.discovery.stats).toMatchObject({ remembered: 1 })
    expect(body.discovery.remembered).toHaveLength(1)
    expect(JSON.stringify(body.discovery.remembered[0])).toContain(d.url)
  })
})

describe('access logs and trace context', () => {
  it('writes one JSON line per request to a file, without the query string, and sampling keeps every 5xx', async () => {
    const up = await upstream((req, res) => {
      res.statusCode = req.url?.startsWith('/fail') ? 503 : 200
      res.end('ok')
    })
    const dir = mkdtempSync(join(tmpdir(), 'sb-access-'))
    const file = join(dir, 'access.log')
    const gw = await gateway({ ...simpleConfig([up.url]), logs: { access: { path: file } } })
    await fetch(`${gw.url}/hello?secret=abc`, { headers: { 'x-request-id': 'rid-1' } })
    await fetch(`${gw.url}/fail`)
    await gw.close()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ method: 'GET', path: '/hello', route: 'all', upstream: 'backend', endpoint: up.url, status: 200, clientIp: '127.0.0.1', requestId: 'rid-1' })
    expect(typeof lines[0].durationMs).toBe('number')
    expect(typeof lines[0].time).toBe('string')
    expect(lines[0].traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(JSON.stringify(lines)).not.toContain('secret=abc')
    expect(lines[1]).toMatchObject({ status: 503, path: '/fail' })

    const sampledFile = join(dir, 'sampled.log')
    const sampled = await gateway({ ...simpleConfig([up.url]), logs: { access: { path: sampledFile, sample: 0 } } })
    for (let i = 0; i < 5; i++) await fetch(`${sampled.url}/ok`)
    await fetch(`${sampled.url}/fail`)
    await sampled.close()
    const kept = readFileSync(sampledFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(kept.map((l) => l.status)).toEqual([503])
  })

  it('propagates traceparent with a new span id, generates one when absent, replaces an invalid one', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url]))
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    await fetch(`${gw.url}/a`, { headers: { traceparent: incoming, tracestate: 'vendor=1' } })
    const sent = up.requests.at(-1)!.headers
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(sent.traceparent))
    expect(m).not.toBeNull()
    expect(m![1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(m![2]).not.toBe('00f067aa0ba902b7')
    expect(m![3]).toBe('01')
    expect(sent.tracestate).toBe('vendor=1')
    await fetch(`${gw.url}/b`)
    expect(String(up.requests.at(-1)!.headers.traceparent)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
    await fetch(`${gw.url}/c`, { headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', tracestate: 'x=1' } })
    const replaced = up.requests.at(-1)!.headers
    expect(String(replaced.traceparent)).not.toContain('00000000000000000000000000000000')
    expect(replaced.tracestate).toBeUndefined()
    const off = await gateway({ ...simpleConfig([up.url]), tracing: { traceparent: false } })
    await fetch(`${off.url}/d`)
    expect(up.requests.at(-1)!.headers.traceparent).toBeUndefined()
  })

  it('gives every request its own trace and span ids, across refills of the random block', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url]))
    // 24 random bytes a request (trace id and span id); the block of 4,080 is drawn again after 170.
    for (let i = 0; i < 400; i++) await fetch(`${gw.url}/r${i}`)
    const ids = up.requests.slice(-400).map((r) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(String(r.headers.traceparent)))
    expect(ids.every((m) => m !== null)).toBe(true)
    const traces = new Set(ids.map((m) => m![1]))
    const spans = new Set(ids.map((m) => m![2]))
    expect(traces.size).toBe(400)
    expect(spans.size).toBe(400)
  })
})
