import { afterEach, describe, expect, it } from 'vitest'
import { bunWebSocketTunnel, denoWebSocketTunnel, type TunnelCloseInfo } from '../src/index.ts'
import { Resources, closedPort, closedWith, nextMessage, openClient, startEcho } from './helpers.ts'

const res = new Resources()
afterEach(() => res.close())

const g = globalThis as unknown as {
  Bun?: { serve(options: Record<string, unknown>): { port: number; stop(force?: boolean): unknown } }
  Deno?: {
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      handler: (req: Request, info: { remoteAddr: { hostname: string } }) => Response,
    ): { addr: { port: number }; shutdown(): Promise<void> }
  }
}
const isBun = typeof g.Bun !== 'undefined'
const isDeno = typeof g.Deno !== 'undefined'

type Serve = (target: string, closes: TunnelCloseInfo[]) => Promise<string>

const serveBun: Serve = async (target, closes) => {
  const tunnel = bunWebSocketTunnel(target, { onClose: (i) => closes.push(i) })
  const server = g.Bun!.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch: (req: Request, srv: Parameters<typeof tunnel.upgrade>[1]) => tunnel.upgrade(req, srv),
    websocket: tunnel.websocket,
  })
  res.add(() => void server.stop(true))
  return `ws://127.0.0.1:${server.port}`
}

const serveDeno: Serve = async (target, closes) => {
  const server = g.Deno!.serve({ port: 0, hostname: '127.0.0.1', onListen: () => {} }, (req, info) =>
    denoWebSocketTunnel(req, target, { info, onClose: (i) => closes.push(i) }),
  )
  res.add(() => server.shutdown())
  return `ws://127.0.0.1:${server.addr.port}`
}

describe.each([
  { runtime: 'bun', serve: serveBun, skip: !isBun },
  { runtime: 'deno', serve: serveDeno, skip: !isDeno },
])('$runtime native adapter', ({ serve, skip }) => {
  it.skipIf(skip)('relays text, binary, subprotocol, forwarding headers and close codes (runs only on its own runtime)', async () => {
    const upstream = await startEcho(res, { handleProtocols: (p) => (p.has('chat') ? 'chat' : false) })
    const closes: TunnelCloseInfo[] = []
    const url = await serve(`${upstream.url}/base`, closes)
    const ws = await openClient(res, `${url}/room?x=1`, ['chat', 'other'], { headers: { cookie: 'a=1' } })
    expect(ws.protocol).toBe('chat')
    ws.send('hello')
    expect(await nextMessage(ws)).toEqual({ data: Buffer.from('hello'), isBinary: false })
    ws.send(Buffer.from([1, 2, 3]))
    expect(await nextMessage(ws)).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true })
    const req = upstream.requests[0]
    expect(req.url).toBe('/base/room?x=1')
    expect(req.headers.cookie).toBe('a=1')
    expect(req.headers['x-forwarded-for']).toMatch(/127\.0\.0\.1/)
    const upClosed = closedWith(upstream.sockets[0])
    const closed = closedWith(ws)
    ws.close(4000, 'bye')
    expect(await upClosed).toEqual({ code: 4000, reason: 'bye' })
    expect((await closed).code).toBe(4000)
    for (let i = 0; i < 100 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(closes[0]).toMatchObject({ code: 4000, bytesIn: 8, bytesOut: 8 })
  })

  it.skipIf(skip)('closes the client when the upstream is unreachable (runs only on its own runtime)', async () => {
    const url = await serve(`http://127.0.0.1:${await closedPort()}`, [])
    const ws = await openClient(res, url)
    const { code } = await closedWith(ws)
    expect([1014, 1000]).toContain(code)
  })
})
