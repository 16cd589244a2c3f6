// A minimal, real-socket stand-in for the gateway: a node:http server whose handler builds an
// Exchange, runs a middleware chain and proxies the rest to a real upstream over node:http.
// It implements only what the cache needs (respond, tap, onResponseHead, fetchUpstream,
// upstreamHeaders, responseHeaders, readBody) and runs unchanged on Node, Bun and Deno.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  BadGatewayError,
  HOP_BY_HOP_FIELDS,
  PayloadTooLargeError,
  isGatewayError,
  type Exchange,
  type ExchangeRequest,
  type HeaderRecord,
  type Middleware,
  type ResponseTap,
  type UpstreamFetchInit,
  type UpstreamResponse,
} from '@switchboard/core'

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
    const ex = new HarnessExchange(req, res, upstream(), agent)
    void ex.run(middlewares)
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

class HarnessExchange implements Exchange {
  readonly request: ExchangeRequest
  route: Exchange['route'] = undefined
  readonly state: Map<string, unknown> = new Map()
  readonly upstreamHeaders: Record<string, string | undefined> = {}
  upstreamTarget: string
  readonly responseHeaders: Record<string, string | string[]> = {}
  #req: http.IncomingMessage
  #res: http.ServerResponse
  #upstream: string
  #agent: http.Agent
  #taps: ResponseTap[] = []
  #hooks: ((status: number, headers: HeaderRecord) => void)[] = []
  #responded = false
  #body: Uint8Array | undefined

  constructor(req: http.IncomingMessage, res: http.ServerResponse, upstream: string, agent: http.Agent) {
    this.#req = req
    this.#res = res
    this.#upstream = upstream
    this.#agent = agent
    const target = req.url ?? '/'
    const q = target.indexOf('?')
    this.request = {
      method: (req.method ?? 'GET').toUpperCase(),
      target,
      path: q === -1 ? target : target.slice(0, q),
      query: q === -1 ? '' : target.slice(q),
      headers: req.headers as HeaderRecord,
      clientIp: req.socket.remoteAddress ?? '',
      protocol: 'http',
      host: req.headers.host ?? '',
    }
    this.upstreamTarget = target
  }

  get responded(): boolean {
    return this.#responded
  }

  async run(middlewares: Middleware[]): Promise<void> {
    let index = -1
    const dispatch = async (i: number): Promise<void> => {
      if (i <= index) throw new Error('next() called twice')
      index = i
      const layer = middlewares[i]
      if (layer) await layer(this, () => dispatch(i + 1))
      else await this.#proxy()
    }
    try {
      await dispatch(0)
    } catch (err) {
      if (this.#responded) {
        this.#res.destroy()
        return
      }
      const status = isGatewayError(err) ? err.status : 500
      const body = isGatewayError(err) ? err.toBody() : JSON.stringify({ error: { code: 'ERR_INTERNAL', message: String(err) } })
      await this.respond(status, { 'content-type': 'application/json' }, body).catch(() => this.#res.destroy())
    }
  }

  async readBody(limit: number): Promise<Uint8Array> {
    if (this.#body) return this.#body
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of this.#req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new PayloadTooLargeError()
      chunks.push(chunk)
    }
    this.#body = Buffer.concat(chunks)
    return this.#body
  }

  async respond(
    status: number,
    headers: Record<string, string | string[]> = {},
    body?: string | Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#responded) throw new Error('already responded')
    const merged: HeaderRecord = { ...headers, ...this.responseHeaders }
    for (const hook of this.#hooks) hook(status, merged)
    this.#responded = true
    this.#res.writeHead(status, definedHeaders(merged))
    if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      await endWith(this.#res, body)
      return
    }
    for await (const chunk of body) await write(this.#res, chunk)
    await endWith(this.#res)
  }

  fetchUpstream(init: UpstreamFetchInit = {}): Promise<UpstreamResponse> {
    return this.#send(init, false)
  }

  tap(tap: ResponseTap): void {
    this.#taps.push(tap)
  }

  onResponseHead(hook: (status: number, headers: HeaderRecord) => void): void {
    this.#hooks.push(hook)
  }

  /** The last step: forward, stream back through the taps. */
  async #proxy(): Promise<void> {
    const upstream = await this.#send({}, true)
    const headers: HeaderRecord = { ...upstream.headers, ...this.responseHeaders }
    for (const hook of this.#hooks) hook(upstream.status, headers)
    const taps = this.#taps.filter((t) => t.onHead(upstream.status, headers))
    this.#responded = true
    this.#res.writeHead(upstream.status, definedHeaders(headers))
    try {
      for await (const chunk of upstream.body) {
        for (const t of taps) t.onData(chunk)
        await write(this.#res, chunk)
      }
    } catch (err) {
      for (const t of taps) t.onAbort(err)
      upstream.cancel()
      throw err
    }
    for (const t of taps) t.onEnd()
    await endWith(this.#res)
  }

  #send(init: UpstreamFetchInit, withBody: boolean): Promise<UpstreamResponse> {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(this.request.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
    }
    for (const source of [this.upstreamHeaders, init.headers ?? {}]) {
      for (const [name, value] of Object.entries(source)) {
        if (value === undefined) delete headers[name]
        else headers[name] = value
      }
    }
    const method = init.method ?? this.request.method
    if (!withBody || this.#body) delete headers['content-length']
    if (this.#body) headers['content-length'] = String(this.#body.length)
    return new Promise((resolve, reject) => {
      const req = http.request(
        new URL(this.upstreamTarget, this.#upstream),
        { method, headers, agent: this.#agent },
        (res) => {
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
        },
      )
      req.on('error', (cause) => reject(new BadGatewayError({ cause })))
      if (withBody && this.#body) req.end(this.#body)
      else if (withBody && method !== 'GET' && method !== 'HEAD') this.#req.pipe(req)
      else req.end()
    })
  }
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
