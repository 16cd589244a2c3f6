import http from 'node:http'
import net from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createUpstreamPool, proxyFetch, requestUpstream, type ForwardResult } from '../src/index.ts'
import { cleanup, defer, httpServer, once, proxyServer, rawServer, request, type ProxyFixture } from './helpers.ts'

// Regression (hardening item 1): under Bun a stalled upload whose timer fired killed the process
// with an unhandled `error: aborted`. Every case below must end without an uncaught exception and
// leave the proxy able to serve the next request.
const uncaught: unknown[] = []
const onUncaught = (error: unknown): void => void uncaught.push(error)
beforeEach(() => {
  uncaught.length = 0
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
})
afterEach(async () => {
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
  await cleanup()
})

/** Lets pending close/error events run: a few macrotask turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 20))
}

/** Routes: `/hold` reads the body and never answers; `/stream` sends one chunk and stays open; `/big` never ends; else echoes the body length. */
async function matrixUpstream() {
  let gotBody!: () => void
  const bodyRead = new Promise<void>((resolve) => (gotBody = resolve))
  const upstream = await httpServer((req, res) => {
    let length = 0
    req.on('data', (chunk: Buffer) => (length += chunk.length))
    req.on('error', () => {})
    req.on('end', () => {
      if (req.url === '/hold') return gotBody()
      if (req.url === '/stream') return void res.writeHead(200).write('first')
      if (req.url === '/big') {
        res.writeHead(200)
        const chunk = Buffer.alloc(64 * 1024)
        const pump = (): void => {
          while (!res.destroyed) if (!res.write(chunk)) return void res.once('drain', pump)
        }
        return pump()
      }
      res.end(String(length))
    })
  })
  return { ...upstream, bodyRead }
}

function rawClient(port: number, head: string): net.Socket {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(head)
  defer(() => void socket.destroy())
  return socket
}

async function expectHealthy(proxy: ProxyFixture, outcome: Promise<ForwardResult | Error>): Promise<ForwardResult | Error> {
  const result = await outcome
  await settle()
  expect(uncaught).toEqual([])
  const res = await request(proxy.url, { method: 'POST', path: '/echo', body: 'again' })
  expect(res.status).toBe(200)
  expect(res.body.toString()).toBe('5')
  return result
}

describe('no unhandled error events, ever', () => {
  it('client aborts before sending the body (streamed length)', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url)
    const socket = rawClient(proxy.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n')
    await new Promise((resolve) => setTimeout(resolve, 20))
    socket.destroy()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ aborted: true })
  })

  it('client aborts while uploading (chunked)', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url)
    const socket = rawClient(proxy.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.destroy()
    await expectHealthy(proxy, proxy.next())
  })

  it('client aborts while uploading a small buffered body', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url)
    const socket = rawClient(proxy.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf')
    await new Promise((resolve) => setTimeout(resolve, 20))
    socket.destroy()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ aborted: true, reason: 'client-gone' })
  })

  it('client aborts after the body, waiting for the response', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url)
    const socket = rawClient(proxy.port, 'POST /hold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
    await upstream.bodyRead
    socket.destroy()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ status: 0, aborted: true })
  })

  it('client aborts during the response', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url)
    const req = http.get(`${proxy.url}/stream`, { agent: false })
    req.on('error', () => {})
    const res = await once<http.IncomingMessage>(req, 'response')
    await once(res, 'data')
    req.destroy()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ status: 200, aborted: true })
  })

  it('upstream resets mid-body', async () => {
    const upstream = await rawServer((socket) =>
      socket.once('data', (chunk) => {
        if (chunk.toString().startsWith('POST')) return void socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n5')
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial')
        setTimeout(() => socket.resetAndDestroy?.() ?? socket.destroy(), 20)
      }),
    )
    const proxy = await proxyServer(upstream.url)
    const req = http.get(`${proxy.url}/`, { agent: false })
    req.on('error', () => {})
    const res = await once<http.IncomingMessage>(req, 'response')
    res.on('error', () => {})
    res.resume()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ status: 200, aborted: true, reason: 'upstream-error' })
  })

  it('stalled client read past sendTimeoutMs', async () => {
    const upstream = await matrixUpstream()
    const proxy = await proxyServer(upstream.url, { sendTimeoutMs: 200 })
    const socket = rawClient(proxy.port, 'GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
    socket.pause()
    expect(await expectHealthy(proxy, proxy.next())).toMatchObject({ aborted: true, reason: 'send-timeout' })
  })

  it.each([
    ['the server destroys the request stream (a body-idle timer)', 'destroy'],
    ['signal aborts the exchange', 'signal'],
  ])('stalled upload cut by %s (the Bun crash)', async (_name, how) => {
    let sawBody!: () => void
    const bodySeen = new Promise<void>((resolve) => (sawBody = resolve))
    const upstream = await rawServer((socket) => socket.on('data', (chunk) => chunk.includes('hello') && sawBody()))
    const echo = await matrixUpstream()
    const echoPool = createUpstreamPool(echo.url)
    defer(() => echoPool.destroy())
    const abort = new AbortController()
    let stalled: http.IncomingMessage | undefined
    const proxy = await proxyServer(upstream.url, (req) => {
      if (req.url === '/echo') return { pool: echoPool }
      stalled = req
      return { signal: abort.signal }
    })
    const socket = rawClient(proxy.port, 'POST /stall HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    await bodySeen
    // What the gateway's body-idle timer does; an 'error' on req without a listener would crash.
    if (how === 'destroy') stalled!.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))
    else abort.abort()
    const outcome = await proxy.next()
    expect(outcome).toMatchObject({ aborted: true, reason: how === 'signal' ? 'signal' : 'client-gone' })
    socket.destroy()
    await expectHealthy(proxy, Promise.resolve(outcome))
  })

  it('requestUpstream and proxyFetch: upstream resets while nobody reads the body', async () => {
    const upstream = await rawServer((socket) =>
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial')
        setTimeout(() => socket.resetAndDestroy?.() ?? socket.destroy(), 20)
      }),
    )
    const pool = createUpstreamPool(upstream.url)
    defer(() => pool.destroy())
    const req = { rawHeaders: [], headers: {}, method: 'GET', url: '/' } as unknown as Parameters<typeof requestUpstream>[0]
    const res = await requestUpstream(req, { pool })
    expect(res.status).toBe(200)
    const fetched = await proxyFetch(new Request('http://gw.example/'), upstream.url, { pool })
    expect(fetched.status).toBe(200)
    await settle()
    expect(uncaught).toEqual([])
    expect(pool.saturated).toBe(false)
  })
})
