// A minimal, real-socket stand-in for the gateway: a node:http server whose handler builds the
// core test kit's Exchange (`createTestExchange` from @switchboard/core/testing) on the incoming
// request, runs a middleware chain with `compose()` and proxies the rest to a real upstream over
// node:http, playing the upstream response through the taps with `ex.deliver()` as the gateway
// does. Runs unchanged on Node, Bun and Deno.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  BadGatewayError,
  HOP_BY_HOP_FIELDS,
  compose,
  type HeaderRecord,
  type Middleware,
  type UpstreamFetchInit,
  type UpstreamResponse,
} from '@switchboard/core'
import { createTestExchange, type TestExchange } from '@switchboard/core/testing'

/** A real upstream that counts the requests it receives. */
export interface Upstream {
  readonly origin: string
  /** Requests received so far. */
  readonly count: number
  /** Method, target and headers of every request, in arrival order. */
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[]
  close(): Promise<void>
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void

/** Starts a counting upstream on 127.0.0.1:0. */
export async function startUpstream(handler: UpstreamHandler): Promise<Upstream> {
  const requests: Upstream['requests'] = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    handler(req, res, requests.length)
  })
  const origin = await listen(server)
  return {
    origin,
    get count() {
      return requests.length
    },
    requests,
    close: () => closeServer(server),
  }
}

/** The proxy under test. */
export interface Harness {
  readonly origin: string
  close(): Promise<void>
}

/** Starts the harness proxy in front of `upstream` running `middlewares`. */
export async function startHarness(middlewares: Middleware[], upstream: () => string): Promise<Harness> {
  const agent = new http.Agent({ keepAlive: true })
  const server = http.createServer((req, res) => {
    const origin = upstream()
    const ex = createTestExchange({
      method: req.method,
      target: req.url,
      headers: req.headers as HeaderRecord,
      clientIp: req.socket.remoteAddress ?? '',
      body: req as AsyncIterable<Uint8Array>,
      upstream: (init) => sendUpstream(ex, req, origin, agent, init ?? {}, false),
      onRespond: (status, headers, body) => writeResponse(res, status, headers, body),
    })
    // The last step: forward, and stream the answer back through the taps.
    const proxy = async (): Promise<void> => ex.deliver(await sendUpstream(ex, req, origin, agent, {}, true))
    // An error after the head was written cannot become a response: cut the connection.
    compose(middlewares, { terminal: proxy })(ex).catch(() => res.destroy())
  })
  const origin = await listen(server)
  return {
    origin,
    close: async () => {
      await closeServer(server)
      agent.destroy()
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
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

/** Opens a request and hands back the streaming response. */
export function open(url: string, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers, agent: false }, resolve)
    req.on('error', reject)
    req.end()
  })
}

// The connection-only fields, plus Host: the harness sends its own.
const HOP_BY_HOP = new Set([...HOP_BY_HOP_FIELDS, 'host'])

/** Sends the exchange's request upstream; `withBody` forwards the client's body (the proxy step). */
function sendUpstream(
  ex: TestExchange,
  req: http.IncomingMessage,
  origin: string,
  agent: http.Agent,
  init: UpstreamFetchInit,
  withBody: boolean,
): Promise<UpstreamResponse> {
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(ex.request.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
  }
  for (const source of [ex.upstreamHeaders, init.headers ?? {}]) {
    for (const [name, value] of Object.entries(source)) {
      if (value === undefined) delete headers[name]
      else headers[name] = value
    }
  }
  const method = init.method ?? ex.request.method
  const body = ex.bufferedBody
  if (!withBody || body) delete headers['content-length']
  if (body) headers['content-length'] = String(body.byteLength)
  return new Promise((resolve, reject) => {
    const upstreamReq = http.request(new URL(ex.upstreamTarget, origin), { method, headers, agent }, (res) => {
      const responseHeaders: HeaderRecord = {}
      for (const [name, value] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(name)) responseHeaders[name] = value
      resolve({
        status: res.statusCode ?? 0,
        headers: responseHeaders,
        body: res as AsyncIterable<Uint8Array>,
        cancel: () => {
          res.resume()
          if (!res.complete) res.destroy()
        },
      })
    })
    upstreamReq.on('error', (cause) => reject(new BadGatewayError({ cause })))
    if (withBody && body) upstreamReq.end(body)
    else if (withBody && method !== 'GET' && method !== 'HEAD') req.pipe(upstreamReq)
    else upstreamReq.end()
  })
}

/** The kit's response sink: writes the head, then each chunk with backpressure; a failure cuts the response. */
async function writeResponse(res: http.ServerResponse, status: number, headers: HeaderRecord, body: AsyncIterable<Uint8Array>): Promise<void> {
  res.writeHead(status, definedHeaders(headers))
  try {
    for await (const chunk of body) await write(res, chunk)
  } catch (err) {
    res.destroy()
    throw err
  }
  await endWith(res)
}

function definedHeaders(headers: HeaderRecord): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && name !== 'transfer-encoding') out[name] = value
  return out
}

function write(res: http.ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.write(chunk)) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = (): void => {
      res.off('drain', done)
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
