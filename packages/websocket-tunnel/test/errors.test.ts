import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { TunnelOptions } from '../src/index.ts'
import {
  Resources,
  closeServer,
  listen,
  maskedFrameHeader,
  nextMessage,
  openClient,
  rawExchange,
  rawUpgrade,
  startEcho,
  startProxy,
  upgradeRequest,
  waitFor,
} from './helpers.ts'

const res = new Resources()
afterEach(() => res.close())

// Any 'error' event without a listener, anywhere in the tunnel, surfaces here (Node, Bun and Deno).
const uncaught = vi.fn()
const unhandled = vi.fn()
beforeEach(() => {
  uncaught.mockClear()
  unhandled.mockClear()
  process.on('uncaughtException', uncaught)
  process.on('unhandledRejection', unhandled)
})
afterEach(() => {
  process.off('uncaughtException', uncaught)
  process.off('unhandledRejection', unhandled)
})

const MODES: Array<{ mode: 'transparent' | 'frame'; extra: Partial<TunnelOptions> }> = [
  { mode: 'transparent', extra: {} },
  { mode: 'frame', extra: { idleTimeoutMs: 60_000 } },
]

/** An RST where the runtime can send one, a plain destroy elsewhere. */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
  else socket.destroy()
}

/**
 * A raw upstream: answers upgrades with 101 (`accept`) or never (`hold`), answers a close frame,
 * and hands its sockets to the test.
 */
async function startRawUpstream(answer: 'accept' | 'hold'): Promise<{ url: string; sockets: Socket[]; chunks: Buffer[] }> {
  const server = createServer((_req, r) => r.writeHead(426).end())
  const sockets: Socket[] = []
  const chunks: Buffer[] = []
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {})
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      // A close frame (its own write, so it starts a chunk): answer it the way a peer would.
      if ((c[0] & 0x0f) === 0x8) socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]))
    })
    sockets.push(socket)
    if (answer === 'hold') return
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
  })
  const port = await listen(server)
  res.add(() => closeServer(server))
  return { url: `http://127.0.0.1:${port}`, sockets, chunks }
}

describe.each(MODES)('$mode mode: resets and half-closes never crash the process', ({ mode, extra }) => {
  const setup = async (answer: 'accept' | 'hold', more: Partial<TunnelOptions> = {}) => {
    const echo = await startEcho(res)
    const bad = await startRawUpstream(answer)
    const proxy = await startProxy(res, (req) => ({ target: req.url === '/ok' ? echo.url : bad.url, ...extra, ...more }))
    // After each scenario: no stray 'error' anywhere, and a fresh tunnel through the same code works.
    const stillWorks = async (): Promise<void> => {
      await Promise.all(proxy.results.map(async (r) => (await r).closed))
      const ws = await openClient(res, `${proxy.wsUrl}/ok`)
      ws.send(`${mode} ok`)
      expect((await nextMessage(ws)).data.toString()).toBe(`${mode} ok`)
      expect((await proxy.results.at(-1))?.mode).toBe(mode)
      expect(uncaught).not.toHaveBeenCalled()
      expect(unhandled).not.toHaveBeenCalled()
    }
    return { bad, proxy, stillWorks }
  }

  it('client resets during the handshake', async () => {
    const { bad, proxy, stillWorks } = await setup('hold')
    const { connect } = await import('node:net')
    const client = connect(proxy.port, '127.0.0.1')
    client.on('error', () => {})
    client.write(upgradeRequest('/bad'))
    await waitFor(() => bad.sockets.length === 1, 'the upstream to get the handshake')
    reset(client)
    const result = await proxy.results[0]
    expect(result.outcome).toBe('aborted')
    await stillWorks()
  })

  it('client resets right after the handshake', async () => {
    const { proxy, stillWorks } = await setup('accept')
    const raw = await rawUpgrade(res, proxy.port, '/bad')
    expect(raw.head).toMatch(/^HTTP\/1\.1 101 /)
    reset(raw.socket)
    expect((await proxy.results[0]).outcome).toBe('open')
    await stillWorks()
  })

  it('client resets in the middle of a message', async () => {
    const { bad, proxy, stillWorks } = await setup('accept')
    const raw = await rawUpgrade(res, proxy.port, '/bad')
    // A first fragment, then a ping (allowed between fragments, RFC 6455 §5.4): once the ping is
    // upstream, the tunnel is inside a message. Then half a continuation frame, and the reset.
    const ping = Buffer.from('mid-msg-ping')
    raw.socket.write(Buffer.concat([maskedFrameHeader(0x2, 1024, false), Buffer.alloc(1024), maskedFrameHeader(0x9, ping.length), ping]))
    await waitFor(
      () =>
        mode === 'transparent'
          ? Buffer.concat(bad.chunks).includes(ping) // relayed as sent (zero mask)
          : bad.chunks.some((c) => c[0] === 0x89), // ws re-sends it as a frame of its own
      'the ping upstream',
    )
    raw.socket.write(Buffer.concat([maskedFrameHeader(0x0, 64 * 1024), Buffer.alloc(1024)]))
    reset(raw.socket)
    await stillWorks()
  })

  it('upstream resets in the middle of a message', async () => {
    const { bad, proxy, stillWorks } = await setup('accept')
    const ws = await openClient(res, `${proxy.wsUrl}/bad`)
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
    await waitFor(() => bad.sockets.length === 1, 'the upstream socket')
    // Server frames are unmasked: a binary frame declaring 64 KiB, then only 1 KiB of it.
    bad.sockets[0].write(Buffer.concat([Buffer.from([0x82, 126, 0x01, 0x00]), Buffer.alloc(1024)]))
    reset(bad.sockets[0])
    expect(mode === 'frame' ? [1001] : [1006]).toContain(await closed)
    await stillWorks()
  })

  it('upstream half-closes without a close frame', async () => {
    const { bad, proxy, stillWorks } = await setup('accept')
    const ws = await openClient(res, `${proxy.wsUrl}/bad`)
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
    await waitFor(() => bad.sockets.length === 1, 'the upstream socket')
    bad.sockets[0].end()
    expect(mode === 'frame' ? [1001] : [1006]).toContain(await closed)
    await stillWorks()
  })

  it('upstream never answers the handshake', async () => {
    const { proxy, stillWorks } = await setup('hold', { handshakeTimeoutMs: 100 })
    const reply = await rawExchange(proxy.port, upgradeRequest('/bad'))
    expect(reply).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    const result = await proxy.results[0]
    expect(result.outcome).toBe('failed')
    await stillWorks()
  })

  it('client resets while the upstream never answers, then the handshake times out', async () => {
    const { bad, proxy, stillWorks } = await setup('hold', { handshakeTimeoutMs: 100 })
    const { connect } = await import('node:net')
    const client = connect(proxy.port, '127.0.0.1')
    client.on('error', () => {})
    client.write(upgradeRequest('/bad'))
    await waitFor(() => bad.sockets.length === 1, 'the upstream to get the handshake')
    reset(client)
    expect((await proxy.results[0]).outcome).toBe('aborted')
    await stillWorks()
  })
})
