import http, { ServerResponse } from 'node:http'
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createUpstreamPool, proxyFetch, requestUpstream } from '../src/index.ts'
import { cleanup, defer, proxyServer, rawServer } from './helpers.ts'

afterEach(cleanup)

/** An upstream that answers every request with `103 Early Hints` every 50 ms, forever. */
function earlyHintsForever() {
  return rawServer((socket: net.Socket) => {
    socket.once('data', () => {
      const timer = setInterval(() => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n'), 50)
      socket.on('close', () => clearInterval(timer))
    })
  })
}

/** GET through `url`, counting the 1xx the client sees. */
function countingGet(url: string): Promise<{ status: number; informational: number; body: string }> {
  return new Promise((resolve, reject) => {
    let informational = 0
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, informational, body: Buffer.concat(chunks).toString() }))
    })
    req.on('information', () => informational++)
    req.on('error', reject)
  })
}

const relays = typeof (ServerResponse.prototype as { writeEarlyHints?: unknown }).writeEarlyHints === 'function'

describe('1xx responses', () => {
  it('do not extend responseTimeoutMs: 504 at the deadline', async () => {
    const upstream = await earlyHintsForever()
    const proxy = await proxyServer(upstream.url, { responseTimeoutMs: 300, maxInformational: 1_000 })
    const res = await countingGet(proxy.url)
    expect(res.status).toBe(504)
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT', phase: 'response' })
  })

  it('past maxInformational → 502, and the client never sees more than the cap', async () => {
    const upstream = await earlyHintsForever()
    const proxy = await proxyServer(upstream.url, { responseTimeoutMs: 20_000, maxInformational: 3 })
    const res = await countingGet(proxy.url)
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body).error.code).toBe('ERR_BAD_GATEWAY')
    expect(res.informational).toBeLessThanOrEqual(3)
    // Where the runtime has writeEarlyHints, the 103s up to the cap are relayed.
    if (relays) expect(res.informational).toBe(3)
  })

  it('requestUpstream and proxyFetch apply the same cap', async () => {
    const upstream = await earlyHintsForever()
    const pool = createUpstreamPool(upstream.url)
    defer(() => pool.destroy())
    const req = { rawHeaders: [], headers: {}, method: 'GET', url: '/' } as unknown as Parameters<typeof requestUpstream>[0]
    await expect(requestUpstream(req, { pool, maxInformational: 2 })).rejects.toMatchObject({ status: 502, code: 'ERR_BAD_GATEWAY' })
    const res = await proxyFetch(new Request('http://gw.example/'), upstream.url, { pool, responseTimeoutMs: 300, maxInformational: 1_000 })
    expect(res.status).toBe(504)
  })
})

describe('status outside 100–599', () => {
  /** An upstream answering `HTTP/1.1 600 Weird`. */
  const weird = () =>
    rawServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 600 Weird\r\nContent-Length: 2\r\n\r\nhi')))

  it('forward() → 502 ERR_BAD_GATEWAY', async () => {
    const upstream = await weird()
    const proxy = await proxyServer(upstream.url)
    const res = await countingGet(proxy.url)
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body).error.code).toBe('ERR_BAD_GATEWAY')
    expect(await proxy.next()).toMatchObject({ status: 502, message: 'Upstream sent status 600' })
  })

  it('requestUpstream() → rejects 502 ERR_BAD_GATEWAY', async () => {
    const upstream = await weird()
    const pool = createUpstreamPool(upstream.url)
    defer(() => pool.destroy())
    const req = { rawHeaders: [], headers: {}, method: 'GET', url: '/' } as unknown as Parameters<typeof requestUpstream>[0]
    await expect(requestUpstream(req, { pool })).rejects.toMatchObject({ status: 502, code: 'ERR_BAD_GATEWAY' })
    expect(pool.saturated).toBe(false)
  })

  it('proxyFetch() → 502 ERR_BAD_GATEWAY response', async () => {
    const upstream = await weird()
    const pool = createUpstreamPool(upstream.url)
    defer(() => pool.destroy())
    const res = await proxyFetch(new Request('http://gw.example/'), upstream.url, { pool })
    expect(res.status).toBe(502)
    expect((await res.json()).error.code).toBe('ERR_BAD_GATEWAY')
  })
})
