// Seed 004 tenants through the gateway, over real sockets: clients with their own keys, a secret
// injected upstream, method and path allow-lists, the POST /proxy envelope and the passthrough.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import { sha256Tag } from '../src/config/clients.ts'
import { bodyOf, rawRequest, statusOf, type TestUpstream, useFixtures } from './helpers.ts'

const { upstream, gateway } = useFixtures()

const SECRET = 'Bearer sk-provider-secret-7f3a9c'
const ROBOT_KEY = 'rk-robot-key-0123456789'
const CI_KEY = 'ci-key-abcdefabcdef'

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

function call(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) }, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const envelope = (port: number, key: string | undefined, payload: unknown): Promise<Reply> =>
  call(port, 'POST', '/proxy', { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, typeof payload === 'string' ? payload : JSON.stringify(payload))

async function setup(handler?: Parameters<typeof upstream>[0], extra: Record<string, unknown> = {}): Promise<{ port: number; provider: TestUpstream; logs: string[]; url: string }> {
  const provider = await upstream(handler, { recordBodies: true })
  const logs: string[] = []
  const raw = {
    server: { shutdownTimeout: '1s' },
    admin: true,
    targets: { provider: { baseUrl: `${provider.url}/api/v1`, defaultHeaders: { 'Content-Type': 'application/json; charset=utf-8', 'X-Title': 'switchboard' } } },
    secrets: { provider_key: SECRET },
    clients: {
      robot: { key: ROBOT_KEY, target: 'provider', authHeaderRef: 'provider_key', allowedMethods: ['POST'], allowedPaths: ['/chat/completions'], timeoutMs: 400 },
      ci: { keyHash: sha256Tag(CI_KEY), target: 'provider', authHeaderRef: 'provider_key', allowedPaths: ['/models/*', '/files/*/content'] },
      'rk-legacy': { target: 'provider', authHeaderRef: 'provider_key' },
    },
    ...extra,
  }
  const gw = await gateway(raw, { logger: (level, message, fields) => logs.push(JSON.stringify({ level, message, ...fields })) })
  return { port: gw.port, provider, logs, url: gw.url }
}

describe('tenants (clients:) through the gateway', () => {
  it('the /proxy envelope reaches the target with the secret, never the client key, and the target host', async () => {
    const { port, provider } = await setup()
    const r = await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'Hello!' }] } })
    expect(r.status).toBe(200)
    const seen = provider.requests.at(-1)!
    expect(seen.method).toBe('POST')
    expect(seen.url).toBe('/api/v1/chat/completions')
    expect(seen.headers.authorization).toBe(SECRET)
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(ROBOT_KEY)
    expect(seen.headers.host).toBe(`127.0.0.1:${provider.port}`)
    expect(seen.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(seen.headers['x-title']).toBe('switchboard')
    expect(JSON.parse(seen.body!.toString())).toEqual({ model: 'm', messages: [{ role: 'user', content: 'Hello!' }] })
    expect(r.body).not.toContain('sk-provider')
  })

  it('passthrough: the client calls the target path on the gateway with its key', async () => {
    const { port, provider } = await setup()
    const r = await call(port, 'POST', '/chat/completions?stream=false', { authorization: `Bearer ${ROBOT_KEY}`, 'content-type': 'application/json' }, '{"model":"m"}')
    expect(r.status).toBe(200)
    const seen = provider.requests.at(-1)!
    expect(seen.url).toBe('/api/v1/chat/completions?stream=false')
    expect(seen.headers.authorization).toBe(SECRET)
    expect(seen.body!.toString()).toBe('{"model":"m"}')
    // keyHash and name-as-key clients authenticate too.
    expect((await call(port, 'GET', '/models/gpt', { authorization: `Bearer ${CI_KEY}` })).status).toBe(200)
    expect((await call(port, 'GET', '/files/abc/content', { authorization: `bearer ${CI_KEY}` })).status).toBe(200)
    expect((await call(port, 'GET', '/anything', { authorization: 'Bearer rk-legacy' })).status).toBe(200)
  })

  it('refuses: 401 for a missing or wrong key (with a challenge), 403 for a method or path not allowed, 400 for tricks', async () => {
    const { port, provider } = await setup()
    const before = provider.requests.length
    const missing = await envelope(port, undefined, { method: 'POST', path: '/chat/completions' })
    expect(missing.status).toBe(401)
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="proxy"')
    expect(JSON.parse(missing.body).error.code).toBe('ERR_UNAUTHORIZED')
    expect((await envelope(port, `${ROBOT_KEY}x`, { method: 'POST', path: '/chat/completions' })).status).toBe(401)
    expect((await envelope(port, CI_KEY.slice(0, -1), { method: 'GET', path: '/models/x' })).status).toBe(401)
    // Passthrough without a key asks for one instead of 404.
    expect((await call(port, 'POST', '/chat/completions', {}, '{}')).status).toBe(401)
    const method = await envelope(port, ROBOT_KEY, { method: 'GET', path: '/chat/completions' })
    expect(method.status).toBe(403)
    expect(JSON.parse(method.body).error.code).toBe('ERR_FORBIDDEN')
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/models' })).status).toBe(403)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions/../../admin' })).status).toBe(403)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/x/../chat/completions' })).status).toBe(200)
    expect(provider.requests.at(-1)!.url).toBe('/api/v1/chat/completions')
    const countAfterOk = provider.requests.length
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat%2Fcompletions' })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/../chat/completions' })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: 'chat/completions' })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', headers: { Authorization: 'Bearer other' } })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', headers: { Host: 'evil' } })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', headers: { 'Transfer-Encoding': 'chunked' } })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', headers: { 'X-Ok': 'a\r\nInjected: 1' } })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', extra: 1 })).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, '{not json')).status).toBe(400)
    expect((await envelope(port, ROBOT_KEY, [1, 2])).status).toBe(400)
    expect((await call(port, 'GET', '/proxy', { authorization: `Bearer ${ROBOT_KEY}` })).status).toBe(405)
    expect((await call(port, 'GET', '/chat/completions', { authorization: `Bearer ${ROBOT_KEY}` })).status).toBe(403)
    expect((await call(port, 'POST', '/chat%2Fcompletions', { authorization: `Bearer ${ROBOT_KEY}` }, '{}')).status).toBe(400)
    expect(provider.requests.length).toBe(countAfterOk)
    expect(before).toBe(0)
  })

  it('an oversized envelope is 413 and the connection pool stays healthy', async () => {
    const { port } = await setup(undefined, { proxy: { maxBodySize: '1kb' } })
    const big = await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', body: 'x'.repeat(4096) })
    expect(big.status).toBe(413)
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions', body: 'small' })).status).toBe(200)
  })

  it('query and headers from the envelope go upstream; client headers describing the envelope do not', async () => {
    const { port, provider } = await setup()
    const r = await call(
      port,
      'POST',
      '/proxy',
      { authorization: `Bearer ${CI_KEY}`, 'content-type': 'application/json', cookie: 'session=1', 'x-extra': 'client', accept: 'application/json' },
      JSON.stringify({ method: 'GET', path: '/models/list?limit=5', query: { page: 2, tag: ['a', 'b'] }, headers: { 'X-Request-Tag': 't1' } }),
    )
    expect(r.status).toBe(200)
    const seen = provider.requests.at(-1)!
    expect(seen.method).toBe('GET')
    expect(seen.url).toBe('/api/v1/models/list?limit=5&page=2&tag=a&tag=b')
    expect(seen.headers['x-request-tag']).toBe('t1')
    expect(seen.headers.cookie).toBeUndefined()
    expect(seen.headers['x-extra']).toBeUndefined()
    expect(seen.headers.accept).toBe('application/json')
  })

  it('streams an SSE answer event by event through the envelope', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const { port } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write('data: {"n":1}\n\n')
      void gate.then(() => {
        res.write('data: {"n":2}\n\n')
        res.end('data: [DONE]\n\n')
      })
    })
    const events: string[] = []
    const done = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/proxy', headers: { authorization: `Bearer ${ROBOT_KEY}`, 'content-type': 'application/json' }, agent: false }, (res) => {
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          events.push(c)
          // The first event arrived while the provider still holds the rest: streamed, not buffered.
          if (events.length === 1) release()
        })
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end(JSON.stringify({ method: 'POST', path: '/chat/completions', body: { stream: true } }))
    })
    expect(await done).toBe(200)
    expect(events[0]).toBe('data: {"n":1}\n\n')
    expect(events.join('')).toBe('data: {"n":1}\n\ndata: {"n":2}\n\ndata: [DONE]\n\n')
  })

  it("the client's timeoutMs bounds the wait for the head: 504, not a hang", async () => {
    const { port } = await setup((req, res) => {
      if (req.url?.includes('slow')) return // never answers
      res.end('ok')
    }, { clients: { robot: { key: ROBOT_KEY, target: 'provider', authHeaderRef: 'provider_key', allowedPaths: ['/slow'], timeoutMs: 300 } } })
    const r = await envelope(port, ROBOT_KEY, { method: 'POST', path: '/slow' })
    expect(r.status).toBe(504)
    expect(JSON.parse(r.body).error.code).toBe('ERR_UPSTREAM_TIMEOUT')
  })

  it('the secret and the client keys appear in no log line, error body or admin view', async () => {
    const { port, logs } = await setup()
    await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions' })
    await envelope(port, 'wrong-key', { method: 'POST', path: '/chat/completions' })
    await envelope(port, ROBOT_KEY, { method: 'GET', path: '/chat/completions' })
    const config = await call(port, 'GET', '/admin/config', {})
    expect(config.status).toBe(200)
    const everything = [...logs, config.body].join('\n')
    for (const secret of ['sk-provider-secret', ROBOT_KEY, CI_KEY, sha256Tag(ROBOT_KEY).slice(7)]) expect(everything).not.toContain(secret)
    expect(JSON.parse(config.body).config.clients.robot.target).toBe('provider')
    // The name-as-key client was warned about at start.
    expect(logs.some((l) => l.includes('clients.rk-legacy') && l.includes('"warn"'))).toBe(true)
  })

  it('proxy.policies run once the client is known: a rate limit keyed by client', async () => {
    const { port } = await setup(undefined, {
      policies: { perClient: { use: 'rate-limit', algorithm: 'fixed-window', limit: '2/min', key: 'client' } },
      proxy: { policies: ['perClient'] },
    })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions' })).status)
    expect(statuses).toEqual([200, 200, 429])
    // Another client has its own budget.
    expect((await envelope(port, CI_KEY, { method: 'GET', path: '/models/a' })).status).toBe(200)
  })

  it('refuses bad tenant config with the key path', async () => {
    const { parseConfig } = await import('../src/index.ts')
    const base = { targets: { p: { baseUrl: 'http://127.0.0.1:9' } }, secrets: { s: 'Bearer x' } }
    expect(() => parseConfig({ ...base, clients: { a: { target: 'nope' } } })).toThrow(/clients\.a\.target/)
    expect(() => parseConfig({ ...base, clients: { a: { target: 'p', authHeaderRef: 'missing' } } })).toThrow(/clients\.a\.authHeaderRef/)
    expect(() => parseConfig({ ...base, clients: { a: { target: 'p', keyHash: 'md5:abc' } } })).toThrow(/clients\.a\.keyHash/)
    expect(() => parseConfig({ ...base, clients: { a: { target: 'p', key: 'same' }, b: { target: 'p', key: 'same' } } })).toThrow(/clients\.b\.key/)
    expect(() => parseConfig({ ...base, clients: { a: { target: 'p', allowedPaths: ['chat'] } } })).toThrow(/clients\.a\.allowedPaths\[0\]/)
    expect(() => parseConfig({ ...base, secrets: { s: '${MISSING_SECRET_VAR}' }, clients: { a: { target: 'p' } } }, { env: {} })).toThrow(/secrets\.s/)
    expect(() => parseConfig({ ...base, targets: { p: { baseUrl: 'ftp://x' } }, clients: { a: { target: 'p' } } })).toThrow(/targets\.p\.baseUrl/)
  })

  it('a raw request with a hostile envelope keeps the connection usable for the next client', async () => {
    const { port } = await setup()
    const bad = await rawRequest(port, `POST /proxy HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${ROBOT_KEY}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{{{{{`)
    expect(statusOf(bad.text)).toBe(400)
    expect(JSON.parse(bodyOf(bad.text)).error.code).toBe('ERR_BAD_REQUEST')
    expect((await envelope(port, ROBOT_KEY, { method: 'POST', path: '/chat/completions' })).status).toBe(200)
  })
})
