import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { createUpstreamPool, forward, type ForwardOptions, type ForwardResult, type UpstreamPool, type UpstreamPoolOptions } from '../src/index.ts'

const cleanups: Array<() => Promise<void> | void> = []

/** Registers something to undo in `afterEach`. */
export function defer(fn: () => Promise<void> | void): void {
  cleanups.push(fn)
}

/** Runs and forgets every deferred cleanup, newest first. */
export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!
    await fn()
  }
}

/** A `node:http` server on 127.0.0.1:0 that counts its TCP connections; closed in cleanup. */
export async function httpServer(handler: RequestListener): Promise<{ url: string; port: number; server: http.Server; connections: () => number }> {
  const server = http.createServer(handler)
  let connections = 0
  server.on('connection', () => connections++)
  const port = await listen(server)
  defer(() => closeServer(server))
  return { url: `http://127.0.0.1:${port}`, port, server, connections: () => connections }
}

/** A raw TCP server on 127.0.0.1:0 to send exact bytes; closed in cleanup. */
export async function rawServer(onSocket: (socket: net.Socket) => void): Promise<{ url: string; port: number; connections: () => number }> {
  const sockets = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onSocket(socket)
  })
  const port = await listen(server)
  defer(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return { url: `http://127.0.0.1:${port}`, port, connections: () => connections }
}

export interface ProxyFixture {
  url: string
  port: number
  pool: UpstreamPool
  /** Results and errors of every forward() call, in order. */
  results: Array<ForwardResult | Error>
  /** Resolves with the next forward() outcome not read yet, in order. */
  next: () => Promise<ForwardResult | Error>
}

/**
 * A proxy server in front of `upstream`: forward() and, on rejection, the error's JSON body.
 * `options` may be a function of the request for per-test settings.
 */
export async function proxyServer(
  upstream: string,
  options: Partial<ForwardOptions> | ((req: IncomingMessage) => Partial<ForwardOptions>) = {},
  poolOptions: UpstreamPoolOptions = {},
): Promise<ProxyFixture> {
  const pool = createUpstreamPool(upstream, { keepAliveTimeoutMs: 10_000, ...poolOptions })
  defer(() => pool.destroy())
  const results: Array<ForwardResult | Error> = []
  const waiters: Array<(value: ForwardResult | Error) => void> = []
  let read = 0
  const settle = (value: ForwardResult | Error): void => {
    results.push(value)
    if (waiters.length > 0) {
      read++
      waiters.shift()!(value)
    }
  }
  const { url } = await httpServer((req: IncomingMessage, res: ServerResponse) => {
    const extra = typeof options === 'function' ? options(req) : options
    forward(req, res, { pool, ...extra }).then(settle, (error: Error & { status: number; toBody(): string }) => {
      settle(error)
      if (!res.headersSent) res.writeHead(error.status, { 'content-type': 'application/json' }).end(error.toBody())
    })
  })
  return {
    url,
    port: Number(new URL(url).port),
    pool,
    results,
    next: () => (read < results.length ? Promise.resolve(results[read++]) : new Promise((resolve) => waiters.push(resolve))),
  }
}

export interface ClientResponse {
  status: number
  statusMessage: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

/** One request with `node:http`; resolves with the whole response, rejects on a truncated one. */
export function request(
  url: string,
  init: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders | string[]; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: init.method ?? 'GET',
        path: init.path ?? '/',
        headers: init.headers,
        agent: init.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('aborted', () => reject(new Error('response aborted')))
        res.on('end', () => {
          if (!res.complete) return reject(new Error('response truncated'))
          resolve({
            status: res.statusCode!,
            statusMessage: res.statusMessage!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          })
        })
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

/**
 * Sends `head` (CRLF line endings added) plus `body` on a raw socket and resolves with everything
 * the server sends until it closes the connection. Send `Connection: close`.
 */
export function rawRequest(port: number, head: string[], body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('end', () => {
      socket.destroy()
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`)
  })
}

/** Header values of `name` (any case) in a raw header list. */
export function rawValues(raw: string[], name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) values.push(raw[i + 1])
  return values
}

/** Resolves on the first `event` of `emitter`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (value: T) => resolve(value)))
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}
