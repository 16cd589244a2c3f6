// The `cors` policy behind real sockets: preflights stop at the gateway, errors keep their CORS headers.
import { request as httpRequest } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { definePolicy, OptionReader, UnauthorizedError } from '@switchboard/core'
import { GatewayRegistry } from '../src/index.ts'
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers.ts'

const APP = 'http://127.0.0.1:5173'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})
async function upstream(...args: Parameters<typeof startUpstream>): Promise<TestUpstream> {
  const u = await startUpstream(...args)
  cleanup.push(() => u.close())
  return u
}
async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args)
  cleanup.push(() => g.close())
  return g
}

/** Builtins plus `cors` (until it is in `builtinPolicies`) and a `need-key` policy answering 401. */
function registry(): GatewayRegistry {
  const r = new GatewayRegistry()
  r.registerPolicy(
    definePolicy({
      name: 'need-key',
      parse: (raw, at) => {
        new OptionReader(raw, at).done()
        return {}
      },
      create: () => async (ex, next) => {
        if (ex.request.headers['x-key'] !== 'ok') throw new UnauthorizedError()
        await next()
      },
    }),
  )
  return r
}

/** One request over a fresh connection; resolves with status, lowercase headers and body. */
function send(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function corsGateway(options: Record<string, unknown> = {}): Promise<{ gw: TestGateway; up: TestUpstream }> {
  const up = await upstream((req, res) => {
    // An upstream with its own (wider) CORS opinion: the gateway's policy must win.
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', vary: 'Accept-Encoding' })
    res.end(JSON.stringify({ method: req.method, url: req.url }))
  })
  const gw = await gateway(
    {
      policies: {
        web: { use: 'cors', origins: [APP, 'https://*.example.com'], credentials: true, maxAge: '10m', exposedHeaders: ['x-total'], ...options },
        key: { use: 'need-key' },
      },
      server: { policies: ['web'], shutdownTimeout: '1s' },
      upstreams: { live: { targets: [up.url] }, dead: { targets: ['http://127.0.0.1:9'], retries: 0 } },
      routes: [
        { name: 'private', match: { path: '/private/*' }, upstream: 'live', policies: ['key'] },
        { name: 'dead', match: { path: '/dead' }, upstream: 'dead' },
        { name: 'api', match: { path: '/api/*' }, upstream: 'live' },
      ],
    },
    { registry: registry() },
  )
  return { gw, up }
}

describe('gateway: cors policy over real sockets', () => {
  it('answers an allowed preflight itself (204, allow headers, max-age) without the upstream seeing it', async () => {
    const { gw, up } = await corsGateway()
    const res = await send(`${gw.url}/api/items`, 'OPTIONS', { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-trace' })
    expect(res.status).toBe(204)
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
      'access-control-allow-headers': 'x-trace',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers',
    })
    expect(res.body).toBe('')
    expect(up.requests).toEqual([])
  })

  it('refuses a preflight from another origin with 403 and no CORS headers, without the upstream seeing it', async () => {
    const { gw, up } = await corsGateway()
    const res = await send(`${gw.url}/api/items`, 'OPTIONS', { origin: 'http://127.0.0.1:5174', 'access-control-request-method': 'PUT' })
    expect(res.status).toBe(403)
    expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    expect(res.headers.vary).toBe('Origin')
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } })
    expect(up.requests).toEqual([])
  })

  it('passes a plain OPTIONS (no Access-Control-Request-Method) to the upstream', async () => {
    const { gw, up } = await corsGateway()
    const res = await send(`${gw.url}/api/items`, 'OPTIONS', { origin: APP })
    expect(res.status).toBe(200)
    expect(up.requests.map((r) => r.method)).toEqual(['OPTIONS'])
    expect(res.headers['access-control-allow-origin']).toBe(APP)
  })

  it('decorates simple responses for allowed origins and pattern matches, and overrides the upstream', async () => {
    const { gw, up } = await corsGateway()
    const ok = await send(`${gw.url}/api/items`, 'GET', { origin: APP })
    expect(ok.status).toBe(200)
    expect(ok.headers).toMatchObject({ 'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-total', vary: 'Accept-Encoding, Origin' })
    const sub = await send(`${gw.url}/api/items`, 'GET', { origin: 'https://shop.example.com' })
    expect(sub.headers['access-control-allow-origin']).toBe('https://shop.example.com')
    // The upstream's `*` must not leak to an origin the policy refuses.
    const other = await send(`${gw.url}/api/items`, 'GET', { origin: 'https://example.com' })
    expect(other.status).toBe(200)
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
    expect(other.headers.vary).toBe('Accept-Encoding, Origin')
    const none = await send(`${gw.url}/api/items`, 'GET')
    expect(none.headers['access-control-allow-origin']).toBeUndefined()
    expect(up.requests).toHaveLength(4)
  })

  it('keeps the CORS headers on 401, 404 and 502 answers', async () => {
    const { gw } = await corsGateway()
    for (const [path, status] of [['/private/x', 401], ['/nowhere', 404], ['/dead', 502]] as const) {
      const res = await send(`${gw.url}${path}`, 'GET', { origin: APP })
      expect(res.status, path).toBe(status)
      expect(res.headers['access-control-allow-origin'], path).toBe(APP)
      expect(res.headers['access-control-allow-credentials'], path).toBe('true')
      expect(res.headers.vary, path).toContain('Origin')
    }
    // A preflight for a path no route serves is still answered: server policies run before routing.
    const pre = await send(`${gw.url}/nowhere`, 'OPTIONS', { origin: APP, 'access-control-request-method': 'DELETE' })
    expect(pre.status).toBe(204)
  })

  it('answers * without Vary: Origin when origins is [*] and credentials are off', async () => {
    const { gw } = await corsGateway({ origins: ['*'], credentials: false })
    const res = await send(`${gw.url}/api/items`, 'GET', { origin: 'https://anyone.test' })
    expect(res.headers['access-control-allow-origin']).toBe('*')
    expect(res.headers['access-control-allow-credentials']).toBeUndefined()
    expect(res.headers.vary).toBe('Accept-Encoding')
  })

  it('refuses origins [*] with credentials at config time, naming the key', async () => {
    await expect(corsGateway({ origins: ['*'] })).rejects.toThrow(/policies\.web\.origins: expected a list of origins or patterns when credentials is true/)
  })
})
