import { Agent, request as httpRequest } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { bodyOf, rawRequest, simpleConfig, startGateway, startUpstream, statusOf, type TestGateway, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

describe('gateway: routing and forwarding', () => {
  it('proxies through the contract config shape and answers its own /health', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url]))
    const res = await fetch(`${gw.url}/api/users?id=7`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ upstream: 'upstream', method: 'GET', url: '/api/users?id=7' })
    const health = await fetch(`${gw.url}/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok', upstreams: { backend: { healthy: 1, total: 1, saturated: 0 } } })
  })

  it('routes by path to different upstreams, most specific first', async () => {
    const a = await upstream(undefined, { name: 'a' })
    const b = await upstream(undefined, { name: 'b' })
    const gw = await gateway({
      upstreams: { a: { targets: [a.url] }, b: { targets: [b.url] } },
      routes: [
        { name: 'all', match: { path: '/*' }, upstream: 'a' },
        { name: 'api', match: { path: '/api/*' }, upstream: 'b' },
      ],
    })
    expect((await (await fetch(`${gw.url}/api/x`)).json()).upstream).toBe('b')
    expect((await (await fetch(`${gw.url}/other`)).json()).upstream).toBe('a')
    expect((await (await fetch(`${gw.url}/`)).json()).upstream).toBe('a')
  })

  it('answers 404 JSON when no route matches', async () => {
    const up = await upstream()
    const gw = await gateway({ upstreams: { a: { targets: [up.url] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'a' }] })
    const res = await fetch(`${gw.url}/nope`)
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: { code: 'ERR_NO_ROUTE', message: 'No route matches this request' } })
    expect(up.requests).toHaveLength(0)
  })

  it('strips a prefix and edits headers both ways', async () => {
    const up = await upstream((req, res) => {
      res.writeHead(200, { 'x-internal': 'secret', 'content-type': 'text/plain' })
      res.end(`${req.url} ${req.headers['x-tenant']} ${req.headers.cookie ?? 'no-cookie'}`)
    })
    const gw = await gateway(
      simpleConfig([up.url], {
        route: {
          match: { path: '/svc/*' },
          rewrite: { stripPrefix: '/svc' },
          requestHeaders: { set: { 'x-tenant': 't1' }, remove: ['cookie'] },
          responseHeaders: { set: { 'x-frame-options': 'DENY' }, remove: ['x-internal'] },
        },
      }),
    )
    const res = await fetch(`${gw.url}/svc/items/1?q=2`, { headers: { cookie: 'a=b' } })
    expect(await res.text()).toBe('/items/1?q=2 t1 no-cookie')
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('x-internal')).toBeNull()
  })

  it('routes by JSON payload and forwards the body byte for byte; 413 past the limit', async () => {
    const a = await upstream(undefined, { name: 'a', recordBodies: true })
    const b = await upstream(undefined, { name: 'b', recordBodies: true })
    const gw = await gateway({
      server: { limits: { maxBodySize: '1kb' } },
      upstreams: { a: { targets: [a.url] }, b: { targets: [b.url] } },
      routes: [
        { name: 'backup', match: { path: '/get_log_files', payload: [{ name: 'backup_log.log', path: 'd:/backup/logs' }] }, upstream: 'b' },
        { name: 'rest', match: { path: '/*' }, upstream: 'a' },
      ],
    })
    const body = '{ "path": "d:/backup/logs",   "name": "backup_log.log" }'
    const res = await fetch(`${gw.url}/get_log_files`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    expect((await res.json()).upstream).toBe('b')
    expect(b.requests[0].body?.toString()).toBe(body)
    const other = await fetch(`${gw.url}/get_log_files`, { method: 'POST', body: '{"name":"x"}' })
    expect((await other.json()).upstream).toBe('a')
    expect(a.requests[0].body?.toString()).toBe('{"name":"x"}')
    const big = await fetch(`${gw.url}/get_log_files`, { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(2000) }) })
    expect(big.status).toBe(413)
    expect((await big.json()).error.code).toBe('ERR_PAYLOAD_TOO_LARGE')
  })
})

describe('gateway: request body limit', () => {
  it('413 for a declared body over server.limits.maxRequestBodySize; nothing reaches the upstream', async () => {
    const up = await upstream(undefined, { recordBodies: true })
    const gw = await gateway(simpleConfig([up.url], { server: { limits: { maxRequestBodySize: '100kb' } } }))
    const res = await fetch(`${gw.url}/upload`, { method: 'POST', body: 'x'.repeat(200 * 1024) })
    expect(res.status).toBe(413)
    expect((await res.json()).error.code).toBe('ERR_PAYLOAD_TOO_LARGE')
    expect(up.requests).toHaveLength(0)
    const ok = await fetch(`${gw.url}/upload`, { method: 'POST', body: 'x'.repeat(50 * 1024) })
    expect(ok.status).toBe(200)
  })
})

describe('gateway: upstream failures', () => {
  it('502 JSON when the upstream refuses the connection', async () => {
    const up = await upstream()
    const deadUrl = up.url
    await up.close()
    const gw = await gateway(simpleConfig([deadUrl]))
    const res = await fetch(`${gw.url}/x`)
    expect(res.status).toBe(502)
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    expect((await res.json()).error.code).toBe('ERR_BAD_GATEWAY')
  })

  it('504 JSON when the upstream does not answer within timeouts.response', async () => {
    const up = await upstream(() => {}) // never answers
    const gw = await gateway(simpleConfig([up.url], { upstream: { timeouts: { response: '200ms' }, retries: 0 } }))
    const res = await fetch(`${gw.url}/slow`)
    expect(res.status).toBe(504)
    expect((await res.json()).error).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT', phase: 'response' })
  })

  it('retries an idempotent GET on another endpoint, never a POST', async () => {
    const dead = await startUpstream()
    const deadUrl = dead.url
    await dead.close()
    const live = await upstream(undefined, { name: 'live' })
    const gw = await gateway(simpleConfig([deadUrl, live.url]))
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/get-${i}`)
      expect(res.status).toBe(200)
    }
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${gw.url}/post-${i}`, { method: 'POST', body: 'x' })).status)
    // Round-robin alternates: half the POSTs hit the dead endpoint and are not replayed.
    expect(statuses.filter((s) => s === 502)).toHaveLength(2)
    expect(live.requests.filter((r) => r.method === 'POST')).toHaveLength(2)
  })

  it('503 ERR_NO_HEALTHY_UPSTREAM when active health checks mark every endpoint down', async () => {
    const up = await startUpstream()
    const deadUrl = up.url
    await up.close()
    const gw = await gateway(
      simpleConfig([deadUrl], { upstream: { healthCheck: { interval: '1h', timeout: '200ms', unhealthyThreshold: 1 } } }),
    )
    await gw.gateway.upstream('backend')!.checker.checkNow()
    const res = await fetch(`${gw.url}/x`)
    expect(res.status).toBe(503)
    expect((await res.json()).error.code).toBe('ERR_NO_HEALTHY_UPSTREAM')
    const health = await fetch(`${gw.url}/health`)
    expect(health.status).toBe(503)
  })
})

describe('gateway: request hardening (raw sockets)', () => {
  async function setup(server: Record<string, unknown> = {}): Promise<{ gw: TestGateway; up: TestUpstream }> {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url], { server }))
    return { gw, up }
  }

  it.each([
    ['Content-Length with Transfer-Encoding', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['duplicate differing Content-Length', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['invalid Content-Length', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello'],
    ['bad chunk framing', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['Transfer-Encoding not ending in chunked', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
    ['a bad request line', 'GET /x HTTP/1.1 extra\r\nHost: a\r\n\r\n'],
    ['a control byte in a header value', 'GET /x HTTP/1.1\r\nHost: a\r\nX-Evil: a\x01b\r\n\r\n'],
    ['a space before the header colon', 'GET /x HTTP/1.1\r\nHost: a\r\nX-Evil : 1\r\n\r\n'],
    ['duplicate Host', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['a path escaping the root', 'GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('400 for %s, nothing reaches the upstream, connection closed', async (_label, bytes) => {
    const { gw, up } = await setup()
    const { text, closed } = await rawRequest(gw.port, bytes)
    expect(statusOf(text)).toBe(400)
    expect(JSON.parse(bodyOf(text)).error.code).toBe('ERR_BAD_REQUEST')
    expect(closed).toBe(true)
    expect(up.requests).toHaveLength(0)
  })

  it('431 when the request head exceeds maxHeaderBytes', async () => {
    const { gw, up } = await setup({ limits: { maxHeaderBytes: '2kb' } })
    const { text } = await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`)
    expect(statusOf(text)).toBe(431)
    expect(up.requests).toHaveLength(0)
  })

  it('408 and close when the head does not arrive within headersTimeout (slowloris)', async () => {
    const { gw, up } = await setup({ limits: { headersTimeout: '300ms' } })
    const { text, closed } = await rawRequest(gw.port, ['GET /x HTTP/1.1\r\n', 'Host: a\r\n'], { idleMs: 5000 })
    expect(statusOf(text)).toBe(408)
    expect(closed).toBe(true)
    expect(up.requests).toHaveLength(0)
  })

  it('408 and close when a request body goes silent longer than bodyIdleTimeout', async () => {
    const up = await upstream(undefined, { recordBodies: true })
    const gw = await gateway(simpleConfig([up.url], { server: { limits: { bodyIdleTimeout: '300ms' } } }))
    const { text, closed } = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', { idleMs: 5000 })
    // The upstream may already have the head; the client gets 408 or a truncated exchange, never a hang.
    expect(closed).toBe(true)
    expect([408, 0]).toContain(statusOf(text))
    expect(up.requests.every((r) => r.body === undefined || r.body.length < 10)).toBe(true)
  })

  it('refuses CONNECT with 405', async () => {
    const { gw, up } = await setup()
    const { text, closed } = await rawRequest(gw.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    expect(statusOf(text)).toBe(405)
    expect(closed).toBe(true)
    expect(up.requests).toHaveLength(0)
  })

  it('never connects to the host named in an absolute-form target', async () => {
    const { gw, up } = await setup()
    const { text } = await rawRequest(gw.port, 'GET http://169.254.169.254/latest/meta-data?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statusOf(text)).toBe(200)
    expect(up.requests[0].url).toBe('/latest/meta-data?x=1')
  })

  it('forwards the request target byte-exact', async () => {
    const { gw, up } = await setup()
    const { text } = await rawRequest(gw.port, 'GET /a//b/%2e%2e/c;x=1?q=%20&r=a+b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statusOf(text)).toBe(200)
    expect(up.requests[0].url).toBe('/a//b/%2e%2e/c;x=1?q=%20&r=a+b')
  })

  it('answers Expect: 100-continue, then streams the body upstream', async () => {
    const up = await upstream(undefined, { recordBodies: true })
    const gw = await gateway(simpleConfig([up.url]))
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/upload`, { method: 'POST', headers: { expect: '100-continue', 'content-length': 5 } })
      req.on('continue', () => req.end('hello'))
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
    })
    expect(status).toBe(200)
    expect(up.requests[0].body?.toString()).toBe('hello')
    expect(up.requests[0].headers.expect).toBeUndefined()
  })

  it('serves an h2c upgrade request as plain HTTP/1.1 without tunnelling it', async () => {
    const { gw, up } = await setup()
    const { text } = await rawRequest(
      gw.port,
      'GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    )
    expect(statusOf(text)).toBe(200)
    expect(up.requests[0].headers.upgrade).toBeUndefined()
  })
})

describe('gateway: connections and shutdown', () => {
  it('reuses keep-alive connections on both sides', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url]))
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const clientSockets = new Set<unknown>()
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/k${i}`, { agent }, (res) => {
          clientSockets.add(res.socket)
          res.resume()
          res.on('end', resolve)
        })
        req.on('error', reject)
        req.end()
      })
    }
    agent.destroy()
    expect(clientSockets.size).toBe(1)
    expect(up.requests).toHaveLength(20)
    expect(up.connections).toBe(1)
  })

  it('on close(): stops accepting, lets the in-flight request finish', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const up = await upstream((_req, res) => {
      void held.then(() => res.end('finished'))
    })
    const gw = await startGateway(simpleConfig([up.url]))
    const inflight = fetch(`${gw.url}/slow`).then(async (r) => ({ status: r.status, text: await r.text() }))
    while (gw.gateway.inFlight === 0) await new Promise((r) => setTimeout(r, 10))
    const closed = gw.close()
    await new Promise((r) => setTimeout(r, 50))
    await expect(fetch(`${gw.url}/new`)).rejects.toThrow()
    release()
    expect(await inflight).toEqual({ status: 200, text: 'finished' })
    await closed
  })
})
