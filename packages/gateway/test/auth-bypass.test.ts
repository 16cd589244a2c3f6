// The auth-bypass suite: a protected route next to public ones, attacked through every path trick
// an origin might read differently from the gateway. The upstream counts every request that
// arrives for a /private path without the identity the gateway adds after authentication: zero.
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { bodyOf, rawRequest, statusOf, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

const KEY = 'robot-key-0123456789abcdef'

/** Every way an origin might read a request path: decoded once, lower-cased, dots, params and backslashes folded. */
function originReadings(url: string): string[] {
  const path = url.split('?')[0]
  let decoded = path
  try {
    decoded = decodeURIComponent(path)
  } catch {}
  const forms = [path, decoded, decoded.replace(/\\/g, '/')]
  const out: string[] = []
  for (const f of forms) {
    const segments: string[] = []
    for (const raw of f.split('/')) {
      const seg = raw.split(';')[0].replace(/\.+$/, (m) => (raw === m ? m : '')).toLowerCase()
      if (seg === '' || seg === '.') continue
      if (seg === '..') segments.pop()
      else segments.push(seg)
    }
    out.push(`/${segments.join('/')}`)
  }
  return out
}

function isPrivate(url: string): boolean {
  return originReadings(url).some((p) => p === '/private' || p.startsWith('/private/'))
}

async function setup(extraRoutes: Record<string, unknown>[] = []): Promise<{ port: number; backend: TestUpstream; breaches: () => string[] }> {
  const backend = await upstream()
  const raw = {
    server: { shutdownTimeout: '1s' },
    upstreams: { backend: { targets: [backend.url], retries: 0 } },
    policies: { keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] } },
    routes: [
      { name: 'private', match: { path: '/private/*' }, upstream: 'backend', policies: ['keys'] },
      { name: 'public', match: { path: '/public/*' }, upstream: 'backend', public: true },
      ...extraRoutes,
    ],
  }
  const gw = await gateway(raw)
  const breaches = (): string[] => backend.requests.filter((r) => isPrivate(r.url) && r.headers['x-auth-subject'] !== 'robot').map((r) => r.url)
  return { port: gw.port, backend, breaches }
}

async function send(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; text: string }> {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: gw.test', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  const { text } = await rawRequest(port, `${lines.join('\r\n')}\r\n\r\n`, { idleMs: 2_000 })
  return { status: statusOf(text), text }
}

const TRICKS = [
  '/private/x',
  '/public/../private/x',
  '/public/%2e%2e/private/x',
  '/public/%2E%2E/private/x',
  '/public/.%2e/private/x',
  '//private/x',
  '/./private/x',
  '/%70rivate/x',
  '/private;jsessionid=1/x',
  '/public/..;/private/x',
  '/public;x/../private/x',
  '/private%2Fx',
  '/private%2fx',
  '/public%2F..%2Fprivate/x',
  '/public/..%2Fprivate/x',
  '/public/..%5Cprivate/x',
  '/public\\..\\private/x',
  '/PRIVATE/x',
  '/Private/x',
  '/private./x',
  '/private../x',
  '/PRIVATE./x',
  'http://gw.test/private/x',
  'http://other.example/public/../private/x',
]

describe('auth bypass: a protected route next to public ones', () => {
  for (const catchAll of [false, true]) {
    it(`no path trick reaches the protected upstream unauthenticated (${catchAll ? 'with' : 'without'} a public catch-all route)`, async () => {
      const extra = catchAll ? [{ name: 'rest', match: { path: '/*' }, upstream: 'backend', public: true }] : []
      const { port, backend, breaches } = await setup(extra)
      const results: Record<string, number> = {}
      for (const target of TRICKS) {
        for (const method of ['GET', 'POST', 'OPTIONS', 'DELETE']) {
          const r = await send(port, target, method === 'POST' ? { 'content-length': '0' } : {}, method)
          results[`${method} ${target}`] = r.status
          // Refused one way or another: 400 (ambiguous path), 401 (credentials), 404 (no route).
          expect([400, 401, 404], `${method} ${target}`).toContain(r.status)
        }
      }
      expect(breaches()).toEqual([])
      // The plain protected path asks for credentials with a challenge, and a short JSON body.
      const plain = await send(port, '/private/x')
      expect(plain.status).toBe(401)
      expect(plain.text).toMatch(/\r\nwww-authenticate: ApiKey /i)
      expect(JSON.parse(bodyOf(plain.text))).toEqual({ error: { code: 'ERR_UNAUTHORIZED', message: expect.any(String) } })
      // Sanity: the same tricks with the key get through where they mean /private (the counter works).
      const withKey = await send(port, '/public/../private/x', { 'x-api-key': KEY })
      expect(withKey.status).toBe(200)
      expect(backend.requests.at(-1)!.headers['x-auth-subject']).toBe('robot')
      expect(backend.requests.at(-1)!.headers['x-api-key']).toBeUndefined()
      expect(breaches()).toEqual([])
    })
  }

  it('public routes stay reachable, and a forged identity header never reaches the upstream', async () => {
    const { port, backend } = await setup()
    const r = await send(port, '/public/page', { 'x-auth-subject': 'admin', 'x-auth-method': 'jwt' })
    expect(r.status).toBe(200)
    const seen = backend.requests.at(-1)!
    expect(seen.headers['x-auth-subject']).toBeUndefined()
    expect(seen.headers['x-auth-method']).toBeUndefined()
    const forged = await send(port, '/private/x', { 'x-api-key': KEY, 'x-auth-subject': 'admin' })
    expect(forged.status).toBe(200)
    expect(backend.requests.at(-1)!.headers['x-auth-subject']).toBe('robot')
    expect(backend.requests.at(-1)!.rawHeaders.filter((h) => h.toLowerCase() === 'x-auth-subject')).toHaveLength(1)
    expect(backend.requests.at(-1)!.headers['x-auth-method']).toBe('api-key')
  })

  it('a wrong key is 401 and forwards nothing; method override headers never reach a protected upstream', async () => {
    const { port, backend, breaches } = await setup()
    const wrong = await send(port, '/private/x', { 'x-api-key': `${KEY}x` })
    expect(wrong.status).toBe(401)
    expect(backend.requests).toHaveLength(0)
    const overridden = await send(port, '/private/x', { 'x-api-key': KEY, 'x-http-method-override': 'DELETE', 'x-method-override': 'DELETE', 'content-length': '0' }, 'POST')
    expect(overridden.status).toBe(200)
    const seen = backend.requests.at(-1)!
    expect(seen.method).toBe('POST')
    expect(seen.headers['x-http-method-override']).toBeUndefined()
    expect(seen.headers['x-method-override']).toBeUndefined()
    expect(breaches()).toEqual([])
  })

  it('a WebSocket upgrade to the protected route without credentials is 401 and never reaches the upstream', async () => {
    const backend = await upstream()
    const wss = new WebSocketServer({ server: backend.server })
    let upgrades = 0
    wss.on('connection', () => upgrades++)
    cleanup.push(async () => wss.close())
    const gw = await gateway({
      server: { shutdownTimeout: '1s' },
      upstreams: { backend: { targets: [backend.url] } },
      policies: { keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] } },
      routes: [
        { name: 'private', match: { path: '/private/*' }, upstream: 'backend', policies: ['keys'] },
        { name: 'rest', match: { path: '/*' }, upstream: 'backend', public: true },
      ],
    })
    const upgrade = (path: string, extra = ''): Promise<string> =>
      new Promise((resolve) => {
        const s = connect(gw.port, '127.0.0.1')
        let text = ''
        s.on('data', (c: Buffer) => {
          text += c.toString('latin1')
          if (text.includes('\r\n\r\n')) s.destroy()
        })
        s.on('close', () => resolve(text))
        s.on('error', () => resolve(text))
        s.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`)
      })
    for (const path of ['/private/ws', '/public/../private/ws', '/PRIVATE/ws', '/private%2Fws']) {
      const text = await upgrade(path)
      expect([400, 401, 404], path).toContain(statusOf(text))
    }
    expect(upgrades).toBe(0)
    expect(statusOf(await upgrade('/private/ws', `x-api-key: ${KEY}\r\n`))).toBe(101)
    await new Promise((r) => setTimeout(r, 50))
    expect(upgrades).toBe(1)
  })
})
