import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { compose, type Middleware } from '@switchboard/core'
import { createTestExchange, type TestExchange, type TestExchangeInit } from '@switchboard/core/testing'
import type { JWK } from 'jose'

/** Runs `layer` in front of a terminal that answers 200 (the "upstream"), and reports what happened. */
export async function run(
  layer: Middleware,
  init: TestExchangeInit = {},
): Promise<{ ex: TestExchange; status: number | undefined; headers: Record<string, unknown>; body: string; forwarded: boolean }> {
  const ex = createTestExchange(init)
  let forwarded = false
  await compose([layer], {
    terminal: async (e) => {
      forwarded = true
      await e.respond(200, {}, 'ok')
    },
  })(ex)
  return { ex, status: ex.sent?.status, headers: ex.sent?.headers ?? {}, body: ex.sent?.text ?? '', forwarded }
}

/** A settable clock in epoch ms. */
export function clock(start = Date.UTC(2030, 0, 1)): { now: () => number; advance: (ms: number) => void; seconds: () => number } {
  let t = start
  return { now: () => t, advance: (ms) => void (t += ms), seconds: () => Math.floor(t / 1000) }
}

export type JwksMode = 'ok' | 'hang' | 'error' | 'huge' | 'gate' | 'redirect'

/** A real JWKS endpoint on 127.0.0.1 that counts requests, can rotate its keys, hang, fail or stop. */
export interface JwksServer {
  readonly url: string
  hits(): number
  setKeys(keys: JWK[]): void
  setMode(mode: JwksMode): void
  /** In `gate` mode: answers every held request. */
  release(): void
  /** Resolves once `n` requests arrived in total. */
  waitForHits(n: number): Promise<void>
  stop(): Promise<void>
}

export async function startJwks(keys: JWK[] = []): Promise<JwksServer> {
  let current = keys
  let mode: JwksMode = 'ok'
  let hits = 0
  const held: ServerResponse[] = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const sockets = new Set<Socket>()
  const answer = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: current }))
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits++
    for (const w of waiters.splice(0)) {
      if (hits >= w.n) w.resolve()
      else waiters.push(w)
    }
    req.resume()
    if (mode === 'hang') return
    if (mode === 'gate') return void held.push(res)
    if (mode === 'redirect' && req.url !== '/moved') {
      res.writeHead(302, { location: '/moved' })
      return void res.end()
    }
    if (mode === 'error') {
      res.writeHead(500)
      return void res.end('down')
    }
    if (mode === 'huge') {
      res.writeHead(200, { 'content-type': 'application/json' })
      // Chunked, no content-length: the client must stop reading on its own.
      res.write(`{"keys":[${JSON.stringify(current[0] ?? {})}`)
      for (let i = 0; i < 100; i++) res.write(`,{"kty":"oct","k":"${'A'.repeat(1000)}"}`)
      return void res.end(']}')
    }
    answer(res)
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    setKeys: (k) => void (current = k),
    setMode: (m) => void (mode = m),
    release: () => {
      for (const res of held.splice(0)) answer(res)
    },
    waitForHits: (n) => (hits >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** `Basic base64(user:password)`. */
export function basicHeader(user: string, password: string): string {
  return `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)))}`
}

/** base64url of a JSON value (for hand-built tokens). */
export function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
