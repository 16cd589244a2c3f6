import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import type { HeaderRecord, ResponseTap } from '@switchboard/core'
import { createUpstreamPool, forward } from '../src/index.ts'
import { cleanup, httpServer, once, proxyServer, rawServer, request } from './helpers.ts'

afterEach(cleanup)

/** A tap that records what it saw. */
function recordingTap(keep = true) {
  const seen = { head: undefined as [number, HeaderRecord] | undefined, data: '', ended: false, aborted: undefined as unknown }
  const tap: ResponseTap = {
    onHead: (status, headers) => {
      seen.head = [status, headers]
      return keep
    },
    onData: (chunk) => (seen.data += new TextDecoder().decode(chunk)),
    onEnd: () => (seen.ended = true),
    onAbort: (error) => (seen.aborted = error),
  }
  return { tap, seen }
}

describe('tap', () => {
  it('observes head, data and end of a streamed response', async () => {
    const upstream = await httpServer((_req, res) => {
      res.writeHead(201, { 'x-a': '1' })
      res.write('ab')
      res.end('cd')
    })
    const { tap, seen } = recordingTap()
    const proxy = await proxyServer(upstream.url, { tap })
    const res = await request(proxy.url)
    expect(res.body.toString()).toBe('abcd')
    expect(seen.head?.[0]).toBe(201)
    expect(seen.head?.[1]['x-a']).toBe('1')
    expect(seen.data).toBe('abcd')
    expect(seen.ended).toBe(true)
    expect(seen.aborted).toBeUndefined()
  })

  it('is detached when onHead returns false, and told about truncations', async () => {
    const upstream = await httpServer((_req, res) => res.end('abcd'))
    const detached = recordingTap(false)
    const proxy = await proxyServer(upstream.url, { tap: detached.tap })
    await request(proxy.url)
    expect(detached.seen.head?.[0]).toBe(200)
    expect(detached.seen.data).toBe('')
    expect(detached.seen.ended).toBe(false)

    const broken = await rawServer((socket) =>
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')),
    )
    const { tap, seen } = recordingTap()
    const proxy2 = await proxyServer(broken.url, { tap })
    await expect(request(proxy2.url)).rejects.toThrow()
    expect(seen.data).toBe('abc')
    expect(seen.ended).toBe(false)
    expect(seen.aborted).toBeInstanceOf(Error)
  })
})

describe('signal', () => {
  it('aborts the upstream request and resolves aborted', async () => {
    let upstreamClosed!: () => void
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve))
    const upstream = await httpServer((_req, res) => {
      res.writeHead(200)
      res.write('x')
      res.on('close', upstreamClosed)
    })
    const controller = new AbortController()
    const proxy = await proxyServer(upstream.url, { signal: controller.signal })
    const req = http.get(`${proxy.url}/`, { agent: false })
    req.on('error', () => {})
    const res = await once<http.IncomingMessage>(req, 'response')
    res.on('error', () => {})
    await once(res, 'data')
    const clientClosed = once(res, 'close')
    controller.abort()
    await closed
    await clientClosed
    expect(res.complete).toBe(false)
    expect(await proxy.next()).toMatchObject({ status: 200, aborted: true })
  })
})

describe('createUpstreamPool', () => {
  it('reports connections opening and closing', async () => {
    const upstream = await httpServer((_req, res) => res.end('ok'))
    let opened = 0
    let closed = 0
    const pool = createUpstreamPool(`${upstream.url}/ignored/path`, { onConnect: () => opened++, onDisconnect: () => closed++ })
    expect(pool.origin).toBe(upstream.url)
    const { url } = await httpServer((req, res) => void forward(req, res, { pool }))
    expect((await request(url)).body.toString()).toBe('ok')
    expect(opened).toBe(1)
    await pool.close()
    expect(closed).toBe(1)
  })

  it('rejects bad options naming the option', () => {
    expect(() => createUpstreamPool('http://127.0.0.1:1', { connections: 0 })).toThrow(/connections must be a positive integer/)
    expect(() => createUpstreamPool('http://127.0.0.1:1', { connectTimeoutMs: 1.5 })).toThrow(/connectTimeoutMs/)
    expect(() => createUpstreamPool('ftp://127.0.0.1:1')).toThrow(/http: or https:/)
    expect(() => createUpstreamPool('not a url')).toThrow(/absolute/)
  })

  it('forward() refuses a pool it did not make', async () => {
    const upstream = await httpServer((_req, res) => res.end())
    let failure: unknown
    const { url } = await httpServer((req, res) => {
      try {
        const fake = { origin: upstream.url, close: async () => {}, destroy: async () => {}, stats: () => ({ connected: 0, busy: 0, pending: 0, queued: 0, size: 0 }), saturated: false }
        void forward(req, res, { pool: fake })
      } catch (error) {
        failure = error
        res.writeHead(500).end()
      }
    })
    expect((await request(url)).status).toBe(500)
    expect(String(failure)).toMatch(/createUpstreamPool/)
  })
})

describe('a client already gone', () => {
  it('never reaches the upstream when the signal is already aborted', async () => {
    let requests = 0
    const upstream = await httpServer((_req, res) => {
      requests++
      res.end()
    })
    const proxy = await proxyServer(upstream.url, { signal: AbortSignal.abort() })
    await expect(request(proxy.url)).rejects.toThrow() // the client connection is cut
    expect(await proxy.next()).toEqual({ status: 0, bytesSent: 0, aborted: true, reason: 'signal' })
    expect(requests).toBe(0)
  })
})
