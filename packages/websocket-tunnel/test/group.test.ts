import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { createTunnelGroup, tunnelUpgrade, type TunnelGroup } from '../src/index.ts'
import { Resources, closedWith, nextMessage, openClient, startEcho, startProxy, waitFor } from './helpers.ts'

const res = new Resources()
afterEach(() => {
  vi.useRealTimers()
})
afterEach(() => res.close())

describe('createTunnelGroup', () => {
  it('closes frame-mode tunnels with 1001 on both sides through the close handshake and empties the group', async () => {
    const group = createTunnelGroup()
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, idleTimeoutMs: 60_000, group }))
    const a = await openClient(res, proxy.wsUrl)
    const b = await openClient(res, proxy.wsUrl)
    a.send('hi')
    expect((await nextMessage(a)).data.toString()).toBe('hi')
    expect(group.size).toBe(2)
    const clientsClosed = Promise.all([closedWith(a), closedWith(b)])
    const upstreamClosed = Promise.all(upstream.sockets.map((s) => closedWith(s)))
    // A deadline far beyond the test timeout: only a completed close handshake can settle this.
    await group.closeAll({ timeoutMs: 600_000 })
    expect(await clientsClosed).toEqual([
      { code: 1001, reason: 'going away' },
      { code: 1001, reason: 'going away' },
    ])
    expect(await upstreamClosed).toEqual([
      { code: 1001, reason: 'going away' },
      { code: 1001, reason: 'going away' },
    ])
    expect(group.size).toBe(0)
    const infos = await Promise.all(proxy.results.map(async (r) => (await r).closed))
    expect(infos.map((i) => i.code)).toEqual([1001, 1001])
  })

  it('sends a custom code and reason', async () => {
    const group = createTunnelGroup()
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, maxMessageBytes: 1 << 20, group }))
    const ws = await openClient(res, proxy.wsUrl)
    const closed = closedWith(ws)
    await group.closeAll({ code: 1012, reason: 'restarting', timeoutMs: 600_000 })
    expect(await closed).toEqual({ code: 1012, reason: 'restarting' })
  })

  it('closes a frame-mode tunnel whose handshake was in flight with 1001 as soon as it opens', async () => {
    const group = createTunnelGroup()
    const held: Array<(ok: boolean) => void> = []
    const upstream = await startEcho(res, { verifyClient: (_info, done) => void held.push(done) })
    const proxy = await startProxy(res, () => ({ target: upstream.url, pingIntervalMs: 60_000, group }))
    const ws = new WebSocket(proxy.wsUrl)
    ws.on('error', () => {})
    const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()))
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    )
    await waitFor(() => held.length === 1, 'the upstream to hold the handshake')
    expect(group.size).toBe(1)
    const closing = group.closeAll({ timeoutMs: 600_000 })
    held[0](true)
    await opened
    await closing
    expect(await closed).toEqual({ code: 1001, reason: 'going away' })
    expect(group.size).toBe(0)
  })

  it('leaves transparent tunnels open until the deadline, then destroys them', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const group = createTunnelGroup()
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, group }))
    const ws = await openClient(res, proxy.wsUrl)
    expect(group.size).toBe(1)
    let settled = false
    const closing = group.closeAll({ timeoutMs: 10_000 }).then(() => (settled = true))
    const closed = closedWith(ws)
    // Before the deadline the tunnel still relays.
    ws.send('still here')
    expect((await nextMessage(ws)).data.toString()).toBe('still here')
    expect(ws.readyState).toBe(WebSocket.OPEN)
    expect(settled).toBe(false)
    expect(group.size).toBe(1)
    vi.advanceTimersByTime(10_000)
    await closing
    expect((await closed).code).toBe(1006) // destroyed: no close frame can be injected into a byte relay
    expect(group.size).toBe(0)
    await (await proxy.results[0]).closed
  })

  it('resolves before the deadline once transparent tunnels end on their own', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const group = createTunnelGroup()
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, group }))
    const ws = await openClient(res, proxy.wsUrl)
    const closing = group.closeAll({ timeoutMs: 600_000 })
    const closed = closedWith(ws)
    ws.close(1000, 'done')
    await closing // the fake deadline never fires: only the tunnel ending settles this
    expect(await closed).toEqual({ code: 1000, reason: 'done' })
    expect(group.size).toBe(0)
    await (await proxy.results[0]).closed
  })

  it('takes tunnels out of the group when they end, whatever the outcome', async () => {
    const group = createTunnelGroup()
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, (req) => ({
      target: req.url === '/nowhere' ? 'http://127.0.0.1:1' : upstream.url,
      group,
      ...(req.url === '/frame' ? { idleTimeoutMs: 60_000 } : {}),
    }))
    const t = await openClient(res, proxy.wsUrl)
    const f = await openClient(res, `${proxy.wsUrl}/frame`)
    expect(group.size).toBe(2)
    const failed = new WebSocket(`${proxy.wsUrl}/nowhere`)
    await new Promise<void>((resolve) => {
      failed.on('error', () => {}) // 502: the endpoint refuses
      failed.once('close', () => resolve())
    })
    expect((await proxy.results[2]).outcome).toBe('failed')
    t.close()
    f.close()
    await Promise.all(proxy.results.map(async (r) => (await r).closed))
    expect(group.size).toBe(0)
    await group.closeAll() // nothing left: resolves at once
  })

  it('rejects bad closeAll options and groups it did not create', () => {
    const group = createTunnelGroup()
    expect(() => group.closeAll({ code: 1006 })).toThrow(RangeError)
    expect(() => group.closeAll({ reason: 'x'.repeat(124) })).toThrow(/123 bytes/)
    expect(() => group.closeAll({ timeoutMs: Number.NaN })).toThrow(/timeoutMs/)
    const req = { url: '/', rawHeaders: [], headers: {}, socket: {} } as unknown as IncomingMessage
    const fake: TunnelGroup = { size: 0, closeAll: async () => {} }
    expect(() => tunnelUpgrade(req, null as never, Buffer.alloc(0), { target: 'http://x', group: fake })).toThrow(/createTunnelGroup/)
  })
})
