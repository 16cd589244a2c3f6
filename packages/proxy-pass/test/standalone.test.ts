import http from 'node:http'
import net from 'node:net'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { closeSharedPools, proxyFetch, proxyPass } from '../src/index.ts'
import { cleanup, defer, httpServer, request } from './helpers.ts'

afterEach(async () => {
  await cleanup()
  await closeSharedPools()
})

async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** An upstream echoing method, url, selected headers and body as JSON. */
function echoUpstream() {
  return httpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes', connection: 'keep-alive' })
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }))
    })
  })
}

describe('proxyPass', () => {
  it('proxies from a plain node:http server', async () => {
    const upstream = await echoUpstream()
    const { url } = await httpServer((req, res) => void proxyPass(req, res, upstream.url, { trustForwarded: () => true }))
    const res = await request(url, { method: 'POST', path: '/a//b?q=%20', headers: { 'x-forwarded-for': '10.0.0.1' }, body: 'hi' })
    expect(res.status).toBe(200)
    const echo = JSON.parse(res.body.toString())
    expect(echo).toMatchObject({ method: 'POST', url: '/a//b?q=%20', body: 'hi' })
    expect(echo.headers['x-forwarded-for']).toMatch(/^10\.0\.0\.1, (::ffff:)?127\.0\.0\.1$/)
    expect(res.headers['x-upstream']).toBe('yes')
    expect(res.headers.via).toBe('1.1 switchboard')
  })

  it('prefixes the path of the target', async () => {
    const upstream = await echoUpstream()
    const { url } = await httpServer((req, res) => void proxyPass(req, res, new URL(`${upstream.url}/api/`)))
    const res = await request(url, { path: '/users?id=1' })
    expect(JSON.parse(res.body.toString()).url).toBe('/api/users?id=1')
  })

  it('answers an unreachable upstream with 502 JSON', async () => {
    const target = `http://127.0.0.1:${await closedPort()}`
    const { url } = await httpServer((req, res) => void proxyPass(req, res, target))
    const res = await request(url)
    expect(res.status).toBe(502)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_BAD_GATEWAY')
  })

  it('reuses one pool (and its keep-alive sockets) per origin', async () => {
    const upstream = await echoUpstream()
    const { url } = await httpServer((req, res) => void proxyPass(req, res, upstream.url))
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    defer(() => agent.destroy())
    for (let i = 0; i < 5; i++) expect((await request(url, { agent })).status).toBe(200)
    expect(upstream.connections()).toBe(1)
  })
})

describe('proxyFetch', () => {
  it('forwards a Web Request and streams the body both ways', async () => {
    const upstream = await echoUpstream()
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('part1,'))
        controller.enqueue(new TextEncoder().encode('part2'))
        controller.close()
      },
    })
    const request = new Request('http://gateway.example/p//q?x=%20', {
      method: 'PUT',
      body,
      headers: { 'x-forwarded-proto': 'gopher', 'x-forwarded-for': '10.1.1.1', connection: 'x-drop', 'x-drop': '1' },
      duplex: 'half',
    } as RequestInit)
    const res = await proxyFetch(request, upstream.url, { clientIp: '192.0.2.1' })
    expect(res.status).toBe(200)
    expect(res.headers.get('via')).toBe('1.1 switchboard')
    expect(res.headers.get('connection')).toBeNull()
    const echo = await res.json()
    expect(echo).toMatchObject({ method: 'PUT', url: '/p//q?x=%20', body: 'part1,part2' })
    expect(echo.headers).toMatchObject({
      host: 'gateway.example',
      // Untrusted by default: the client's X-Forwarded-For and -Proto are replaced.
      'x-forwarded-for': '192.0.2.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '80',
      'x-forwarded-host': 'gateway.example',
      via: '1.1 switchboard',
    })
    expect(echo.headers['x-drop']).toBeUndefined()
  })

  it('passes compressed bytes through untouched', async () => {
    const gz = gzipSync('hello hello hello hello')
    const upstream = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(gz.length) }).end(gz)
    })
    const res = await proxyFetch(new Request('http://gw/x'), upstream.url)
    expect(res.headers.get('content-encoding')).toBe('gzip')
    expect(Buffer.from(await res.arrayBuffer()).equals(gz)).toBe(true)
  })

  it('delivers chunks before the upstream finishes, and cancel aborts the upstream', async () => {
    let upstreamClosed!: () => void
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve))
    const upstream = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n') // and never ends
      res.on('close', upstreamClosed)
    })
    const res = await proxyFetch(new Request('http://gw/events'), upstream.url)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toBe('data: one\n\n')
    await reader.cancel()
    await closed
  })

  it('answers HEAD without a body and failures with a JSON Response', async () => {
    const upstream = await httpServer((_req, res) => res.writeHead(200, { 'content-length': '3' }).end())
    const head = await proxyFetch(new Request('http://gw/', { method: 'HEAD' }), upstream.url)
    expect(head.status).toBe(200)
    expect(head.body).toBeNull()
    const failed = await proxyFetch(new Request('http://gw/'), `http://127.0.0.1:${await closedPort()}`)
    expect(failed.status).toBe(502)
    expect(failed.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect((await failed.json()).error.code).toBe('ERR_BAD_GATEWAY')
  })
})
