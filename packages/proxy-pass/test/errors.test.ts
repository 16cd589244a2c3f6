import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { BadGatewayError, UpstreamTimeoutError } from '@switchboard/core'
import { mapUpstreamError } from '../src/index.ts'
import { cleanup, once, proxyServer, rawServer, request } from './helpers.ts'

afterEach(cleanup)

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** An upstream that reads the request head, then writes `reply` (and closes if asked). */
function replying(reply: string, close = true) {
  return rawServer((socket) => {
    socket.once('data', () => {
      socket.write(reply)
      if (close) socket.end()
    })
  })
}

describe('before the response head: forward rejects, nothing written', () => {
  it('refused connection → 502 ERR_BAD_GATEWAY', async () => {
    const proxy = await proxyServer(`http://127.0.0.1:${await closedPort()}`)
    const res = await request(proxy.url)
    expect(res.status).toBe(502)
    expect(res.headers['content-type']).toBe('application/json')
    expect(JSON.parse(res.body.toString())).toEqual({ error: { code: 'ERR_BAD_GATEWAY', message: 'Bad gateway' } })
    const outcome = await proxy.next()
    expect(outcome).toBeInstanceOf(BadGatewayError)
    expect((outcome as BadGatewayError).cause).toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('no response head within responseTimeoutMs → 504 phase response', async () => {
    const upstream = await rawServer(() => {}) // accepts, reads, never answers
    const proxy = await proxyServer(upstream.url, { responseTimeoutMs: 150 })
    const res = await request(proxy.url)
    expect(res.status).toBe(504)
    expect(JSON.parse(res.body.toString()).error).toEqual({
      code: 'ERR_UPSTREAM_TIMEOUT',
      message: 'Upstream response timeout',
      phase: 'response',
    })
  })

  it('maps undici connect timeouts to 504 phase connect (unit: loopback cannot stall a connect)', () => {
    const error = mapUpstreamError(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }))
    expect(error).toBeInstanceOf(UpstreamTimeoutError)
    expect(error.status).toBe(504)
    expect((error as UpstreamTimeoutError).phase).toBe('connect')
    expect(mapUpstreamError(Object.assign(new Error('x'), { code: 'UND_ERR_BODY_TIMEOUT' })).toJSON().error.phase).toBe('idle')
    expect(mapUpstreamError(Object.assign(new Error('x'), { code: 'ECONNRESET' })).status).toBe(502)
    expect(mapUpstreamError(new Error('anything'))).toBeInstanceOf(BadGatewayError)
  })

  it('upstream resets before the head → 502', async () => {
    const upstream = await rawServer((socket) => socket.once('data', () => socket.resetAndDestroy?.() ?? socket.destroy()))
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url)
    expect(res.status).toBe(502)
  })

  it.each([
    ['an invalid status line', 'HELLO WORLD\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['duplicate differing Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['a header line without colon', 'HTTP/1.1 200 OK\r\nbroken header\r\n\r\n'],
  ])('garbage head (%s) → 502', async (_name, reply) => {
    const upstream = await replying(reply)
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url)
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_BAD_GATEWAY')
  })

  it('a POST the upstream resets is sent exactly once and answered 502', async () => {
    let requests = 0
    const upstream = await rawServer((socket) => {
      socket.on('data', (chunk) => {
        if (chunk.toString('latin1').startsWith('POST')) requests++
        socket.destroy()
      })
    })
    const proxy = await proxyServer(upstream.url)
    const res = await request(proxy.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'order #1' })
    expect(res.status).toBe(502)
    expect(requests).toBe(1)
    expect(upstream.connections()).toBe(1)
  })
})

describe('after the response head: the client sees a truncation, never a clean end', () => {
  it('upstream reset mid-body', async () => {
    let upstreamSocket: net.Socket | undefined
    const upstream = await rawServer((socket) => {
      upstreamSocket = socket
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial'))
    })
    const proxy = await proxyServer(upstream.url)
    const req = http.get(`${proxy.url}/`, { agent: false })
    const res = await once<http.IncomingMessage>(req, 'response')
    expect(res.statusCode).toBe(200)
    let ended = false
    res.on('end', () => (ended = true))
    res.resume()
    upstreamSocket!.destroy()
    await once(res, 'close')
    expect(ended && res.complete).toBe(false)
    expect(res.complete).toBe(false)
    expect(await proxy.next()).toMatchObject({ status: 200, bytesSent: 7, aborted: true })
  })

  it('bad chunk framing mid-body', async () => {
    const upstream = await replying('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnope\r\n')
    const proxy = await proxyServer(upstream.url)
    await expect(request(proxy.url)).rejects.toThrow()
    expect(await proxy.next()).toMatchObject({ status: 200, bytesSent: 5, aborted: true })
  })

  it('silence longer than idleTimeoutMs inside the body', async () => {
    const upstream = await replying('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello', false)
    const proxy = await proxyServer(upstream.url, { idleTimeoutMs: 150 })
    await expect(request(proxy.url)).rejects.toThrow()
    expect(await proxy.next()).toMatchObject({ status: 200, bytesSent: 5, aborted: true })
  })
})
