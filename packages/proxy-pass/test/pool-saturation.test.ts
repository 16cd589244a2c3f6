import net from 'node:net'
import type { ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createUpstreamPool, PoolSaturatedError } from '../src/index.ts'
import { cleanup, defer, httpServer, proxyServer, request } from './helpers.ts'

afterEach(cleanup)

/** Resolves once `check()` is true; rejects after `ms` (a bound, not an assertion on time). */
async function waitFor(check: () => boolean, ms = 4_000): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Streams up to 64 MiB with backpressure on `/big`; answers `ok` elsewhere. */
async function bigUpstream() {
  let closedEarly = 0
  const upstream = await httpServer((req, res: ServerResponse) => {
    req.resume()
    if (req.url !== '/big') return void res.end('ok')
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const chunk = Buffer.alloc(64 * 1024, 0x62)
    let left = 1024
    const pump = (): void => {
      while (left > 0) {
        left--
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    res.on('close', () => {
      if (!res.writableFinished) closedEarly++
    })
    pump()
  })
  return { ...upstream, closedEarly: () => closedEarly }
}

/** A client that sends a request and never reads the response. */
function stuckClient(port: number, path: string): net.Socket {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`GET ${path} HTTP/1.1\r\nHost: stuck\r\n\r\n`)
  socket.pause()
  defer(() => void socket.destroy())
  return socket
}

describe('pool saturation', () => {
  it('a request that gets no connection within queueTimeoutMs is a 503 ERR_UPSTREAM_POOL_SATURATED', async () => {
    const upstream = await bigUpstream()
    const proxy = await proxyServer(upstream.url, {}, { connections: 2, queueTimeoutMs: 200 })
    stuckClient(proxy.port, '/big')
    stuckClient(proxy.port, '/big')
    await waitFor(() => proxy.pool.saturated)
    // Both sockets open and carrying the stuck responses (the second connect may still be in flight).
    await waitFor(() => proxy.pool.stats().busy === 2)
    expect(proxy.pool.stats()).toMatchObject({ connected: 2, busy: 2, queued: 0 })
    const res = await request(proxy.url, { path: '/ok' })
    expect(res.status).toBe(503)
    expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_UPSTREAM_POOL_SATURATED')
    const outcome = await proxy.next()
    expect(outcome).toBeInstanceOf(PoolSaturatedError)
    expect(proxy.pool.stats().queued).toBe(0) // the waiter left the queue
  })

  it('sendTimeoutMs cuts clients that stopped reading, and the pool recovers', async () => {
    const upstream = await bigUpstream()
    const proxy = await proxyServer(upstream.url, (req) => (req.url === '/big' ? { sendTimeoutMs: 300 } : {}), {
      connections: 2,
      queueTimeoutMs: 5_000,
    })
    stuckClient(proxy.port, '/big')
    stuckClient(proxy.port, '/big')
    await waitFor(() => proxy.pool.saturated)
    const cut = [await proxy.next(), await proxy.next()]
    for (const result of cut) expect(result).toMatchObject({ status: 200, aborted: true, reason: 'send-timeout' })
    await waitFor(() => upstream.closedEarly() === 2) // the upstream requests were aborted
    const res = await request(proxy.url, { path: '/ok' })
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe('ok')
    expect(proxy.pool.saturated).toBe(false)
  })

  it('a waiting request is admitted when a connection frees', async () => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const upstream = await httpServer(async (req, res) => {
      req.resume()
      if (req.url === '/hold') await held
      res.end(req.url)
    })
    const proxy = await proxyServer(upstream.url, {}, { connections: 1, queueTimeoutMs: 5_000 })
    const first = request(proxy.url, { path: '/hold' })
    await waitFor(() => proxy.pool.saturated)
    const second = request(proxy.url, { path: '/next' })
    await waitFor(() => proxy.pool.stats().queued === 1)
    release()
    expect((await first).body.toString()).toBe('/hold')
    expect((await second).body.toString()).toBe('/next')
  })

  it('validates queueTimeoutMs', () => {
    expect(() => createUpstreamPool('http://127.0.0.1:1', { queueTimeoutMs: 0 })).toThrow(/queueTimeoutMs/)
  })
})

describe('closing a pool', () => {
  it('fails requests still waiting for a connection at once (502), not after queueTimeoutMs', async () => {
    const upstream = await httpServer((req) => req.resume()) // never answers
    const proxy = await proxyServer(upstream.url, {}, { connections: 1, queueTimeoutMs: 60_000 })
    void request(proxy.url).catch(() => {})
    await waitFor(() => proxy.pool.saturated)
    const waiting = request(proxy.url)
    await waitFor(() => proxy.pool.stats().queued === 1)
    await proxy.pool.destroy()
    expect((await waiting).status).toBe(502)
  })
})
