// A real Chromium enforces CORS: a page on one origin (127.0.0.1:PORT_A) fetches the gateway on
// another (127.0.0.1:PORT_B) and the browser decides what the page may read.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { definePolicy, OptionReader } from '@switchboard/core'
import { GatewayRegistry } from '../src/index.ts'
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers.ts'
import { hasChromium, useChromium } from '../../../scripts/chromium.mjs'


/** What the gateway saw of each request, before any policy answered it. */
interface Seen {
  method: string
  path: string
  origin?: string
  requestMethod?: string
  requestHeaders?: string
  cookie?: string
}

/** What the page got from one `fetch()`. */
type Outcome = { ok: true; status: number; body: { method: string; cookie: string | null; trace: string | null }; total: string | null } | { ok: false; error: string }

const browserOf = useChromium()

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

interface Setup {
  page: Page
  context: BrowserContext
  gw: TestGateway
  up: TestUpstream
  seen: Seen[]
  pageOrigin: string
  /** Runs `fetch(gateway + path, init)` inside the page. */
  fetchFromPage(path: string, init?: { method?: string; headers?: Record<string, string>; credentials?: 'include' | 'same-origin' | 'omit' }): Promise<Outcome>
}

async function setup(): Promise<Setup> {
  // PORT_A: the page's own origin, a plain node:http server.
  const pageServer: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><meta charset="utf-8"><title>app</title><p>app')
  })
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise<void>((resolve) => pageServer.close(() => resolve())))
  const pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`

  const up = await startUpstream((req, res) => {
    const body = JSON.stringify({ method: req.method, cookie: req.headers.cookie ?? null, trace: req.headers['x-trace'] ?? null })
    res.writeHead(200, { 'content-type': 'application/json', 'x-total': '3' })
    res.end(body)
  })
  cleanup.push(() => up.close())

  const seen: Seen[] = []
  const registry = new GatewayRegistry()
  registry.registerPolicy(
    definePolicy({
      name: 'spy',
      parse: (raw, at) => {
        new OptionReader(raw, at).done()
        return {}
      },
      create: () => async (ex, next) => {
        const h = ex.request.headers
        const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
        seen.push({
          method: ex.request.method,
          path: ex.request.path,
          origin: str(h.origin),
          requestMethod: str(h['access-control-request-method']),
          requestHeaders: str(h['access-control-request-headers']),
          cookie: str(h.cookie),
        })
        await next()
      },
    }),
  )
  const gw = await startGateway(
    {
      policies: {
        spy: { use: 'spy' },
        app: { use: 'cors', origins: [pageOrigin], credentials: true, maxAge: '10m', exposedHeaders: ['x-total'] },
        nocache: { use: 'cors', origins: [pageOrigin], credentials: true, maxAge: 0 },
        nocreds: { use: 'cors', origins: [pageOrigin], maxAge: '10m' },
        open: { use: 'cors', origins: ['*'], maxAge: '10m' },
        denied: { use: 'cors', origins: ['http://127.0.0.1:1', 'https://*.example.com'], credentials: true },
      },
      server: { policies: ['spy'], shutdownTimeout: '1s' },
      upstreams: { app: { targets: [up.url] } },
      routes: ['app', 'nocache', 'nocreds', 'open', 'denied'].map((name) => ({ name, match: { path: `/${name}/*` }, upstream: 'app', policies: [name] })),
    },
    { registry },
  )
  cleanup.push(() => gw.close())

  // A fresh context per test: its own cookie jar and its own preflight cache.
  const context = await browserOf()!.newContext()
  cleanup.push(() => context.close())
  await context.addCookies([{ name: 'sid', value: 'abc', url: gw.url, sameSite: 'Lax' }])
  const page = await context.newPage()
  await page.goto(`${pageOrigin}/`)
  expect(new URL(page.url()).origin).toBe(pageOrigin)
  return {
    page,
    context,
    gw,
    up,
    seen,
    pageOrigin,
    fetchFromPage: (path, init = {}) =>
      page.evaluate(
        async ({ url, init }) => {
          try {
            const res = await fetch(url, init)
            return { ok: true, status: res.status, body: await res.json(), total: res.headers.get('x-total') }
          } catch (error) {
            return { ok: false, error: `${(error as Error).constructor.name}: ${(error as Error).message}` }
          }
        },
        { url: `${gw.url}${path}`, init },
      ) as Promise<Outcome>,
  }
}

const upstreamSaw = (up: TestUpstream, method: string, path: string): number => up.requests.filter((r) => r.method === method && r.url === path).length
const preflightsFor = (seen: Seen[], path: string): Seen[] => seen.filter((s) => s.method === 'OPTIONS' && s.path === path)

describe.skipIf(!hasChromium)('gateway: cors in a real Chromium (skipped only when /usr/bin/chromium is missing outside CI)', () => {
  it('lets an allowed origin read the response and its exposed header', { timeout: 30_000 }, async () => {
    const s = await setup()
    const got = await s.fetchFromPage('/app/items')
    expect(got).toEqual({ ok: true, status: 200, body: { method: 'GET', cookie: null, trace: null }, total: '3' })
    expect(s.seen.at(-1)).toMatchObject({ method: 'GET', path: '/app/items', origin: s.pageOrigin })
  })

  it('rejects the fetch with a TypeError for a disallowed origin; a preflighted request never leaves the gateway', { timeout: 30_000 }, async () => {
    const s = await setup()
    const simple = await s.fetchFromPage('/denied/items')
    expect(simple).toMatchObject({ ok: false, error: expect.stringMatching(/^TypeError/) })
    // CORS guards reading: a simple GET is still sent (and answered), the page just cannot see it.
    expect(upstreamSaw(s.up, 'GET', '/denied/items')).toBe(1)
    const put = await s.fetchFromPage('/denied/items', { method: 'PUT', headers: { 'x-trace': 't1' } })
    expect(put).toMatchObject({ ok: false, error: expect.stringMatching(/^TypeError/) })
    expect(preflightsFor(s.seen, '/denied/items')).toHaveLength(1)
    expect(upstreamSaw(s.up, 'PUT', '/denied/items')).toBe(0)
    expect(upstreamSaw(s.up, 'OPTIONS', '/denied/items')).toBe(0)
  })

  it('sends cookies only with credentials: include, and only an echoed origin with Allow-Credentials lets the page read', { timeout: 30_000 }, async () => {
    const s = await setup()
    const included = await s.fetchFromPage('/app/me', { credentials: 'include' })
    expect(included).toMatchObject({ ok: true, status: 200, body: { cookie: 'sid=abc' } })
    const plain = await s.fetchFromPage('/app/me')
    expect(plain).toMatchObject({ ok: true, status: 200, body: { cookie: null } })

    // `Access-Control-Allow-Origin: *` is readable without credentials, refused by the browser with them.
    expect(await s.fetchFromPage('/open/me')).toMatchObject({ ok: true, body: { cookie: null } })
    expect(await s.fetchFromPage('/open/me', { credentials: 'include' })).toMatchObject({ ok: false, error: expect.stringMatching(/^TypeError/) })

    // An allowed origin without `credentials: true`: the credentialed read fails, and a
    // preflighted credentialed request is never sent, so the upstream never sees the cookie.
    expect(await s.fetchFromPage('/nocreds/me')).toMatchObject({ ok: true, body: { cookie: null } })
    expect(await s.fetchFromPage('/nocreds/me', { credentials: 'include' })).toMatchObject({ ok: false, error: expect.stringMatching(/^TypeError/) })
    expect(await s.fetchFromPage('/nocreds/put', { method: 'PUT', credentials: 'include' })).toMatchObject({ ok: false, error: expect.stringMatching(/^TypeError/) })
    expect(upstreamSaw(s.up, 'PUT', '/nocreds/put')).toBe(0)
    expect(preflightsFor(s.seen, '/nocreds/put')).toHaveLength(1)
  })

  it('preflights a PUT with a custom header at the gateway, then sends it with its cookie', { timeout: 30_000 }, async () => {
    const s = await setup()
    const got = await s.fetchFromPage('/app/items', { method: 'PUT', headers: { 'x-trace': 't1' }, credentials: 'include' })
    expect(got).toEqual({ ok: true, status: 200, body: { method: 'PUT', cookie: 'sid=abc', trace: 't1' }, total: '3' })
    const pre = preflightsFor(s.seen, '/app/items')
    expect(pre).toHaveLength(1)
    // Fetch §4.8: a preflight never carries credentials.
    expect(pre[0]).toMatchObject({ origin: s.pageOrigin, requestMethod: 'PUT', requestHeaders: 'x-trace', cookie: undefined })
    expect(upstreamSaw(s.up, 'OPTIONS', '/app/items')).toBe(0)
    expect(upstreamSaw(s.up, 'PUT', '/app/items')).toBe(1)
  })

  it('caches the preflight for maxAge (10m: one preflight for two PUTs) and not with maxAge 0', { timeout: 30_000 }, async () => {
    const s = await setup()
    for (const path of ['/app/cached', '/nocache/cached']) {
      for (let i = 0; i < 2; i++) {
        expect(await s.fetchFromPage(path, { method: 'PUT', headers: { 'x-trace': `t${i}` }, credentials: 'include' }), path).toMatchObject({ ok: true, status: 200 })
      }
    }
    expect(upstreamSaw(s.up, 'PUT', '/app/cached')).toBe(2)
    expect(preflightsFor(s.seen, '/app/cached')).toHaveLength(1)
    expect(upstreamSaw(s.up, 'PUT', '/nocache/cached')).toBe(2)
    expect(preflightsFor(s.seen, '/nocache/cached')).toHaveLength(2)
  })
})
