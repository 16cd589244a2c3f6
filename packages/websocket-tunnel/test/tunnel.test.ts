import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { isWebSocketUpgrade, type TunnelCloseInfo, type TunnelOptions } from '../src/index.ts'
import {
  Resources,
  closedPort,
  closedWith,
  listen,
  closeServer,
  nextMessage,
  openClient,
  rawExchange,
  startEcho,
  startProxy,
  upgradeRequest,
} from './helpers.ts'

const res = new Resources()
afterEach(() => {
  vi.useRealTimers()
})
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'
afterEach(() => res.close())

const MODES: Array<{ mode: 'transparent' | 'frame'; extra: Partial<TunnelOptions> }> = [
  { mode: 'transparent', extra: {} },
  { mode: 'frame', extra: { maxMessageBytes: 16 * 1024 * 1024 } },
]

describe.each(MODES)('$mode mode', ({ mode, extra }) => {
  const setup = async (options: Partial<TunnelOptions> = {}) => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, ...extra, ...options }))
    return { upstream, proxy }
  }

  it('relays text and binary messages keeping their type', async () => {
    const { proxy } = await setup()
    const ws = await openClient(res, `${proxy.wsUrl}/chat`)
    ws.send('héllo')
    const text = await nextMessage(ws)
    expect(text).toEqual({ data: Buffer.from('héllo'), isBinary: false })
    ws.send(Buffer.from([0, 1, 2, 255]))
    const bin = await nextMessage(ws)
    expect(bin).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true })
    expect((await proxy.results[0]).outcome).toBe('open')
    expect((await proxy.results[0]).mode).toBe(mode)
  })

  it('relays a fragmented message as one message', async () => {
    const { proxy, upstream } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const seen = new Promise<Buffer>((resolve) => {
      const check = (): void => {
        const s = upstream.sockets[0]
        if (s) s.once('message', (d: Buffer) => resolve(d))
        else setImmediate(check)
      }
      check()
    })
    ws.send('part1-', { fin: false })
    ws.send('part2-', { fin: false })
    ws.send('part3', { fin: true })
    expect((await seen).toString()).toBe('part1-part2-part3')
    expect((await nextMessage(ws)).data.toString()).toBe('part1-part2-part3')
  })

  it('relays a 3 MiB message byte for byte', async () => {
    const { proxy } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const big = Buffer.alloc(3 * 1024 * 1024 + 7)
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251
    ws.send(big)
    const got = await nextMessage(ws)
    expect(got.data.length).toBe(big.length)
    expect(got.data.equals(big)).toBe(true)
  })

  it('keeps the order of 1000 messages', async () => {
    const { proxy } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const got: string[] = []
    const done = new Promise<void>((resolve) =>
      ws.on('message', (d: Buffer) => {
        got.push(d.toString())
        if (got.length === 1000) resolve()
      }),
    )
    for (let i = 0; i < 1000; i++) ws.send(String(i))
    await done
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)))
  })

  it('answers a ping with a pong carrying the same payload', async () => {
    const { proxy } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    ws.ping(Buffer.from('are-you-there'))
    const [payload] = (await once(ws, 'pong')) as [Buffer]
    expect(payload.toString()).toBe('are-you-there')
  })

  it('relays close code and reason from the client to the upstream', async () => {
    const closes: TunnelCloseInfo[] = []
    const { proxy: proxy2, upstream } = await setup({ onClose: (i) => closes.push(i) })
    const ws = await openClient(res, proxy2.wsUrl)
    ws.send('x')
    await nextMessage(ws)
    const upClosed = closedWith(upstream.sockets[0])
    const clientClosed = closedWith(ws)
    ws.close(4001, 'client bye')
    expect(await upClosed).toEqual({ code: 4001, reason: 'client bye' })
    expect(await clientClosed).toEqual({ code: 4001, reason: 'client bye' })
    const info = await (await proxy2.results[0]).closed
    expect(info.bytesIn).toBeGreaterThan(0)
    expect(info.bytesOut).toBeGreaterThan(0)
    if (mode === 'frame') expect(info).toMatchObject({ code: 4001, reason: 'client bye', bytesIn: 1, bytesOut: 1 })
    expect(closes).toEqual([info])
  })

  it('relays close code and reason from the upstream to the client', async () => {
    const { proxy, upstream } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const closed = closedWith(ws)
    upstream.sockets[0].close(4002, 'server bye')
    expect(await closed).toEqual({ code: 4002, reason: 'server bye' })
  })

  it('closes the upstream when the client aborts', async () => {
    const { proxy, upstream } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const upClosed = closedWith(upstream.sockets[0])
    ws.terminate()
    const { code } = await upClosed
    expect(mode === 'frame' ? code === 1001 : code === 1006).toBe(true)
    await (await proxy.results[0]).closed
  })

  it('closes the client when the upstream aborts', async () => {
    const { proxy, upstream } = await setup()
    const ws = await openClient(res, proxy.wsUrl)
    const closed = closedWith(ws)
    upstream.sockets[0].terminate()
    const { code } = await closed
    expect(mode === 'frame' ? code === 1001 : code === 1006).toBe(true)
    await (await proxy.results[0]).closed
  })

  it('negotiates the subprotocol end to end', async () => {
    const upstream = await startEcho(res, { handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false) })
    const proxy = await startProxy(res, () => ({ target: upstream.url, ...extra }))
    const ws = await openClient(res, proxy.wsUrl, ['chat.v1', 'chat.v2'])
    expect(ws.protocol).toBe('chat.v2')
    expect(String(upstream.requests[0].headers['sec-websocket-protocol']).split(/, */)).toEqual(['chat.v1', 'chat.v2'])
  })

  it('forwards Origin, cookies and forwarding headers, and applies header overrides', async () => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({
      target: `${upstream.url}/prefix/`,
      ...extra,
      clientIp: '203.0.113.9',
      headers: { 'x-added': 'yes', 'x-remove-me': undefined },
    }))
    await openClient(res, `${proxy.wsUrl}/room?id=1&x=%2F`, undefined, {
      origin: 'https://app.example',
      headers: { cookie: 'sid=abc; theme=dark', 'x-forwarded-for': '198.51.100.1', 'x-remove-me': '1' },
    })
    const req = upstream.requests[0]
    expect(req.url).toBe('/prefix/room?id=1&x=%2F')
    expect(req.headers.origin).toBe('https://app.example')
    expect(req.headers.cookie).toBe('sid=abc; theme=dark')
    expect(req.headers['x-forwarded-for']).toBe('198.51.100.1, 203.0.113.9')
    expect(req.headers['x-forwarded-proto']).toBe('http')
    expect(req.headers['x-forwarded-host']).toBe(`127.0.0.1:${proxy.port}`)
    expect(req.headers.host).toBe(`127.0.0.1:${proxy.port}`) // kept, as proxy-pass does
    expect(req.headers.via).toBe('1.1 switchboard')
    expect(req.headers['x-added']).toBe('yes')
    expect(req.headers['x-remove-me']).toBeUndefined()
  })

  it('passes an upstream 403 with its body to the client', async () => {
    const upstream = createServer()
    upstream.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Why: origin\r\nContent-Length: 13\r\n\r\nnot for you!\n')
    })
    const port = await listen(upstream)
    res.add(() => closeServer(upstream))
    const proxy = await startProxy(res, () => ({ target: `http://127.0.0.1:${port}`, ...extra }))
    const reply = await rawExchange(proxy.port, upgradeRequest('/'))
    expect(reply).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
    expect(reply).toMatch(/\r\nX-Why: origin\r\n/i)
    expect(reply.endsWith('\r\n\r\nnot for you!\n')).toBe(true)
    const result = await proxy.results[0]
    expect(result).toMatchObject({ outcome: 'rejected', status: 403 })
    await result.closed
  })

  it('passes a chunked rejection through even when the upstream keeps the connection open', async () => {
    const upstream = createServer((_req, r) => r.end())
    upstream.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      socket.write('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n')
      socket.write('5\r\nlogin\r\n6\r\n first\r\n0\r\n\r\n')
    })
    const port = await listen(upstream)
    res.add(() => closeServer(upstream))
    const proxy = await startProxy(res, () => ({ target: `http://127.0.0.1:${port}`, ...extra }))
    const reply = await rawExchange(proxy.port, upgradeRequest('/'))
    expect(reply).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/)
    const body = reply.slice(reply.indexOf('\r\n\r\n') + 4)
    // Transparent mode relays the chunks as sent; frame mode gets them de-chunked from node:http.
    expect(body).toBe(mode === 'transparent' ? '5\r\nlogin\r\n6\r\n first\r\n0\r\n\r\n' : 'login first')
  })

  it('answers 502 JSON when the upstream refuses the connection', async () => {
    const port = await closedPort()
    const proxy = await startProxy(res, () => ({ target: `http://127.0.0.1:${port}`, ...extra }))
    const reply = await rawExchange(proxy.port, upgradeRequest('/'))
    expect(reply).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/)
    expect(reply).toMatch(/\r\nconnection: close\r\n/)
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'ERR_BAD_GATEWAY' } })
    expect(await proxy.results[0]).toMatchObject({ outcome: 'failed', status: 502 })
  })

  it('answers 504 JSON when the upstream never answers the handshake', async () => {
    const silent = createTcpServer((s) => s.on('error', () => {}))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const port = (silent.address() as { port: number }).port
    res.add(() => new Promise<void>((resolve) => silent.close(() => resolve())))
    const held = new Set<Socket>()
    silent.on('connection', (s) => held.add(s))
    res.add(() => held.forEach((s) => s.destroy()))
    const proxy = await startProxy(res, () => ({ target: `http://127.0.0.1:${port}`, handshakeTimeoutMs: 50, ...extra }))
    const reply = await rawExchange(proxy.port, upgradeRequest('/'))
    expect(reply).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))
    expect(body).toMatchObject({ error: { code: 'ERR_UPSTREAM_TIMEOUT', phase: 'response' } })
  })

  it('answers 504 JSON when the upstream does not finish connecting (TLS never completes)', async () => {
    const silent = createTcpServer((s) => s.on('error', () => {}))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const port = (silent.address() as { port: number }).port
    const held = new Set<Socket>()
    silent.on('connection', (s) => held.add(s))
    res.add(() => new Promise<void>((resolve) => silent.close(() => resolve())))
    res.add(() => held.forEach((s) => s.destroy()))
    const proxy = await startProxy(res, () => ({ target: `https://127.0.0.1:${port}`, connectTimeoutMs: 50, ...extra }))
    const reply = await rawExchange(proxy.port, upgradeRequest('/'))
    expect(reply).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))
    expect(body.error.code).toBe('ERR_UPSTREAM_TIMEOUT')
    expect(['connect', 'response']).toContain(body.error.phase) // Bun's built-in ws has one timer for both phases
    if (!isBun) expect(body.error.phase).toBe('connect')
  })
})

describe('transparent mode specifics', () => {
  it('keeps permessage-deflate end to end', async () => {
    const upstream = await startEcho(res, { perMessageDeflate: true })
    const proxy = await startProxy(res, () => ({ target: upstream.url }))
    const ws = await openClient(res, proxy.wsUrl, undefined, { perMessageDeflate: true })
    expect(ws.extensions).toContain('permessage-deflate')
    ws.send('x'.repeat(10_000))
    expect((await nextMessage(ws)).data.toString()).toBe('x'.repeat(10_000))
  })

  it('reports open and close with byte counts', async () => {
    const upstream = await startEcho(res)
    const events: string[] = []
    const proxy = await startProxy(res, () => ({
      target: upstream.url,
      onOpen: (info) => events.push(`open ${info.mode} ${info.url}`),
      onClose: (info) => events.push(`close ${info.bytesIn > 0} ${info.bytesOut > 0}`),
    }))
    const ws = await openClient(res, `${proxy.wsUrl}/a?b=1`)
    ws.close()
    await (await proxy.results[0]).closed
    expect(events).toEqual([`open transparent ws://127.0.0.1:${upstream.port}/a?b=1`, 'close true true'])
  })
})

describe('frame mode specifics', () => {
  it('closes both sides with 1009 when the client sends a message over maxMessageBytes', async () => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, maxMessageBytes: 1024 }))
    const ws = await openClient(res, proxy.wsUrl)
    ws.send(Buffer.alloc(1000))
    expect((await nextMessage(ws)).data.length).toBe(1000)
    const upClosed = closedWith(upstream.sockets[0])
    const closed = closedWith(ws)
    ws.send(Buffer.alloc(2048))
    expect((await closed).code).toBe(1009)
    expect((await upClosed).code).toBe(1009)
    expect((await (await proxy.results[0]).closed).code).toBe(1009)
  })

  it('closes both sides with 1009 when the upstream sends a message over maxMessageBytes', async () => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, maxMessageBytes: 1024 }))
    const ws = await openClient(res, proxy.wsUrl)
    const closed = closedWith(ws)
    upstream.sockets[0].send(Buffer.alloc(4096))
    expect((await closed).code).toBe(1009)
  })

  // Injected time: only the tunnel's own timers are faked; sockets and ws internals run for real.
  it('closes both sides with 1001 after idleTimeoutMs without messages', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, idleTimeoutMs: 60_000 }))
    const ws = await openClient(res, proxy.wsUrl)
    const upClosed = closedWith(upstream.sockets[0])
    const closed = closedWith(ws)
    const roundTrip = async (text: string): Promise<string> => {
      ws.send(text)
      return (await nextMessage(ws)).data.toString()
    }
    vi.advanceTimersByTime(59_000)
    expect(await roundTrip('traffic resets the clock')).toBe('traffic resets the clock')
    vi.advanceTimersByTime(59_000)
    expect(await roundTrip('still open')).toBe('still open')
    vi.advanceTimersByTime(60_000)
    expect(await closed).toEqual({ code: 1001, reason: 'Idle timeout' })
    expect(await upClosed).toEqual({ code: 1001, reason: 'Idle timeout' })
    expect((await (await proxy.results[0]).closed).code).toBe(1001)
  })

  it('drops an upstream that stops answering pings', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const upstream = await startEcho(res, { autoPong: false }, false)
    const proxy = await startProxy(res, () => ({ target: upstream.url, pingIntervalMs: 30_000 }))
    const ws = await openClient(res, proxy.wsUrl)
    const closed = closedWith(ws)
    const pinged = Promise.all([once(ws, 'ping'), once(upstream.sockets[0], 'ping')])
    vi.advanceTimersByTime(30_000)
    await pinged
    // The client's pong travels ahead of this message, so once it arrives the tunnel has seen the pong.
    const delivered = once(upstream.sockets[0], 'message')
    ws.send('after the pong')
    await delivered
    vi.advanceTimersByTime(30_000) // no pong came back: the upstream is dropped, the client told 1001
    expect((await closed).code).toBe(1001)
  })

  it('keeps a tunnel whose peers answer pings, without relaying the heartbeat pongs', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, pingIntervalMs: 30_000 }))
    const ws = await openClient(res, proxy.wsUrl)
    const pongsAtUpstream: Buffer[] = []
    upstream.sockets[0].on('pong', (d: Buffer) => pongsAtUpstream.push(d))
    for (let i = 0; i < 3; i++) {
      const pinged = Promise.all([once(ws, 'ping'), once(upstream.sockets[0], 'ping')])
      vi.advanceTimersByTime(30_000)
      await pinged
      // Both pongs travel ahead of this echo on their connections, so the tunnel has seen them.
      ws.send(`beat ${i}`)
      expect((await nextMessage(ws)).data.toString()).toBe(`beat ${i}`)
    }
    expect(ws.readyState).toBe(WebSocket.OPEN)
    expect(pongsAtUpstream).toEqual([])
  })
})

describe('isWebSocketUpgrade and attachWebSocketTunnel', () => {
  const fake = (method: string, headers: Record<string, string>) => ({ method, headers }) as unknown as IncomingMessage

  it('accepts websocket upgrades and refuses h2c and plain requests', () => {
    expect(isWebSocketUpgrade(fake('GET', { connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' }))).toBe(true)
    expect(isWebSocketUpgrade(fake('GET', { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c' }))).toBe(false)
    expect(isWebSocketUpgrade(fake('POST', { connection: 'Upgrade', upgrade: 'websocket' }))).toBe(false)
    expect(isWebSocketUpgrade(fake('GET', { upgrade: 'websocket' }))).toBe(false)
  })

  it('refuses an h2c upgrade with 400 and tunnels the very first request on a fresh server', async () => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, (req) => (req.url === '/nowhere' ? (undefined as never) : { target: upstream.url }), true)
    const ws = await openClient(res, `${proxy.wsUrl}/first`)
    ws.send('first!')
    expect((await nextMessage(ws)).data.toString()).toBe('first!')
    const h2c = await rawExchange(
      proxy.port,
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    )
    expect(h2c).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    const none = await rawExchange(proxy.port, upgradeRequest('/nowhere'))
    expect(none).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/first'])
  })

  it('detaches its listener', async () => {
    const server = createServer()
    const { attachWebSocketTunnel } = await import('../src/index.ts')
    const detach = attachWebSocketTunnel(server, () => ({ target: 'http://127.0.0.1:1' }))
    expect(server.listenerCount('upgrade')).toBe(1)
    detach()
    expect(server.listenerCount('upgrade')).toBe(0)
  })

  it('throws on bad options naming them', async () => {
    const { tunnelUpgrade } = await import('../src/index.ts')
    const req = { url: '/', rawHeaders: [], headers: {}, socket: {} } as unknown as IncomingMessage
    expect(() => tunnelUpgrade(req, null as never, Buffer.alloc(0), { target: 'ftp://x' })).toThrow(/target/)
    expect(() => tunnelUpgrade(req, null as never, Buffer.alloc(0), { target: 'http://x', connectTimeoutMs: -1 })).toThrow(
      /connectTimeoutMs/,
    )
  })
})
