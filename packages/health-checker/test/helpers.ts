import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What a test upstream does with the next requests. */
export type Mode = { kind: 'ok'; status?: number; delayMs?: number } | { kind: 'hang' }

/** A real HTTP upstream on 127.0.0.1 that can go down, come back, slow down or fail. */
export interface TestUpstream {
  readonly url: string
  readonly port: number
  /** Requests received since start. */
  requests: number
  /** Highest number of requests open at once. */
  maxConcurrent: number
  mode: Mode
  /** Resolves when the next request arrives. */
  nextRequest(): Promise<IncomingMessage>
  /** Closes the listener and every connection: probes now get ECONNREFUSED. */
  down(): Promise<void>
  /** Listens again on the same port. */
  up(): Promise<void>
  close(): Promise<void>
}

const open = new Set<TestUpstream>()

/** Starts an upstream; {@link closeAll} in afterEach closes it. */
export async function startUpstream(mode: Mode = { kind: 'ok' }): Promise<TestUpstream> {
  const hanging = new Set<ServerResponse>()
  const waiters: Array<(req: IncomingMessage) => void> = []
  let concurrent = 0
  const server: Server = createServer((req, res) => {
    upstream.requests++
    concurrent++
    upstream.maxConcurrent = Math.max(upstream.maxConcurrent, concurrent)
    res.on('close', () => concurrent--)
    for (const resolve of waiters.splice(0)) resolve(req)
    const current = upstream.mode
    if (current.kind === 'hang') {
      hanging.add(res)
      return
    }
    const send = (): void => {
      res.writeHead(current.status ?? 200, current.status === 302 ? { location: '/elsewhere' } : {})
      res.end('ok')
    }
    if (current.delayMs) setTimeout(send, current.delayMs)
    else send()
  })
  let listening = false
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        listening = true
        resolve()
      })
    })
  await listen(0)
  const port = (server.address() as AddressInfo).port
  const upstream: TestUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: 0,
    maxConcurrent: 0,
    mode,
    nextRequest: () => new Promise((resolve) => waiters.push(resolve)),
    async down() {
      if (!listening) return
      listening = false
      for (const res of hanging) res.destroy()
      hanging.clear()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
    up: () => listen(port),
    async close() {
      open.delete(upstream)
      await upstream.down()
    },
  }
  open.add(upstream)
  return upstream
}

/** Closes every upstream a test started. */
export async function closeAll(): Promise<void> {
  await Promise.all([...open].map((u) => u.close()))
}

/** An injected clock and timer queue: `advance()` runs due timers in order. */
export interface FakeClock {
  now(): number
  setTimer(callback: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
  /** Timers scheduled and not yet run or cleared. */
  readonly pending: number
  advance(ms: number): void
}

export function fakeClock(start = 0): FakeClock {
  let now = start
  let seq = 0
  const timers = new Map<number, { at: number; callback: () => void }>()
  return {
    now: () => now,
    setTimer(callback, ms) {
      const id = ++seq
      timers.set(id, { at: now + ms, callback })
      return id
    },
    clearTimer(handle) {
      timers.delete(handle as number)
    },
    get pending() {
      return timers.size
    },
    advance(ms) {
      const end = now + ms
      for (;;) {
        let next: [number, { at: number; callback: () => void }] | undefined
        for (const entry of timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry
        if (!next) break
        timers.delete(next[0])
        now = next[1].at
        next[1].callback()
      }
      now = end
    },
  }
}
