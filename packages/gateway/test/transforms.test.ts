import { request as httpRequest } from 'node:http'
import { describe, expect, it } from 'vitest'
import { rawRequest, startUpstream, statusOf, type TestUpstream, useFixtures } from './helpers.ts'

const { upstream, gateway } = useFixtures()

function config(up: TestUpstream, policies: Record<string, unknown>, route: Record<string, unknown>, server: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    policies,
    server: { shutdownTimeout: '1s', ...server },
    upstreams: { backend: { targets: [{ url: up.url }] } },
    routes: [{ name: 'main', match: { path: '/*' }, upstream: 'backend', ...route }],
  }
}

describe('headers over real sockets', () => {
  it('sends templated, added and renamed headers upstream and edits the response both ways', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-internal': 'secret', vary: 'accept' })
      res.end('ok')
    })
    const gw = await gateway(
      config(
        up,
        {
          trace: { use: 'request-id' },
          edit: {
            use: 'headers',
            request: {
              set: { 'x-client': '{client.ip}', 'x-user-id': '{route.params.id}', 'x-rid': '{request.id}', 'x-route': '{route.name}', 'x-echo': 'got {request.header.x-foo}' },
              add: { 'x-tags': 'gw' },
              rename: { 'x-old': 'x-new' },
            },
            response: { add: { vary: 'origin' }, rename: { 'x-internal': 'x-upstream-note' }, set: { 'x-served-for': '{route.params.id}' } },
          },
        },
        { name: 'users', match: { path: '/users/:id' }, policies: ['edit'] },
        { policies: ['trace'] },
      ),
    )
    const res = await fetch(`${gw.url}/users/42`, { headers: { 'x-foo': 'bar', 'x-tags': 'client', 'x-old': 'moved', 'x-request-id': 'rid-abc' } })
    expect(res.status).toBe(200)
    const seen = up.requests[0].headers
    expect(seen).toMatchObject({ 'x-client': '127.0.0.1', 'x-user-id': '42', 'x-rid': 'rid-abc', 'x-route': 'users', 'x-echo': 'got bar', 'x-tags': 'client, gw', 'x-new': 'moved' })
    expect(seen['x-old']).toBeUndefined()
    expect(res.headers.get('vary')).toBe('accept, origin')
    expect(res.headers.get('x-upstream-note')).toBe('secret')
    expect(res.headers.get('x-internal')).toBeNull()
    expect(res.headers.get('x-served-for')).toBe('42')
  })

  it('never injects a decoded CR/LF from a route param', async () => {
    const up = await upstream()
    const gw = await gateway(config(up, { edit: { use: 'headers', request: { set: { 'x-user-id': '{route.params.id}' } } } }, { match: { path: '/users/:id' }, policies: ['edit'] }))
    const { text } = await rawRequest(gw.port, 'GET /users/a%0D%0Ax-evil:%201 HTTP/1.1\r\nHost: x\r\nx-user-id: forged\r\nConnection: close\r\n\r\n')
    expect(statusOf(text)).toBe(200)
    expect(up.requests).toHaveLength(1)
    expect(up.requests[0].headers['x-evil']).toBeUndefined()
    expect(up.requests[0].headers['x-user-id']).toBeUndefined()
  })
})

describe('rewrite over real sockets', () => {
  it('sends the regex-rewritten path upstream, query kept', async () => {
    const up = await upstream()
    const gw = await gateway(config(up, { rw: { use: 'rewrite', regex: '^/api/v(\\d+)/(.*)$', replace: '/v$1/$2' } }, { policies: ['rw'] }))
    const res = await fetch(`${gw.url}/api/v2/users/7?active=1`)
    expect(res.status).toBe(200)
    expect(up.requests[0].url).toBe('/v2/users/7?active=1')
    await fetch(`${gw.url}/other?x=1`)
    expect(up.requests[1].url).toBe('/other?x=1')
  })

  it('refuses a catastrophic regex when the config is loaded', async () => {
    const up = await upstream()
    await expect(gateway(config(up, { rw: { use: 'rewrite', regex: '^/(a+)+$', replace: '/' } }, { policies: ['rw'] }))).rejects.toThrow(/policies\.rw\.regex/)
  })
})

describe('security-headers over real sockets', () => {
  it('decorates upstream 200s and the gateway 404, keeping what the upstream set', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'x-frame-options': 'SAMEORIGIN' })
      res.end('ok')
    })
    const raw = config(up, { sec: { use: 'security-headers', contentSecurityPolicy: "default-src 'self'" } }, { match: { path: '/app/*' } }, { policies: ['sec'] })
    const gw = await gateway(raw)
    const ok = await fetch(`${gw.url}/app/x`)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains')
    expect(ok.headers.get('x-content-type-options')).toBe('nosniff')
    expect(ok.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    expect(ok.headers.get('referrer-policy')).toBe('strict-origin-when-cross-origin')
    expect(ok.headers.get('content-security-policy')).toBe("default-src 'self'")
    const missing = await fetch(`${gw.url}/nowhere`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get('x-frame-options')).toBe('DENY')
    expect(missing.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains')
  })
})

describe('json-envelope over real sockets', () => {
  async function envelopeGateway(handler: Parameters<typeof startUpstream>[0], options: Record<string, unknown> = {}) {
    const up = await upstream(handler, { recordBodies: true })
    const gw = await gateway(config(up, { trace: { use: 'request-id' }, env: { use: 'json-envelope', ...options } }, { policies: ['env'] }, { policies: ['trace'] }))
    return { up, gw }
  }

  it('wraps a JSON 200 with the status and request id; a POST body still reaches the upstream', async () => {
    const { up, gw } = await envelopeGateway((req, res) => {
      const body = JSON.stringify({ got: req.method })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), etag: '"x"' })
      res.end(body)
    })
    const res = await fetch(`${gw.url}/items`, { headers: { 'x-request-id': 'rid-1' } })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ data: { got: 'GET' }, meta: { status: 200, requestId: 'rid-1' } })
    expect(res.headers.get('x-request-id')).toBe('rid-1')
    expect(res.headers.get('etag')).toBeNull()
    const post = await fetch(`${gw.url}/items`, { method: 'POST', body: '{"name":"n"}', headers: { 'content-type': 'application/json' } })
    const wrapped = (await post.json()) as { data: unknown; meta: { requestId: string } }
    expect(wrapped.data).toEqual({ got: 'POST' })
    expect(wrapped.meta.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(up.requests[1].body?.toString()).toBe('{"name":"n"}')
  })

  it('leaves non-JSON and over-limit responses untouched, wraps an upstream JSON 500', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(4096) })
    const { gw } = await envelopeGateway((req, res) => {
      if (req.url === '/fail') {
        res.writeHead(500, { 'content-type': 'application/json', 'content-length': '11' })
        return void res.end('{"err":"x"}')
      }
      if (req.url === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' })
        return void res.end('plain')
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) })
      res.end(big)
    }, { maxBytes: '1kb' })
    const text = await fetch(`${gw.url}/text`)
    expect(await text.text()).toBe('plain')
    const large = await fetch(`${gw.url}/large`)
    expect(await large.text()).toBe(big)
    // An upstream's own JSON error is wrapped; only the gateway's errors are not.
    const failed = await fetch(`${gw.url}/fail`)
    expect(failed.status).toBe(500)
    expect(((await failed.json()) as { data: unknown; meta: { status: number } })).toMatchObject({ data: { err: 'x' }, meta: { status: 500 } })
  })

  it('streams SSE through without buffering', async () => {
    let release: () => void = () => {}
    const { gw } = await envelopeGateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n')
      release = () => res.end('data: two\n\n')
    })
    // The first event arrives while the upstream still holds the stream open.
    const first = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/events`, (res) => {
        res.once('data', (c: Buffer) => {
          resolve(c.toString())
          release()
          res.resume()
        })
      })
      req.on('error', reject)
      req.end()
    })
    expect(first).toBe('data: one\n\n')
  })

  it('does not wrap the gateway’s own errors', async () => {
    const up = await upstream()
    await up.close()
    const gw = await gateway(config(up, { env: { use: 'json-envelope' } }, { policies: ['env'] }))
    const res = await fetch(`${gw.url}/x`)
    expect(res.status).toBe(502)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BAD_GATEWAY')
  })
})

describe('body-limit over real sockets', () => {
  it('answers 413 to a declared length over max and forwards nothing', async () => {
    const up = await upstream()
    const gw = await gateway(config(up, { small: { use: 'body-limit', max: 16 } }, { policies: ['small'] }))
    const over = await fetch(`${gw.url}/upload`, { method: 'POST', body: 'x'.repeat(17) })
    expect(over.status).toBe(413)
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('ERR_PAYLOAD_TOO_LARGE')
    expect(up.requests).toHaveLength(0)
    const within = await fetch(`${gw.url}/upload`, { method: 'POST', body: 'x'.repeat(16) })
    expect(within.status).toBe(200)
    expect(up.requests).toHaveLength(1)
  })

  it('with bufferChunked, answers 413 to a chunked upload growing past max and forwards nothing', async () => {
    const up = await upstream()
    const gw = await gateway(config(up, { small: { use: 'body-limit', max: 16, bufferChunked: true } }, { policies: ['small'] }))
    const { text } = await rawRequest(gw.port, [
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      'a\r\n0123456789\r\n',
      'a\r\n0123456789\r\n',
      '0\r\n\r\n',
    ], { gapMs: 20 })
    expect(statusOf(text)).toBe(413)
    expect(up.requests).toHaveLength(0)
  })

  it('cuts a streamed chunked upload past max without buffering it (the terminal honours the route limit)', async () => {
    let received = 0
    const up = await upstream((req, res) => {
      req.on('data', (c: Buffer) => (received += c.length))
      req.on('end', () => res.end('done'))
      req.on('error', () => {})
    })
    const gw = await gateway(config(up, { small: { use: 'body-limit', max: '64kb' } }, { policies: ['small'] }))
    const chunk = Buffer.alloc(16 * 1024, 'z')
    const parts: Array<string | Buffer> = ['POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n']
    for (let i = 0; i < 16; i++) parts.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n')
    parts.push('0\r\n\r\n')
    const { text } = await rawRequest(gw.port, parts, { gapMs: 5 })
    // 256 KiB offered, 64 KiB allowed: the upload is cut (413 when no response started yet).
    expect([413, 0]).toContain(statusOf(text))
    expect(received).toBeLessThanOrEqual(64 * 1024 + 16 * 1024)
  })
})
