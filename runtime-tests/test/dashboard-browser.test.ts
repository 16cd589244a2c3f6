// A real Chromium opens the admin dashboard of the *built* CLI (run by the runtime running this
// test) on the admin listener, with every request that leaves 127.0.0.1 blocked: while a loop sends
// traffic the figures move, and when one of the two endpoints stops, its health shows it.
import { Agent, createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, RUNTIME, startGatewayProcess } from './harness.ts'
import { hasChromium, useChromium } from '../../scripts/chromium.mjs'


const TOKEN = 'dashboard-browser-admin-token-0123456789'

const browserOf = useChromium()

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

/** An upstream endpoint answering every request (health checks included) with 200; `stop()` closes it for good. */
async function endpoint(): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' })
    res.end(req.method === 'HEAD' ? undefined : 'ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }))
  cleanup.push(stop)
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stop }
}

function yaml(targets: string[], adminPort: number): string {
  return `server:
  host: 127.0.0.1
  shutdownTimeout: 2s
admin:
  listen: 127.0.0.1:${adminPort}
  token: \${ADMIN_TOKEN}
upstreams:
  backend:
    balancer: round-robin
    targets:
${targets.map((url) => `      - url: ${url}`).join('\n')}
    healthCheck:
      path: /health
      interval: 200ms
      timeout: 500ms
      unhealthyThreshold: 2
      healthyThreshold: 1
routes:
  - name: api
    match: { path: /api/* }
    upstream: backend
`
}

/** GET with an optional bearer token: the status and body. */
function get(url: string, token?: string, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, agent: agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

describe(`admin dashboard of the built CLI on ${RUNTIME}, in Chromium`, () => {
  // Skipped only where /usr/bin/chromium is missing outside CI (CI throws above instead).
  it.skipIf(!hasChromium)('shows live figures while traffic flows and an endpoint going down, offline, without console errors', async () => {
    const a = await endpoint()
    const b = await endpoint()
    const adminPort = await freePort()
    const gw = await startGatewayProcess(yaml([a.url, b.url], adminPort), { ADMIN_TOKEN: TOKEN })
    cleanup.push(() => gw.stop('SIGKILL'))
    const admin = `http://127.0.0.1:${adminPort}`
    await expect.poll(async () => (await get(`${admin}/admin/stats`, TOKEN).catch(() => ({ status: 0 }))).status, { timeout: 10_000 }).toBe(200)

    // Without the token (or with another one) the page answers 401; the secret never shows in an answer.
    for (const url of [`${admin}/`, `${admin}/?token=wrong-token-0123456789abcdefghij`, `${admin}/assets/dashboard.js`]) {
      const res = await get(url)
      expect(res.status, url).toBe(401)
      expect(res.body).not.toContain(TOKEN)
    }

    // Traffic: one request after another until the test ends (a stopped endpoint may cost a few 502s).
    let traffic = true
    let sent = 0
    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    const loop = (async () => {
      while (traffic) {
        await get(`${gw.url}/api/ping`, undefined, agent).catch(() => undefined)
        sent++
        await new Promise((r) => setTimeout(r, 5))
      }
    })()
    cleanup.push(async () => {
      traffic = false
      await loop
      agent.destroy()
    })

    const context = await browserOf()!.newContext({ viewport: { width: 1280, height: 900 } })
    cleanup.push(() => context.close())
    const requested: string[] = []
    const blocked: string[] = []
    await context.route('**', (route) => {
      const url = new URL(route.request().url())
      requested.push(url.href)
      if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname === '127.0.0.1') return route.continue()
      blocked.push(url.href)
      return route.abort('blockedbyclient')
    })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text())
    })
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
    const failed: string[] = []
    page.on('requestfailed', (req) => failed.push(`${req.url()} ${req.failure()?.errorText ?? ''}`))
    const text = (id: string): Promise<string | null> => page.getByTestId(id).textContent({ timeout: 10_000 })

    const res = await page.goto(`${admin}/?token=${encodeURIComponent(TOKEN)}`)
    expect(res?.status()).toBe(200)
    await expect.poll(() => text('connection'), { timeout: 10_000 }).toBe('connected')
    expect(page.url()).toBe(`${admin}/`) // the token left the address bar ...
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.admin.token'))).toBe(TOKEN) // ... for the session

    // The figures come alive and keep moving while traffic flows; so do the charts.
    await expect.poll(async () => Number(await text('route-api-rps')), { timeout: 15_000 }).toBeGreaterThan(0)
    await expect.poll(async () => Number(await text('upstream-backend-rps')), { timeout: 15_000 }).toBeGreaterThan(0)
    expect(Number(await text('route-api-p50'))).toBeGreaterThan(0)
    expect(Number(await text('route-api-p99'))).toBeGreaterThanOrEqual(Number(await text('route-api-p50')))
    expect(await text('route-api-errors')).toBe('0.0')
    const first = { rps: await text('route-api-rps'), requests: await text('totals-requests'), points: Number(await page.getByTestId('route-api').getAttribute('data-points')) }
    await expect.poll(() => text('route-api-rps'), { timeout: 15_000 }).not.toBe(first.rps)
    await expect.poll(() => text('totals-requests'), { timeout: 15_000 }).not.toBe(first.requests)
    await expect.poll(async () => Number(await page.getByTestId('route-api').getAttribute('data-points')), { timeout: 15_000 }).toBeGreaterThan(first.points)
    expect(await page.getByTestId('route-api-charts').locator('canvas').count()).toBe(2)
    expect(await page.getByTestId('upstream-backend-charts').locator('canvas').count()).toBe(2)
    expect(await text(`endpoint-${a.url}-health`)).toBe('healthy')
    expect(await text(`endpoint-${b.url}-health`)).toBe('healthy')
    expect(await text('upstream-backend-health')).toBe('2/2 healthy')

    // One endpoint stops: the health checks (every 200 ms) mark it, and the page shows it within seconds.
    await b.stop()
    await expect.poll(() => text(`endpoint-${b.url}-health`), { timeout: 10_000 }).toBe('unhealthy')
    expect(await text(`endpoint-${a.url}-health`)).toBe('healthy')
    await expect.poll(() => text('upstream-backend-health'), { timeout: 5_000 }).toBe('1/2 healthy')
    // Traffic still flows through the other endpoint.
    const after = await text('totals-requests')
    await expect.poll(() => text('totals-requests'), { timeout: 15_000 }).not.toBe(after)

    await page.screenshot({ path: '.test-results/dashboard.png', fullPage: true })
    console.log(`dashboard screenshot (${RUNTIME}): .test-results/dashboard.png`)
    // A reload of the page (its address has no token any more) is let in by the session cookie.
    const reloaded = await page.reload()
    expect(reloaded?.status()).toBe(200)
    await expect.poll(() => text('connection'), { timeout: 10_000 }).toBe('connected')
    traffic = false
    expect(sent).toBeGreaterThan(0)
    expect(errors).toEqual([])
    expect(blocked).toEqual([])
    expect(failed).toEqual([])
    expect(requested.every((u) => new URL(u).host === `127.0.0.1:${adminPort}`)).toBe(true)
    expect(requested).toEqual(expect.arrayContaining([`${admin}/assets/uPlot.iife.min.js?token=${TOKEN}`, `${admin}/assets/dashboard.js?token=${TOKEN}`, `${admin}/admin/stats`]))
    expect(gw.output()).not.toContain(TOKEN)
  }, 120_000)
})
