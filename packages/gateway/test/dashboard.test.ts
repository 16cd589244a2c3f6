// The admin dashboard on its own: createDashboard() answering real sockets through a small
// node:http harness that mounts it the two ways the admin handler does (at `/` on the admin
// listener, at `/admin/dashboard` on the main one), gates it with a token like the admin API, and
// serves `/admin/stats` snapshots the test scripts. Then a real Chromium runs the page against it.
import { readFileSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { isGatewayError } from '@switchboard/core'
import { createDashboard, type DashboardOptions, type DashboardStats, type LatencyHistogram } from '../src/admin/dashboard/index.ts'
import { formatUptime, windowFigures, windowQuantile } from '../src/admin/dashboard/client.ts'
import { NodeExchange } from '../src/index.ts'
import { parseTarget } from '../src/transport/request-checks.ts'
import { hasChromium, useChromium } from '../../../scripts/chromium.mjs'

const TOKEN = 'dash-token-0123456789 +&/'
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot/package.json'))
const LE = [0.001, 0.0025, 0.005, 0.01, 0.025] as const

/** A histogram over {@link LE} from cumulative counts (the last one is also `+Inf`'s). */
function hist(cumulative: readonly number[]): LatencyHistogram {
  const buckets: Array<[number | '+Inf', number]> = LE.map((le, i) => [le, cumulative[i]])
  buckets.push(['+Inf', cumulative.at(-1)!])
  return { count: cumulative.at(-1)!, sum: 0, buckets }
}

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

describe('windowQuantile and windowFigures', () => {
  it('interpolates inside the bucket that holds the rank, over the difference of two snapshots', () => {
    const before = hist([1, 2, 3, 4, 5])
    const after = hist([1, 2, 7, 12, 15]) // the window: 4 in (2.5, 5] ms, 4 in (5, 10], 2 in (10, 25]
    expect(windowQuantile(before, after, 0.5)).toBeCloseTo(0.00625, 12) // rank 5: 1/4 into (5, 10]
    expect(windowQuantile(before, after, 0.99)).toBeCloseTo(0.02425, 12) // rank 9.9: 1.9/2 into (10, 25]
    expect(windowQuantile(before, after, 0)).toBe(0.0025) // rank 0 sits at the lower edge of the first non-empty bucket
    // Since start (no earlier snapshot): the cumulative counts themselves, from a lower bound of 0.
    expect(windowQuantile(undefined, hist([2, 2, 2, 2, 2]), 0.5)).toBeCloseTo(0.0005, 12)
  })

  it('answers the highest finite bound for a rank in +Inf, and null for an empty window or counters that do not line up', () => {
    const before = hist([0, 0, 0, 0, 0])
    const slow: LatencyHistogram = { count: 4, sum: 8, buckets: [...hist([1, 1, 1, 1, 1]).buckets.slice(0, -1), ['+Inf', 4]] }
    expect(windowQuantile(before, slow, 0.5)).toBe(0.025)
    expect(windowQuantile(before, slow, 0.2)).toBeCloseTo(0.0008, 12) // rank 0.8 of the one in (0, 1] ms
    expect(windowQuantile(hist([1, 2, 3, 4, 5]), hist([1, 2, 3, 4, 5]), 0.5)).toBeNull()
    expect(windowQuantile(hist([1, 2, 3, 4, 5]), hist([0, 0, 0, 0, 1]), 0.5)).toBeNull() // a restart
    expect(windowQuantile({ count: 1, sum: 0, buckets: [['+Inf', 1]] }, hist([1, 2, 3, 4, 5]), 0.5)).toBeNull() // another layout
  })

  it('gives requests/s, 5xx % and p50/p99 in ms over the seconds between two polls', () => {
    const before = { requests: 5, errors5xx: 1, latency: hist([1, 2, 3, 4, 5]) }
    const after = { requests: 15, errors5xx: 3, latency: hist([1, 2, 7, 12, 15]) }
    const f = windowFigures(before, after, 2)!
    expect(f.rps).toBe(5)
    expect(f.errorPct).toBe(20)
    expect(f.p50Ms).toBeCloseTo(6.25, 9)
    expect(f.p99Ms).toBeCloseTo(24.25, 9)
    expect(windowFigures(before, before, 1)).toEqual({ rps: 0, errorPct: null, p50Ms: null, p99Ms: null })
    expect(windowFigures(after, before, 1)).toBeNull()
    expect(windowFigures(before, after, 0)).toBeNull()
    expect([formatUptime(42.9), formatUptime(192), formatUptime(3 * 3600 + 65), formatUptime(2 * 86400 + 4 * 3600)]).toEqual(['42s', '3m 12s', '3h 01m', '2d 4h'])
  })
})

describe('createDashboard over real sockets', () => {
  it('serves the page at both mounts with assets below it, a strict CSP and no inline script or style', async () => {
    const h = await harness({ apiBase: '/admin', title: 'Ops <edge> & "co"' })
    for (const [path, assets] of [
      ['/', '/assets'],
      ['/admin/dashboard', '/admin/dashboard/assets'],
      ['/admin/dashboard/', '/admin/dashboard/assets'],
    ] as const) {
      const res = await get(h.port, path, { authorization: `Bearer ${TOKEN}` })
      expect(res.status, path).toBe(200)
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['referrer-policy']).toBe('no-referrer')
      const csp = String(res.headers['content-security-policy'])
      expect(csp).toContain("script-src 'self';")
      expect(csp).toContain("style-src 'self';")
      expect(csp).toContain("connect-src 'self';")
      expect(csp).not.toContain('unsafe')
      const html = res.body.toString()
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
      expect(scripts.map((m) => m[1].trim())).toEqual([`src="${assets}/uPlot.iife.min.js"`, `src="${assets}/dashboard.js"`])
      expect(scripts.every((m) => m[2] === '')).toBe(true)
      expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
      expect(html).toContain(`<link rel="stylesheet" href="${assets}/uPlot.min.css">`)
      expect(html).toContain(`<link rel="stylesheet" href="${assets}/dashboard.css">`)
      expect(html).toContain('<body data-api-base="/admin">')
      expect(html).toContain('<title>Ops &#60;edge&#62; &#38; &#34;co&#34;</title>')
      expect(html).not.toContain(TOKEN)
    }
    expect(h.served).toEqual([true, true, true])
  })

  it('puts the ?token= of the page URL on the asset URLs (escaped), and those URLs pass the gate', async () => {
    const h = await harness({ apiBase: '/admin/' })
    const res = await get(h.port, `/?token=${encodeURIComponent(TOKEN)}`)
    expect(res.status).toBe(200)
    const html = res.body.toString()
    expect(html).toContain('<body data-api-base="/admin">') // the trailing slash is dropped
    const srcs = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1].replaceAll('&#38;', '&'))
    expect(srcs).toHaveLength(4)
    for (const src of srcs) {
      expect(new URL(src, 'http://x').searchParams.get('token')).toBe(TOKEN)
      expect((await get(h.port, src)).status, src).toBe(200)
    }
    expect((await get(h.port, '/assets/dashboard.js')).status).toBe(401) // the harness gate, as the admin handler does
  })

  it("serves uPlot's files byte-exact, with content types, revalidation, gzip and HEAD", async () => {
    const h = await harness({ apiBase: '/admin' })
    const auth = { authorization: `Bearer ${TOKEN}` }
    for (const [name, type] of [
      ['uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
      ['uPlot.min.css', 'text/css; charset=utf-8'],
    ] as const) {
      const file = readFileSync(join(UPLOT_DIR, 'dist', name))
      for (const path of [`/assets/${name}`, `/admin/dashboard/assets/${name}`]) {
        const res = await get(h.port, path, auth)
        expect(res.status, path).toBe(200)
        expect(res.headers['content-type']).toBe(type)
        expect(res.headers['cache-control']).toBe('private, no-cache')
        expect(res.headers['x-content-type-options']).toBe('nosniff')
        expect(res.headers['content-encoding']).toBeUndefined()
        expect(Buffer.compare(res.body, file), path).toBe(0)
        expect(Number(res.headers['content-length'])).toBe(file.byteLength)
        const again = await get(h.port, path, { ...auth, 'if-none-match': String(res.headers.etag) })
        expect([again.status, again.body.byteLength]).toEqual([304, 0])
      }
      const gz = await get(h.port, `/assets/${name}`, { ...auth, 'accept-encoding': 'gzip' })
      expect(gz.headers['content-encoding']).toBe('gzip')
      expect(gz.headers.vary).toBe('accept-encoding')
      expect(Buffer.compare(gunzipSync(gz.body), file)).toBe(0)
      const head = await get(h.port, `/assets/${name}`, auth, 'HEAD')
      expect([head.status, head.headers['content-length'], head.body.byteLength]).toEqual([200, String(file.byteLength), 0])
    }
  })

  it('serves its own script and stylesheet; the script is plain, self-contained JavaScript', async () => {
    const h = await harness({ apiBase: '/admin' })
    const auth = { authorization: `Bearer ${TOKEN}` }
    const js = await get(h.port, '/assets/dashboard.js', auth)
    expect(js.status).toBe(200)
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8')
    const source = js.body.toString()
    expect(() => new Function(source)).not.toThrow()
    expect(source).toMatch(/\bstartDashboard\w*\(window\.uPlot\)\n\}\)\(\)\n$/)
    expect(source).not.toMatch(/__vi|__vite|\bimport\b|\brequire\(|: string\b/) // nothing from a module system or TypeScript left
    const css = await get(h.port, '/admin/dashboard/assets/dashboard.css', auth)
    expect([css.status, css.headers['content-type']]).toEqual([200, 'text/css; charset=utf-8'])
    expect(css.body.toString()).toContain('.cards')
  })

  it('leaves unknown paths to the caller (404 here) and refuses other methods with 405 and Allow', async () => {
    const h = await harness({ apiBase: '/admin' })
    const auth = { authorization: `Bearer ${TOKEN}` }
    const unknown = [
      '/assets/uPlot.esm.js', // in the package, not on the list
      '/assets/dist/uPlot.iife.min.js',
      '/assets/',
      '/assets',
      '/assets/%2e%2e/package.json',
      '/admin/dashboard/assets/../uPlot.min.css',
      '/admin/dashboard/assets/nope.js',
      '/admin/dashboard/index.html',
      '/dashboard.js',
    ]
    for (const path of unknown) {
      const res = await get(h.port, path, auth)
      expect(res.status, path).toBe(404)
      expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_NOT_FOUND')
    }
    expect(h.served).toEqual(unknown.map(() => false))
    for (const [method, path] of [
      ['POST', '/'],
      ['DELETE', '/assets/dashboard.js'],
      ['PUT', '/admin/dashboard/'],
    ] as const) {
      const res = await get(h.port, path, auth, method)
      expect(res.status, `${method} ${path}`).toBe(405)
      expect(res.headers.allow).toBe('GET, HEAD')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_METHOD_NOT_ALLOWED')
    }
  })

  it('refuses an apiBase that is not a same-origin path', () => {
    for (const apiBase of ['admin', '//evil.example/admin', 'https://evil.example', '/admin?x=1', '/ad min'])
      expect(() => createDashboard({ apiBase }), apiBase).toThrow(RangeError)
    expect(() => createDashboard({ apiBase: '/' })).not.toThrow()
  })
})


const browserOf = useChromium()

describe('the dashboard page in Chromium, against scripted /stats snapshots', () => {
  // Skipped only where /usr/bin/chromium is missing outside CI (CI throws above instead).
  it.skipIf(!hasChromium)('takes the token, shows windowed figures, endpoint health, recent errors, and the disconnected state', async () => {
    const h = await harness({ apiBase: '/admin' })
    const context = await browserOf()!.newContext()
    cleanup.push(() => context.close())
    const outside: string[] = []
    await context.route('**', (route) => {
      const url = new URL(route.request().url())
      if (url.hostname === '127.0.0.1') return route.continue()
      outside.push(url.href)
      return route.abort('blockedbyclient')
    })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') errors.push(msg.text())
    })
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
    const text = (id: string): Promise<string | null> => page.getByTestId(id).textContent()
    /** Serves `snapshot` and waits until the page has fetched it. */
    const show = async (snapshot: DashboardStats | number): Promise<void> => {
      const seen = h.statsRequests.length
      h.stats = snapshot
      await expect.poll(() => h.statsRequests.length, { timeout: 10_000 }).toBeGreaterThan(seen + 1)
    }

    h.stats = snapshot(0, { requests: 5, errors5xx: 1, cumulative: [1, 2, 3, 4, 5] }, true, [])
    const res = await page.goto(`http://127.0.0.1:${h.port}/?token=${encodeURIComponent(TOKEN)}&view=1`)
    expect(res?.status()).toBe(200)
    await expect.poll(() => text('connection'), { timeout: 10_000 }).toBe('connected')
    // The token left the address bar (other parameters stay), lives in the session, and goes out as a header.
    expect(page.url()).toBe(`http://127.0.0.1:${h.port}/?view=1`)
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.admin.token'))).toBe(TOKEN)
    expect(h.statsRequests.every((r) => r.authorization === `Bearer ${TOKEN}` && r.url === '/admin/stats')).toBe(true)
    expect(await text('route-api-rps')).toBe('–') // one snapshot: no window yet
    expect(await text('totals-requests')).toBe('5')

    // Two seconds later by the server's clock: 10 more requests, 2 of them 5xx.
    await show(snapshot(2000, { requests: 15, errors5xx: 3, cumulative: [1, 2, 7, 12, 15] }, true, []))
    await expect.poll(() => text('route-api-rps'), { timeout: 10_000 }).toBe('5.0')
    expect(await text('route-api-errors')).toBe('20.0')
    expect(await text('route-api-p50')).toBe('6.25')
    expect(await text('route-api-p99')).toBe('24.25')
    expect(await text('upstream-backend-rps')).toBe('5.0')
    expect(await text('totals-rps')).toBe('5.0')
    expect(await text('totals-uptime')).toBe('12s')
    expect(await text('endpoint-http://127.0.0.1:3001-health')).toBe('healthy')
    expect(await text('endpoint-http://127.0.0.1:3001-circuit')).toBe('closed')
    expect(await text('upstream-backend-health')).toBe('2/2 healthy')
    expect(await page.getByTestId('route-api-charts').locator('canvas').count()).toBe(2)
    expect(Number(await page.getByTestId('route-api').getAttribute('data-points'))).toBeGreaterThanOrEqual(2)

    // One second later: 40 requests, all fast; one endpoint went down, its breaker opened; one error.
    const failure = { time: T0 + 2500, method: 'GET', path: '/api/<b>x</b>', route: 'api', status: 502, code: 'ERR_BAD_GATEWAY' }
    await show(snapshot(3000, { requests: 55, errors5xx: 3, cumulative: [41, 42, 47, 52, 55] }, false, [failure]))
    await expect.poll(() => text('route-api-rps'), { timeout: 10_000 }).toBe('40.0')
    expect(await text('route-api-errors')).toBe('0.0')
    expect(await text('route-api-p50')).toBe('0.50')
    expect(await text('endpoint-http://127.0.0.1:3001-health')).toBe('unhealthy')
    expect(await text('endpoint-http://127.0.0.1:3001-circuit')).toBe('open')
    expect(await text('endpoint-http://127.0.0.1:3002-health')).toBe('healthy')
    expect(await text('upstream-backend-health')).toBe('1/2 healthy')
    const rows = page.getByTestId('recent-error')
    expect(await rows.count()).toBe(1)
    expect(await rows.first().locator('td').allTextContents()).toEqual([expect.any(String), 'GET', '/api/<b>x</b>', 'api', '502', 'ERR_BAD_GATEWAY'])
    expect(await page.getByTestId('recent-errors-empty').isHidden()).toBe(true)
    expect(await page.locator('b').count()).toBe(0) // client text stays text
    expect(errors).toEqual([])
    await page.screenshot({ path: '.test-results/dashboard-harness.png', fullPage: true })
    console.log('dashboard screenshot (scripted stats): .test-results/dashboard-harness.png')

    // A failing poll shows as disconnected, and the page recovers on the next good one.
    await show(503)
    await expect.poll(() => text('connection'), { timeout: 10_000 }).toBe('disconnected')
    expect(await text('connection-detail')).toBe('HTTP 503')
    expect(await page.evaluate(() => document.body.classList.contains('disconnected'))).toBe(true)
    await show(snapshot(9000, { requests: 60, errors5xx: 3, cumulative: [46, 47, 52, 57, 60] }, true, [failure]))
    await expect.poll(() => text('connection'), { timeout: 10_000 }).toBe('connected')
    expect(await page.evaluate(() => document.body.classList.contains('disconnected'))).toBe(false)
    expect(errors.every((e) => e.includes('503'))).toBe(true) // only the browser's note of the failed poll
    expect(outside).toEqual([])
  }, 90_000)
})

const T0 = 1_733_112_000_000

/** A /stats snapshot `ms` after T0 with one route `api` on upstream `backend` (two endpoints). */
function snapshot(ms: number, api: { requests: number; errors5xx: number; cumulative: number[] }, bothHealthy: boolean, recentErrors: DashboardStats['recentErrors']): DashboardStats {
  const latency = hist(api.cumulative)
  const endpoint = (port: number, healthy: boolean) => ({ url: `http://127.0.0.1:${port}`, healthy, circuit: healthy ? ('closed' as const) : ('open' as const), inFlight: 0, latencyEwmaMs: 1.3 })
  return {
    time: T0 + ms,
    uptimeS: 10 + ms / 1000,
    totals: { requests: api.requests, errors5xx: api.errors5xx, inFlight: 1 },
    routes: [{ name: 'api', upstream: 'backend', requests: api.requests, byClass: { '1xx': 0, '2xx': api.requests - api.errors5xx, '3xx': 0, '4xx': 0, '5xx': api.errors5xx }, latency, p50Ms: 1, p99Ms: 9 }],
    upstreams: [
      {
        name: 'backend',
        healthy: bothHealthy ? 2 : 1,
        total: 2,
        saturated: 0,
        requests: api.requests,
        errors5xx: api.errors5xx,
        latency,
        p50Ms: 1,
        p99Ms: 9,
        endpoints: [endpoint(3001, bothHealthy), endpoint(3002, true)],
      },
    ],
    recentErrors,
  }
}

interface Harness {
  readonly port: number
  /** What each dashboard `serve()` resolved. */
  readonly served: boolean[]
  /** Requests for `/admin/stats`. */
  readonly statsRequests: Array<{ url: string; authorization: string | undefined }>
  /** The next `/admin/stats` answer: a snapshot, or a status to fail with. */
  stats: DashboardStats | number
}

/**
 * A node:http server in front of one dashboard, standing in for the admin handler: the token gate
 * (Bearer or `?token=`), the dashboard at `/` and at `/admin/dashboard`, JSON errors.
 */
async function harness(options: DashboardOptions): Promise<Harness> {
  const dashboard = createDashboard(options)
  const state: Harness = { port: 0, served: [], statsRequests: [], stats: 404 }
  const server: Server = createServer((req, res) => {
    const parsed = parseTarget(req.url ?? '/')
    if (typeof parsed === 'string') return void res.writeHead(400).end()
    const ex = new NodeExchange(req, res, parsed.target, parsed.path, parsed.query, parsed.normalized, req.socket.remoteAddress ?? '', false)
    const fail = (status: number, code: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...ex.responseHeaders })
      res.end(JSON.stringify({ error: { code, message: code } }))
    }
    const bearer = req.headers.authorization === `Bearer ${TOKEN}`
    if (!bearer && new URLSearchParams(parsed.query).get('token') !== TOKEN) return fail(401, 'ERR_UNAUTHORIZED')
    const path = parsed.normalized
    if (path === '/admin/stats') {
      state.statsRequests.push({ url: parsed.target, authorization: req.headers.authorization })
      if (typeof state.stats === 'number') return fail(state.stats, 'ERR_SCRIPTED')
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify(state.stats))
    }
    const prefix = '/admin/dashboard'
    const sub = path === prefix || path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path
    dashboard.serve(ex, sub).then(
      (served) => {
        state.served.push(served)
        if (!served) fail(404, 'ERR_NOT_FOUND')
      },
      (err: unknown) => (isGatewayError(err) ? fail(err.status, err.code) : fail(500, 'ERR_INTERNAL')),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return Object.assign(state, { port: (server.address() as AddressInfo).port })
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
