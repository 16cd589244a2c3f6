import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  BadRequestError,
  GatewayError,
  HeadersTooLargeError,
  MethodNotAllowedError,
  RequestTimeoutError,
  ServiceUnavailableError, JSON_RESPONSE_HEADERS } from '@switchboard/core'
import { isWebSocketUpgrade } from '@switchboard/websocket-tunnel'
import type { ServerConfig } from '../config/types.ts'
import { NodeExchange } from './node-exchange.ts'
import { checkRequestHead, parseTarget } from './request-checks.ts'
import { noop, responseOnSocket, writeRawError } from './socket.ts'
import { createTlsServer, type TlsListener } from './tls.ts'

/** What the transport runs for each request: the current runtime's pipeline. */
export interface TransportHandler {
  /** Runs one exchange to completion on the current runtime (counts it as active there). */
  run(ex: NodeExchange): Promise<void>
  /** True while the gateway drains. */
  closing(): boolean
  /** The client address for this request (trusted-proxy rule applied). */
  clientIp(req: IncomingMessage): string
}

/** The Node transport: a hardened `node:http` server feeding exchanges to the pipeline. */
export interface NodeTransport {
  readonly server: Server
  /** Requests being served right now. */
  readonly inFlight: number
  /** Client sockets no HTTP parser owns any more (WebSocket tunnels, non-WebSocket upgrades). */
  readonly tunnels: Set<Duplex>
  /** Records a socket a tunnel took over (dropped from the set when it closes). */
  trackTunnel(socket: Duplex): void
  /** The HTTPS side (`server.tls`): certificate reload; undefined for plain HTTP. */
  readonly tls: TlsListener | undefined
}

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
const BODY_ON_UPGRADE_REQUEST = IS_DENO || typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'

/** A body Deno's upgrade path delivers whole: none, or a declared length under 60 KiB. */
function smallDeclaredBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return false
  const cl = req.headers['content-length']
  return cl === undefined || Number(cl) <= 60 * 1024
}

const JSON_HEADERS = JSON_RESPONSE_HEADERS

/**
 * Creates the `node:http` server: head limits and timeouts, smuggling defences, 100-continue,
 * upgrades, and an error listener on every stream it touches (an unhandled 'error' kills the
 * process, and Bun emits some on objects Node users rarely listen on). Server settings are read
 * once (listening options cannot change on reload); limits checked per request come from `limits()`.
 */
export function createNodeTransport(server0: ServerConfig, limits: () => ServerConfig['limits'], handler: TransportHandler): NodeTransport {
  const l = server0.limits
  const state = { inFlight: 0 }
  const tunnels = new Set<Duplex>()
  const httpOptions = {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: server0.keepAliveTimeoutMs,
    // Node checks head timeouts on this period; keep it well under headersTimeout.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
    noDelay: true,
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => handle(req, res, false)
  // A TLS handshake gets the head timeout too: a client that never finishes it must not hold a socket.
  const tls = server0.tls ? createTlsServer(server0.tls, httpOptions, onRequest, l.headersTimeoutMs) : undefined
  const server = tls ? tls.server : createServer(httpOptions, onRequest)
  // Keep one field past the limit so an over-long head is seen (and refused) rather than cut short.
  server.maxHeadersCount = 2 * (l.maxHeaderCount + 1)
  server.on('checkContinue', (req, res) => handle(req, res, true))
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    res.on('error', noop)
    res.writeHead(417, { ...JSON_HEADERS })
    res.end(new GatewayError(417, 'ERR_EXPECTATION_FAILED', 'Expectation failed').toBody())
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => onClientError(err, socket))
  // RFC 9110 §9.3.6: a reverse proxy has no business tunnelling CONNECT.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', noop)
    writeRawError(socket, new MethodNotAllowedError())
  })
  server.on('connection', (socket: Socket) => socket.on('error', noop))
  server.on('upgrade', onUpgrade)

  /** Builds the exchange after the checks no runtime parser can be trusted with; undefined when refused. */
  function accept(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): NodeExchange | undefined {
    const limitsNow = limits()
    const refused = checkRequestHead(req, limitsNow.maxHeaderCount)
    if (refused) {
      sendPlainError(res, refused[0] === 431 ? new HeadersTooLargeError({ message: refused[1] }) : new BadRequestError({ message: refused[1] }))
      return undefined
    }
    const parsed = parseTarget(req.url ?? '/')
    if (typeof parsed === 'string') {
      sendPlainError(res, new BadRequestError({ message: parsed }))
      return undefined
    }
    return new NodeExchange(req, res, parsed.target, parsed.path, parsed.query, parsed.normalized, handler.clientIp(req), expectContinue)
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    req.on('error', noop)
    res.on('error', noop)
    state.inFlight++
    res.once('close', () => state.inFlight--)
    if (handler.closing()) res.shouldKeepAlive = false
    const ex = accept(req, res, expectContinue)
    if (!ex) return
    if (ex.hasBody) watchBodyIdle(req, res, limits().bodyIdleTimeoutMs)
    // The pipeline turns errors into responses; what rejects here is a response cut mid-way.
    // (A promise reaction rather than an async function: one allocation per request, not three.)
    handler.run(ex).then(undefined, () => ex.abortResponse())
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', noop)
    req.on('error', noop)
    if (!isWebSocketUpgrade(req)) {
      // The server no longer tracks an upgraded socket: shutdown must find it here.
      track(socket)
      // Not a WebSocket upgrade (h2c, say): serve it as plain HTTP/1.1, body included. Bun's and
      // Deno's node:http deliver the body on `req` (and nothing on the socket); Node leaves it in
      // the socket, so there the request is handed back to the HTTP parser.
      if (IS_DENO && !smallDeclaredBody(req)) {
        // Deno 2.9's node:http stops delivering an upgrade request's body after its first ~64 KiB:
        // refuse clearly rather than hang (curl and others retry without the h2c offer).
        return sendPlainError(
          responseOnSocket(req, socket, () => true),
          new GatewayError(501, 'ERR_UPGRADE_BODY_UNSUPPORTED', 'Send this request without "Upgrade: h2c" (large or chunked bodies cannot be read with it on this runtime)'),
        )
      }
      if (BODY_ON_UPGRADE_REQUEST) handle(req, responseOnSocket(req, socket, () => true), false)
      else replayWithoutUpgrade(req, socket, head)
      return
    }
    // The same server policies, routes, route policies and balancer as HTTP. Until the tunnel takes
    // the socket over, a layer answers through an ordinary response on it (a 401, say).
    const upgrade = { socket, head, tunnelled: false }
    const res = responseOnSocket(req, socket, () => !upgrade.tunnelled)
    if (handler.closing()) return sendPlainError(res, new ServiceUnavailableError())
    const ex = accept(req, res, false)
    if (!ex) return
    ex.upgrade = upgrade
    handler.run(ex).catch(() => socket.destroy())
  }

  /**
   * Node hands a request with `Upgrade:` over as a raw socket and never reads its body. Rebuild the
   * head without the upgrade offer and give the socket back to the HTTP parser, so the request (and
   * its body, framed as sent) goes through the normal path with every limit.
   */
  function track(socket: Duplex): void {
    tunnels.add(socket)
    socket.once('close', () => tunnels.delete(socket))
  }

  function replayWithoutUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const raw = req.rawHeaders
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase()
      if (name === 'upgrade' || name === 'http2-settings') continue
      if (name === 'connection') {
        const kept = raw[i + 1].split(',').map((t) => t.trim()).filter((t) => t && !/^(upgrade|http2-settings)$/i.test(t))
        if (kept.length > 0) text += `${raw[i]}: ${kept.join(', ')}\r\n`
        continue
      }
      text += `${raw[i]}: ${raw[i + 1]}\r\n`
    }
    text += '\r\n'
    socket.unshift(head.length > 0 ? Buffer.concat([Buffer.from(text, 'latin1'), head]) : Buffer.from(text, 'latin1'))
    // An HTTPS server takes raw TCP on 'connection'; the decrypted socket goes back on 'secureConnection'.
    server.emit(tls ? 'secureConnection' : 'connection', socket)
  }

  return {
    server,
    get inFlight() {
      return state.inFlight
    },
    tunnels,
    trackTunnel: track,
    tls,
  }
}

/** A refusal before any policy ran (malformed head): short JSON, connection closed. */
function sendPlainError(res: ServerResponse, err: GatewayError): void {
  res.shouldKeepAlive = false
  const text = err.toBody()
  res.writeHead(err.status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), connection: 'close' })
  res.end(text)
}

function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  socket.on('error', noop)
  // A reset or a half-sent request after the response started: nothing to answer.
  if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
    socket.destroy()
    return
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') return writeRawError(socket, new HeadersTooLargeError())
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return writeRawError(socket, new RequestTimeoutError())
  writeRawError(socket, new BadRequestError())
}

/**
 * Arms the request-body idle timer: silence longer than `ms` while the body arrives → 408 (when no
 * response started yet), then the connection closes once that answer left or a second later.
 */
function watchBodyIdle(req: IncomingMessage, res: ServerResponse, ms: number): void {
  const socket = req.socket
  const onTimeout = (): void => {
    if (req.complete) return
    socket.setTimeout(0)
    if (!res.headersSent && !res.destroyed) {
      res.shouldKeepAlive = false
      const err = new RequestTimeoutError({ message: 'Request body idle timeout' })
      const text = err.toBody()
      res.writeHead(408, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), connection: 'close' })
      res.end(text, () => socket.destroy())
      setTimeout(() => socket.destroy(), 1_000).unref?.()
      return
    }
    socket.destroy()
  }
  // Through the request, not the socket: Node destroys a socket whose timeout no request,
  // response or server listener claims, before our listener could answer 408.
  req.setTimeout(ms, onTimeout)
  const disarm = (): void => {
    socket.setTimeout(0)
    req.off('timeout', onTimeout)
  }
  req.once('end', disarm)
  req.once('close', disarm)
}
