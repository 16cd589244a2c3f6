import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  BadRequestError,
  GatewayError,
  HeadersTooLargeError,
  JSON_RESPONSE_HEADERS,
  MethodNotAllowedError,
  type HeaderRecord,
} from '@switchboard/core'
import type { ServerConfig } from '../config/types.ts'
import type { GatewayExchange } from './exchange.ts'
import { NativeExchange } from './native-exchange.ts'
import { checkRequestHead, parseTarget } from './request-checks.ts'
import { RUNTIME } from './select.ts'

/** What the native transport runs for each request (the gateway's current pipeline). */
export interface NativeTransportHandler {
  /** Runs one exchange to completion on the current runtime. */
  run(ex: GatewayExchange): Promise<void>
  /** True while the gateway drains. */
  closing(): boolean
  /** The client address for a peer and its `X-Forwarded-For` (trusted-proxy rule applied). */
  clientIpOf(peer: string, forwardedFor: string | string[] | undefined): string
  /** `server.pipeBodies` of the current config (Bun only: large bodies piped by the runtime). */
  pipeBodies?(): boolean
}

/**
 * The native transport: `Bun.serve` on Bun, `Deno.serve` on Deno, feeding {@link NativeExchange}s
 * to the same pipeline as the node transport. Listening and closing follow what the gateway needs.
 */
export interface NativeTransport {
  readonly kind: 'native'
  /** Requests being served right now (on Bun, piped bodies still being sent included). */
  readonly inFlight: number
  /** No HTTPS on the native transport (`server.tls` keeps a gateway on node:http). */
  readonly tls: undefined
  /** Always empty: WebSocket tunnels run on the node transport. */
  readonly tunnels: Set<Duplex>
  trackTunnel(socket: Duplex): void
  /** Starts listening; resolves with the bound address. */
  listen(port: number, hostname: string): Promise<AddressInfo>
  /** The bound address once listening. */
  address(): AddressInfo | undefined
  /** Stops accepting connections (in-flight requests go on). */
  stopAccepting(): void
  /** Closes every connection now, in-flight ones included. */
  closeAll(): Promise<void>
}

interface BunServer {
  readonly port: number
  readonly pendingRequests: number
  readonly hostname: string
  stop(closeActiveConnections?: boolean): Promise<void> | void
  requestIP(req: Request): { address: string; family: string; port: number } | null
  timeout(req: Request, seconds: number): void
}
interface BunLike {
  serve(options: Record<string, unknown>): BunServer
}
interface DenoServer {
  readonly addr: { hostname: string; port: number }
  shutdown(): Promise<void>
  readonly finished: Promise<void>
}
interface DenoLike {
  serve(options: Record<string, unknown>, handler: (req: Request, info: { remoteAddr: { hostname: string; port: number } }) => Response | Promise<Response>): DenoServer
}

const JSON_HEADERS = JSON_RESPONSE_HEADERS

/**
 * Creates the native transport for the current runtime (Bun or Deno). Head checks the runtime's
 * parser does not do (duplicate Content-Length, Transfer-Encoding not ending in chunked, header
 * count and head size, CONNECT, unknown expectations, Host rules) are done here, before the
 * pipeline; body idle, send timeout, body limits and client aborts live in the exchange.
 * @example
 * const transport = createNativeTransport(config.server, () => limits, { run, closing, clientIpOf })
 * await transport.listen(8080, '127.0.0.1')
 */
export function createNativeTransport(server0: ServerConfig, limits: () => ServerConfig['limits'], handler: NativeTransportHandler): NativeTransport {
  if (RUNTIME === 'node') throw new Error('server.transport: native needs Bun (Node has no native server: use node)')
  const state = { inFlight: 0 }
  const tunnels = new Set<Duplex>()
  let bun: BunServer | undefined
  let deno: DenoServer | undefined
  let bound: AddressInfo | undefined

  function serve(req: Request, peer: string, port: number | undefined, pipe?: (timeoutSeconds: number) => void): Response | Promise<Response> {
    const l = limits()
    const url = req.url
    // One pass over the fields: the record and flat list the exchange keeps, and the head's size.
    const headers: HeaderRecord = {}
    const rawHeaders: string[] = []
    let bytes = req.method.length + url.length + 12
    req.headers.forEach((value, name) => {
      headers[name] = value
      rawHeaders.push(name, value)
      bytes += name.length + value.length + 4
    })
    const refused = check(req.method, headers, rawHeaders, bytes, l)
    if (refused) return errorResponse(refused)
    // The runtime hands over an absolute URL (absolute-form targets keep only their path here: we
    // never connect to the host they name).
    const slash = url.indexOf('/', url.indexOf('//') + 2)
    const parsed = parseTarget(slash === -1 ? '/' : url.slice(slash))
    if (typeof parsed === 'string') return errorResponse(new BadRequestError({ message: parsed }))
    const ex = new NativeExchange({
      request: req,
      target: parsed.target,
      path: parsed.path,
      query: parsed.query,
      normalizedPath: parsed.normalized,
      peerIp: peer,
      clientIp: handler.clientIpOf(peer, headers['x-forwarded-for']),
      localPort: port,
      headers,
      rawHeaders,
      bodyIdleTimeoutMs: l.bodyIdleTimeoutMs,
      sendTimeoutMs: l.sendTimeoutMs,
      closeAfter: handler.closing(),
      pipe,
    })
    state.inFlight++
    ex.onDone(() => state.inFlight--)
    handler.run(ex).then(
      () => ex.settleUnanswered(),
      () => ex.abortResponse(),
    )
    return ex.answer
  }

  return {
    kind: 'native',
    tls: undefined,
    get inFlight() {
      // A piped body is done for the exchange once its head is out; Bun counts it until the last byte.
      return bun ? Math.max(state.inFlight, bun.pendingRequests) : state.inFlight
    },
    tunnels,
    trackTunnel(socket) {
      tunnels.add(socket)
      socket.once('close', () => tunnels.delete(socket))
    },
    listen(port, hostname) {
      if (RUNTIME === 'bun') {
        const Bun = (globalThis as unknown as { Bun: BunLike }).Bun
        bun = Bun.serve({
          port,
          hostname,
          // Bun's idle timer (seconds, checked every few seconds) closes idle keep-alive connections;
          // in-flight requests are timed by the exchange instead (`server.timeout(req, 0)`).
          idleTimeout: Math.min(255, Math.max(1, Math.ceil(server0.keepAliveTimeoutMs / 1000))),
          // Body limits are enforced by the gateway (they may change on reload).
          maxRequestBodySize: Number.MAX_SAFE_INTEGER,
          fetch(req: Request, server: BunServer) {
            server.timeout(req, 0)
            const pipe = handler.pipeBodies?.() ? (seconds: number) => server.timeout(req, seconds) : undefined
            return serve(req, server.requestIP(req)?.address ?? '', server.port, pipe)
          },
          error() {
            return errorResponse(new GatewayError(500, 'ERR_INTERNAL', 'Internal error'))
          },
        })
        bound = { address: bun.hostname, family: hostname.includes(':') ? 'IPv6' : 'IPv4', port: bun.port }
        return Promise.resolve(bound)
      }
      const Deno = (globalThis as unknown as { Deno: DenoLike }).Deno
      return new Promise<AddressInfo>((resolve, reject) => {
        try {
          deno = Deno.serve(
            {
              port,
              hostname,
              onListen: (addr: { hostname: string; port: number }) => {
                bound = { address: addr.hostname, family: addr.hostname.includes(':') ? 'IPv6' : 'IPv4', port: addr.port }
                resolve(bound)
              },
              onError: () => errorResponse(new GatewayError(500, 'ERR_INTERNAL', 'Internal error')),
            },
            (req, info) => serve(req, info.remoteAddr.hostname, bound?.port),
          )
        } catch (err) {
          reject(err)
        }
      })
    },
    address: () => bound,
    stopAccepting() {
      if (bun) void bun.stop(false)
      // Deno's shutdown() stops accepting and waits for in-flight requests.
      if (deno) void deno.shutdown().catch(() => {})
    },
    async closeAll() {
      if (bun) await bun.stop(true)
      if (deno) await Promise.race([deno.finished, new Promise((r) => setTimeout(r, 100))])
    },
  }
}

/**
 * The checks a strict HTTP/1.1 parser makes that Bun's or Deno's does not (measured: both merge
 * duplicate fields, Bun passes duplicate identical Content-Length and CONNECT, Deno passes a
 * missing Host and `Transfer-Encoding: gzip, chunked`), plus the gateway's own head rules, on the
 * request's fields as the runtime hands them over (one value per name) and the head's size.
 */
function check(method: string, h: HeaderRecord, raw: string[], bytes: number, l: ServerConfig['limits']): GatewayError | undefined {
  // RFC 9110 §9.3.6: a reverse proxy has no business tunnelling CONNECT.
  if (method === 'CONNECT') return new MethodNotAllowedError()
  const cl = h['content-length'] as string | undefined
  // RFC 9112 §6.3: several Content-Length values (merged by the runtime as "5, 5") are refused.
  if (cl !== undefined && !/^[0-9]+$/.test(cl)) return new BadRequestError({ message: 'Invalid or repeated Content-Length' })
  const te = h['transfer-encoding'] as string | undefined
  if (te !== undefined) {
    // RFC 9112 §6.1: with both, the message is refused (a smuggling vector); chunked must come last.
    if (cl !== undefined) return new BadRequestError({ message: 'Content-Length with Transfer-Encoding' })
    if (!/(?:^|,)\s*chunked\s*$/i.test(te)) return new BadRequestError({ message: 'Transfer-Encoding must end in chunked' })
  }
  const expect = h.expect as string | undefined
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') return new GatewayError(417, 'ERR_EXPECTATION_FAILED', 'Expectation failed')
  if ((h.upgrade as string | undefined)?.toLowerCase() === 'websocket') {
    return new GatewayError(501, 'ERR_UPGRADE_UNSUPPORTED', 'WebSocket upgrades need server.transport: node')
  }
  // The runtime keeps one field per name: count what we see, and bound the whole head by size.
  if (bytes > l.maxHeaderBytes) return new HeadersTooLargeError()
  // The runtimes do not tell the HTTP version; a request without Host is refused as HTTP/1.1.
  const refused = checkRequestHead({ rawHeaders: raw, headers: { 'transfer-encoding': te }, httpVersionMajor: 1, httpVersionMinor: 1 } as unknown as IncomingMessage, l.maxHeaderCount)
  if (refused) return refused[0] === 431 ? new HeadersTooLargeError({ message: refused[1] }) : new BadRequestError({ message: refused[1] })
  return undefined
}

/** A refusal before any policy ran: short JSON, connection closed. */
function errorResponse(err: GatewayError): Response {
  const text = err.toBody()
  return new Response(text, { status: err.status, headers: { ...JSON_HEADERS, connection: 'close' } })
}
