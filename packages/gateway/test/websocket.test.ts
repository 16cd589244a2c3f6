// WebSocket routes through the gateway: balancing, refusals, and the frame-aware limits of `websocket:`.
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { Middleware } from '@switchboard/core'
import { startGateway, startUpstream, type TestGateway } from './helpers.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function echoUpstream(name: string): Promise<string> {
  const up = await startUpstream((_req, res) => res.end())
  const wss = new WebSocketServer({ server: up.server })
  wss.on('connection', (ws) => {
    ws.send(`hello from ${name}`)
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  cleanup.push(() => up.close(), async () => wss.close())
  return up.url
}

async function gateway(raw: Record<string, unknown>, options: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  const gw = await startGateway(raw, options)
  cleanup.push(() => gw.close())
  return gw
}

function connect(url: string): Promise<{ ws: WebSocket; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('message', (data) => resolve({ ws, first: data.toString() }))
    ws.once('error', reject)
  })
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

describe('gateway: WebSocket routes', () => {
  it('balances WebSocket connections over the route upstream like HTTP', async () => {
    const a = await echoUpstream('a')
    const b = await echoUpstream('b')
    const gw = await gateway({
      upstreams: { ws: { balancer: 'round-robin', targets: [a, b] } },
      routes: [{ name: 'ws', match: { path: '/ws/*' }, upstream: 'ws' }],
    })
    const seen: string[] = []
    for (let i = 0; i < 4; i++) {
      const { ws, first } = await connect(`ws://127.0.0.1:${gw.port}/ws/room`)
      seen.push(first)
      ws.close()
      await closed(ws)
    }
    expect(seen.sort()).toEqual(['hello from a', 'hello from a', 'hello from b', 'hello from b'])
    const stats = gw.gateway.upstreamStats().ws
    expect(stats.map((s) => s.totalRequests)).toEqual([2, 2])
  })

  it('answers 404 JSON to an upgrade no route claims', async () => {
    const a = await echoUpstream('a')
    const gw = await gateway({
      upstreams: { ws: { targets: [a] } },
      routes: [{ name: 'ws', match: { path: '/ws/*' }, upstream: 'ws' }],
    })
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/elsewhere`)
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('error', () => {})
    })
    expect(status).toBe(404)
  })

  it('enforces websocket.maxMessageSize with close code 1009', async () => {
    const a = await echoUpstream('a')
    const gw = await gateway({
      upstreams: { ws: { targets: [a] } },
      routes: [{ name: 'ws', match: { path: '/*' }, upstream: 'ws', websocket: { maxMessageSize: '1kb' } }],
    })
    const { ws } = await connect(`ws://127.0.0.1:${gw.port}/`)
    const echo = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
    ws.send('x'.repeat(1000))
    expect((await echo).length).toBe(1000)
    const done = closed(ws)
    ws.send('x'.repeat(2048))
    expect((await done).code).toBe(1009)
  })

  it('closes an idle tunnel after websocket.idleTimeout with 1001', async () => {
    const a = await echoUpstream('a')
    const gw = await gateway({
      upstreams: { ws: { targets: [a] } },
      routes: [{ name: 'ws', match: { path: '/*' }, upstream: 'ws', websocket: { idleTimeout: '300ms' } }],
    })
    const { ws } = await connect(`ws://127.0.0.1:${gw.port}/`)
    expect((await closed(ws)).code).toBe(1001)
  })

  it('runs the same policies as HTTP before tunnelling: a refused upgrade never reaches the upstream', async () => {
    let upgrades = 0
    const up = await startUpstream((_req, res) => res.end())
    const wss = new WebSocketServer({ server: up.server })
    wss.on('connection', (ws, req) => {
      upgrades++
      ws.send(`tenant ${req.headers['x-tenant']}`)
    })
    cleanup.push(() => up.close(), async () => wss.close())
    const requireToken: Middleware = async function requireToken(ex, next) {
      if (ex.request.headers['x-token'] !== 'secret') return ex.respond(401, { 'content-type': 'application/json' }, '{"error":{"code":"ERR_UNAUTHORIZED"}}')
      ex.upstreamHeaders['x-token'] = undefined
      ex.upstreamHeaders['x-tenant'] = 't1'
      await next()
    }
    const gw = await gateway(
      { upstreams: { ws: { targets: [up.url] } }, routes: [{ name: 'ws', match: { path: '/*' }, upstream: 'ws' }] },
      { policies: [requireToken] },
    )
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/`)
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('error', () => {})
    })
    expect(refused).toBe(401)
    expect(upgrades).toBe(0)
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/`, { headers: { 'x-token': 'secret' } })
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()))
      ws.once('error', reject)
    })
    expect(first).toBe('tenant t1')
    ws.close()
    await closed(ws)
  })
})
