import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { cleanup, httpServer, proxyServer, rawRequest, rawValues, request } from './helpers.ts'

afterEach(cleanup)

/** An upstream that records what it received and answers with `respond`. */
async function recordingUpstream(respond?: (res: import('node:http').ServerResponse) => void) {
  const seen: IncomingMessage[] = []
  const upstream = await httpServer((req, res) => {
    seen.push(req)
    req.resume()
    req.on('end', () => (respond ? respond(res) : res.end('ok')))
  })
  return { ...upstream, seen }
}

describe('request headers', () => {
  it('drops hop-by-hop fields and the fields listed in Connection', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url)
    const res = await rawRequest(proxy.port, [
      'GET / HTTP/1.1',
      'Host: 127.0.0.1',
      'Connection: close, X-Secret, x-other',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'Upgrade: h2c',
      'Trailer: x-t',
      'Proxy-Authorization: Basic Zm9vOmJhcg==',
      'X-Secret: hidden',
      'X-Other: hidden',
      'X-Kept: yes',
    ])
    expect(res).toMatch(/^HTTP\/1\.1 200 /)
    const got = upstream.seen[0].headers
    for (const name of ['keep-alive', 'proxy-connection', 'te', 'upgrade', 'trailer', 'proxy-authorization', 'x-secret', 'x-other']) {
      expect(got[name], name).toBeUndefined()
    }
    // undici manages its own connection header ("keep-alive") — never the client's list.
    expect(got.connection ?? '').not.toMatch(/x-secret/i)
    expect(got['x-kept']).toBe('yes')
  })

  it('appends the real client IP to a trusted X-Forwarded-For and keeps duplicate fields', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { trustForwarded: () => true })
    await request(proxy.url, {
      headers: ['Host', '127.0.0.1', 'X-Forwarded-For', '203.0.113.7', 'x-forwarded-for', '198.51.100.1', 'Cookie', 'a=1', 'Cookie', 'b=2'],
    })
    const seen = upstream.seen[0]
    expect(seen.headers['x-forwarded-for']).toMatch(/^203\.0\.113\.7, 198\.51\.100\.1, (::ffff:)?127\.0\.0\.1$/)
    expect(rawValues(seen.rawHeaders, 'cookie')).toEqual(['a=1', 'b=2'])
  })

  it('adds X-Forwarded-For when the client sent none', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { clientIp: '192.0.2.10' })
    await request(proxy.url)
    expect(upstream.seen[0].headers['x-forwarded-for']).toBe('192.0.2.10')
  })

  it('replaces client-sent X-Forwarded-Proto and X-Forwarded-Host (not spoofable)', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { proto: 'https' })
    await request(proxy.url, {
      headers: ['Host', 'shop.example', 'X-Forwarded-Proto', 'gopher', 'X-Forwarded-Host', 'evil.example'],
    })
    const seen = upstream.seen[0]
    expect(rawValues(seen.rawHeaders, 'x-forwarded-proto')).toEqual(['https'])
    expect(rawValues(seen.rawHeaders, 'x-forwarded-host')).toEqual(['shop.example'])
  })

  it('preserves the client Host and forwards the target byte-exact', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url)
    await request(proxy.url, { path: '/a//b/%2e%2e/c?x=%20&y=a+b', headers: { host: 'api.example:8443' } })
    expect(upstream.seen[0].url).toBe('/a//b/%2e%2e/c?x=%20&y=a+b')
    expect(rawValues(upstream.seen[0].rawHeaders, 'host')).toEqual(['api.example:8443'])
  })

  it('adds Via both ways, appending to existing values', async () => {
    const upstream = await recordingUpstream((res) => res.writeHead(200, { via: '1.1 origin-cache' }).end())
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url, { headers: { via: '1.0 corp-proxy' } })
    expect(upstream.seen[0].headers.via).toBe('1.0 corp-proxy, 1.1 switchboard')
    expect(res.headers.via).toBe('1.1 origin-cache, 1.1 switchboard')
  })

  it('applies header overrides last and removes undefined ones', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, {
      headers: { 'X-User': 'alice', authorization: undefined, 'x-forwarded-proto': 'https' },
      via: false,
    })
    await request(proxy.url, { headers: { 'x-user': 'mallory', authorization: 'Bearer t' } })
    const seen = upstream.seen[0]
    expect(rawValues(seen.rawHeaders, 'x-user')).toEqual(['alice'])
    expect(seen.headers.authorization).toBeUndefined()
    expect(rawValues(seen.rawHeaders, 'x-forwarded-proto')).toEqual(['https'])
    expect(seen.headers.via).toBeUndefined()
  })

  it('does not forward Expect', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url, { method: 'POST', headers: { expect: '100-continue', 'content-length': '2' }, body: 'hi' })
    expect(res.status).toBe(200)
    expect(upstream.seen[0].headers.expect).toBeUndefined()
  })
})

describe('response headers', () => {
  it('drops hop-by-hop fields and Connection-listed fields, keeps the rest', async () => {
    const upstream = await httpServer((_req, res) => {
      res.writeHead(200, 'Fine Thanks', [
        'Connection', 'x-internal',
        'Keep-Alive', 'timeout=99',
        'X-Internal', 'secret',
        'Proxy-Authenticate', 'Basic',
        'Trailer', 'x-checksum',
        'Upgrade', 'h2c',
        'Set-Cookie', 'a=1',
        'Set-Cookie', 'b=2',
        'Content-Type', 'text/plain',
      ])
      res.end('body')
    })
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url)
    expect(res.status).toBe(200)
    expect(res.statusMessage).toBe('Fine Thanks')
    expect(res.body.toString()).toBe('body')
    for (const name of ['x-internal', 'proxy-authenticate', 'trailer', 'upgrade']) expect(res.headers[name], name).toBeUndefined()
    expect(res.headers['keep-alive'] ?? '').not.toContain('99')
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    expect(res.headers['content-type']).toBe('text/plain')
  })

  it('applies responseHeaders and onResponseHead', async () => {
    const upstream = await httpServer((_req, res) => res.writeHead(200, { 'x-powered-by': 'php', 'x-a': '1' }).end('x'))
    const proxy = await proxyServer(upstream.url, {
      responseHeaders: { 'X-A': '2' },
      onResponseHead: (status, headers) => {
        headers['x-status'] = String(status)
        headers['x-powered-by'] = undefined
      },
    })
    const res = await request(proxy.url)
    expect(res.headers['x-a']).toBe('2')
    expect(res.headers['x-status']).toBe('200')
    expect(res.headers['x-powered-by']).toBeUndefined()
  })
})
