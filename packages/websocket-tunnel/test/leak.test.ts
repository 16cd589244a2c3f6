import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import type { TunnelOptions } from '../src/index.ts'
import { Resources, startEcho, startProxy } from './helpers.ts'

const res = new Resources()
afterEach(() => res.close())

const CONCURRENCY = 50

// 1000 in transparent mode; frame mode shares the close path, so a shorter loop keeps CI fast.
describe.each([
  { mode: 'transparent', tunnels: 1000, extra: {} },
  { mode: 'frame', tunnels: 200, extra: { maxMessageBytes: 1 << 20, idleTimeoutMs: 60_000, pingIntervalMs: 60_000 } },
] as Array<{ mode: string; tunnels: number; extra: Partial<TunnelOptions> }>)('$mode mode, $tunnels tunnels', ({ tunnels: TUNNELS, extra }) => {
  it('opens and closes every tunnel and returns to its baseline of handles and heap', async () => {
    const upstream = await startEcho(res)
    const proxy = await startProxy(res, () => ({ target: upstream.url, ...extra }))
    const roundTrip = async (i: number): Promise<void> => {
      const ws = new WebSocket(proxy.wsUrl)
      ws.on('error', () => {})
      await once(ws, 'open')
      ws.send(`m${i}`)
      const [data] = (await once(ws, 'message')) as [Buffer]
      if (data.toString() !== `m${i}`) throw new Error(`echo mismatch at ${i}`)
      ws.close(1000)
      await once(ws, 'close')
    }
    const batch = async (from: number, count: number): Promise<void> => {
      for (let i = from; i < from + count; i += CONCURRENCY) {
        await Promise.all(Array.from({ length: Math.min(CONCURRENCY, from + count - i) }, (_, k) => roundTrip(i + k)))
      }
      await Promise.all(proxy.results.map(async (r) => (await r).closed))
    }

    await batch(0, 50) // warm up: module state, JIT, ws buffers
    const handlesBefore = await settledHandles(upstream.wss.clients.size)
    const heapBefore = heapUsed()

    await batch(50, TUNNELS)

    expect(proxy.results.length).toBe(TUNNELS + 50)
    const outcomes = await Promise.all(proxy.results.map(async (r) => (await r).outcome))
    expect(outcomes.every((o) => o === 'open')).toBe(true)
    const connections = (): Promise<number> =>
      new Promise<number>((resolve, reject) => proxy.server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
    // The upstream's own close events can trail the tunnel's by a few event-loop turns (Bun, Deno).
    for (let i = 0; i < 200 && (upstream.wss.clients.size > 0 || (await connections()) > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(upstream.wss.clients.size).toBe(0)
    expect(await connections()).toBe(0)
    const handlesAfter = await settledHandles(upstream.wss.clients.size)
    // The helpers keep every request, socket and result for assertions; drop them before weighing the heap.
    upstream.requests.length = 0
    upstream.sockets.length = 0
    proxy.results.length = 0
    if (handlesBefore !== undefined && handlesAfter !== undefined) expect(handlesAfter).toBeLessThanOrEqual(handlesBefore + 2)
    const growth = heapUsed() - heapBefore
    if (process.env.TUNNEL_LEAK_DEBUG) console.log({ handlesBefore, handlesAfter, growth, gc: Boolean(gc) })
    // With a real GC the heap is back near its baseline; without one, only a loose bound is meaningful.
    expect(growth).toBeLessThan(gc ? 8 * 1024 * 1024 : 64 * 1024 * 1024)
  })
})

const gc = findGc()

function heapUsed(): number {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

/** Active handle count once the event loop has let go of closing sockets (bounded wait). */
async function settledHandles(_hint: number): Promise<number | undefined> {
  const info = (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo
  if (typeof info !== 'function') return undefined
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 50; i++) {
    const n = info().filter((r) => r !== 'Timeout' && r !== 'Immediate').length
    if (n === last) return n
    last = n
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return last
}

function findGc(): (() => void) | undefined {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } }
  if (typeof g.gc === 'function') return g.gc
  if (g.Bun) return () => g.Bun?.gc(true)
  try {
    setFlagsFromString('--expose-gc')
    const fn = runInNewContext('gc') as unknown
    return typeof fn === 'function' ? (fn as () => void) : undefined
  } catch {
    return undefined
  }
}
