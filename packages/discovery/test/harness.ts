// Real-socket test harness (after packages/cache/test/harness.ts): counting upstreams on
// 127.0.0.1:0, a node:http proxy whose handler builds the core test kit's Exchange
// (`createTestExchange` from @switchboard/core/testing) on the incoming request and runs a
// middleware chain with `compose()`, and a DiscoveryTransport on requestUpstream() from
// @switchboard/proxy-pass. Runs unchanged on Node, Bun and Deno.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { compose, NoRouteError, respondWithError, type Exchange, type HeaderRecord, type Middleware, type UpstreamResponse } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { createUpstreamPool, requestUpstream, type UpstreamPool } from '@switchboard/proxy-pass'
import type { DiscoveryTransport } from '../src/index.ts'

/** One request an upstream received, body read whole. */
export interface Received {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** Answers one request; `n` counts from 1. */
export type UpstreamHandler = (req: Received, res: http.ServerResponse, n: number) => void

/** A real upstream that counts and records what it receives. */
export interface Upstream {
  readonly origin: string
  readonly count: number
  readonly requests: Received[]
  /** Replaces the handler (an upstream that "starts failing"). */
  handle(handler: UpstreamHandler): void
  close(): Promise<void>
}

/** Starts a recording upstream on 127.0.0.1:0; the handler sees the request body read whole. */
export async function startUpstream(handler: UpstreamHandler): Promise<Upstream> {
  const requests: Received[] = []
  let current = handler
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }
      requests.push(received)
      current(received, res, requests.length)
    })
  })
  const origin = await listen(server)
  return {
    origin,
    get count() {
      return requests.length
    },
    requests,
    handle(next) {
      current = next
    },
    close: () => closeServer(server),
  }
}

/** An upstream handler that answers `status` with `body`. */
export const answer =
  (status: number, body = `status ${status}`, headers: Record<string, string> = {}): UpstreamHandler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers })
    res.end(body)
  }

/** An origin nothing listens on (a port that was just closed). */
export async function deadOrigin(): Promise<string> {
  const server = http.createServer()
  const origin = await listen(server)
  await closeServer(server)
  return origin
}

/** The proxy under test: its origin and a close function. */
export interface Proxy {
  readonly origin: string
  close(): Promise<void>
}

/** Starts a node:http proxy running `middlewares`; a request nobody answers gets 404 `ERR_NO_ROUTE`. */
export async function startProxy(middlewares: Middleware[]): Promise<Proxy> {
  const server = http.createServer((req, res) => {
    const ex = createTestExchange({
      method: req.method,
      target: req.url,
      headers: req.headers as HeaderRecord,
      clientIp: req.socket.remoteAddress ?? '',
      body: req as AsyncIterable<Uint8Array>,
      upstream: () => Promise.reject(new NoRouteError()),
      onRespond: (status, headers, body) => writeResponse(res, status, headers, body),
    })
    requests.set(ex, req)
    const run = compose(middlewares, {
      terminal: () => Promise.reject(new NoRouteError()),
      onError: (error, exchange) => {
        // The body may be partly unread: do not reuse this connection.
        res.shouldKeepAlive = false
        return respondWithError(error, exchange)
      },
    })
    // An error after the head was written cannot become a response: cut the connection.
    run(ex).catch(() => res.destroy())
  })
  const origin = await listen(server)
  return { origin, close: () => closeServer(server) }
}

/** A transport on `requestUpstream()`, one undici pool per endpoint origin. */
export interface TestTransport extends DiscoveryTransport {
  close(): Promise<void>
}

/** Creates the test transport; close it after the proxy. */
export function createTestTransport(): TestTransport {
  const pools = new Map<string, UpstreamPool>()
  return {
    send(ex, endpointUrl, body): Promise<UpstreamResponse> {
      const url = new URL(endpointUrl)
      let pool = pools.get(url.origin)
      if (!pool) pools.set(url.origin, (pool = createUpstreamPool(url.origin)))
      const req = requests.get(ex)
      if (!req) throw new Error('not a harness exchange')
      const base = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
      return requestUpstream(req, {
        pool,
        target: base + ex.upstreamTarget,
        headers: ex.upstreamHeaders,
        clientIp: ex.request.clientIp,
        body,
      })
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.destroy()))
      pools.clear()
    },
  }
}

/** A response read whole by {@link send}. */
export interface ClientResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request on a fresh connection (no keep-alive, so nothing stays open). */
export function send(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; chunked?: boolean } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (init.chunked && init.body !== undefined) {
      // No Content-Length: Node sends Transfer-Encoding: chunked.
      req.write(init.body)
      req.end()
    } else req.end(init.body)
  })
}

/** Opens a request and hands back the streaming response. */
export function open(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false }, resolve)
    req.on('error', reject)
    req.end()
  })
}

const requests = new WeakMap<Exchange, http.IncomingMessage>()

/** The kit's response sink: writes the head, then each chunk with backpressure; a failure cuts the response. */
async function writeResponse(res: http.ServerResponse, status: number, headers: HeaderRecord, body: AsyncIterable<Uint8Array>): Promise<void> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && name !== 'transfer-encoding') out[name] = value
  res.writeHead(status, out)
  try {
    for await (const chunk of body) await write(res, chunk)
  } catch (err) {
    res.destroy()
    throw err
  }
  await endWith(res)
}

function write(res: http.ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.write(chunk)) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = (): void => {
      res.off('close', closed)
      resolve()
    }
    const closed = (): void => {
      res.off('drain', done)
      reject(new Error('client closed'))
    }
    res.once('drain', done)
    res.once('close', closed)
  })
}

function endWith(res: http.ServerResponse, body?: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => res.end(body, () => resolve()))
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  })
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}
