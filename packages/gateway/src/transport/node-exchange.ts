import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { forward, type ForwardResult, requestUpstream } from '@switchboard/proxy-pass'
import { tunnelUpgrade, type TunnelResult } from '@switchboard/websocket-tunnel'
import {
  type Exchange,
  type ExchangeRequest,
  type ExchangeResponseInfo,
  NoRouteError,
  type HeaderRecord,
  type MatchedRoute,
  PayloadTooLargeError,
  type RequestInfo,
  type UpstreamFetchInit,
  type UpstreamResponse,
} from '@switchboard/core'

import { LayerEdits, type ExchangeForwardOptions, type ExchangeRequestOptions, type ExchangeTunnelOptions, type ExchangeUpgrade, type GatewayExchange, type UpstreamFetcher } from './exchange.ts'

export type { UpstreamFetcher } from './exchange.ts'

/** A WebSocket upgrade: the socket and the bytes read past the head. */
export interface UpgradeInfo extends ExchangeUpgrade {
  readonly socket: Duplex
  readonly head: Buffer
  /** Set once the tunnel owns the socket (the exchange's response is then detached). */
  tunnelled: boolean
}

/**
 * The Node transport's {@link Exchange}: wraps `req`/`res` without building Web objects. Also the
 * {@link RequestInfo} a balancer sees.
 */
export class NodeExchange extends LayerEdits implements GatewayExchange, Exchange, RequestInfo {
  readonly transport = 'node'
  readonly request: ExchangeRequest
  readonly method: string
  readonly target: string
  readonly headers: HeaderRecord
  readonly clientIp: string
  route: MatchedRoute | undefined = undefined
  upstreamTarget: string
  /** Method sent upstream when it differs from the client's (the `/proxy` envelope). */
  upstreamMethod: string | undefined = undefined
  /** The upstream this request is for (its route's, or a tenant's target), for metrics and logs. */
  upstreamName: string | undefined = undefined
  /** The endpoint of the last try, for the access log. */
  endpointUrl: string | undefined = undefined
  /** Tries sent upstream (1 without retries or hedges). */
  upstreamTries = 0
  /** Milliseconds spent in the upstream call, all tries together. */
  upstreamMs: number | undefined = undefined
  /** The W3C trace id this request belongs to (received in `traceparent` or generated). */
  traceId: string | undefined = undefined
  /** This request's wait for the response head and longest body silence, over the upstream's (a tenant's `timeoutMs`). */
  upstreamTimeouts: { readonly responseMs: number; readonly idleMs: number } | undefined = undefined
  body: unknown = undefined
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** True while the client still waits for `100 Continue`. */
  continuePending: boolean
  /** The error that became the response, set by the pipeline. */
  error: unknown = undefined
  /** Set for WebSocket upgrades: the terminal step tunnels instead of proxying. */
  upgrade: UpgradeInfo | undefined = undefined
  /** The socket peer's address (a front proxy, when one is trusted); forwarding headers are built from it. */
  get peerIp(): string {
    return this.req.socket.remoteAddress ?? ''
  }
  /** Whether this client's forwarding headers are believed (a trusted front proxy). */
  trustForwarded: ((ip: string) => boolean) | undefined = undefined
  /** The normalised path used for routing and authorization decisions (also `request.normalizedPath`). */
  readonly normalizedPath: string
  /** Set when a route matched: how `fetchUpstream()` reaches the route's upstream. */
  fetcher: UpstreamFetcher | undefined = undefined
  #buffered: Uint8Array | undefined
  #responded = false

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    path: string,
    query: string,
    normalizedPath: string,
    clientIp: string,
    continuePending: boolean,
  ) {
    super()
    this.req = req
    this.res = res
    this.method = req.method ?? 'GET'
    this.target = target
    this.headers = req.headers
    this.clientIp = clientIp
    this.upstreamTarget = target
    this.continuePending = continuePending
    this.normalizedPath = normalizedPath
    this.request = {
      method: this.method,
      target,
      path,
      query,
      normalizedPath,
      headers: req.headers,
      clientIp,
      protocol: 'http',
      host: req.headers.host ?? '',
    }
  }

  get response(): ExchangeResponseInfo | undefined {
    const res = this.res
    return res.headersSent ? { status: res.statusCode, headers: res.getHeaders() as HeaderRecord } : undefined
  }

  get responded(): boolean {
    return this.#responded || this.res.headersSent
  }

  /** The body read by {@link readBody}, replayed upstream instead of the stream. */
  get bufferedBody(): Uint8Array | undefined {
    return this.#buffered
  }

  /**
   * Replaces the body sent upstream (the `/proxy` envelope's inner body); `undefined` sends none.
   * The client's own body must have been read first (`readBody`).
   */
  replaceBody(bytes: Uint8Array | undefined): void {
    this.#buffered = bytes ?? new Uint8Array(0)
  }

  /** Sends `100 Continue` once, when the client asked for it and the body is about to be read. */
  sendContinue(): void {
    if (this.continuePending) {
      this.continuePending = false
      this.res.writeContinue()
    }
  }

  async readBody(limit: number): Promise<Uint8Array> {
    if (this.#buffered) {
      if (this.#buffered.byteLength > limit) throw new PayloadTooLargeError({ details: { limit } })
      return this.#buffered
    }
    const declared = Number(this.req.headers['content-length'] ?? Number.NaN)
    if (declared > limit) throw new PayloadTooLargeError({ details: { limit } })
    this.sendContinue()
    const chunks: Buffer[] = []
    let total = 0
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      total += chunk.byteLength
      if (total > limit) throw new PayloadTooLargeError({ details: { limit } })
      chunks.push(chunk)
    }
    this.#buffered = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)
    return this.#buffered
  }

  async respond(
    status: number,
    headers: Record<string, string | string[]> = {},
    body?: string | Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.responded) throw new Error('respond() called after the response started')
    this.#responded = true
    const res = this.res
    const out: HeaderRecord = { ...headers }
    this.applyResponseHead(status, out)
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body
      if (out['content-length'] === undefined && !('transfer-encoding' in out)) out['content-length'] = String(bytes.byteLength)
      res.writeHead(status, out as Record<string, string | string[]>)
      res.end(bytes)
      return
    }
    if (body === undefined) {
      if (out['content-length'] === undefined && status !== 204 && status !== 304) out['content-length'] = '0'
      res.writeHead(status, out as Record<string, string | string[]>)
      res.end()
      return
    }
    res.writeHead(status, out as Record<string, string | string[]>)
    try {
      for await (const chunk of body) {
        if (res.destroyed) return
        if (!res.write(chunk)) await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done)
            res.off('close', done)
            resolve()
          }
          res.on('drain', done)
          res.on('close', done)
        })
      }
      res.end()
    } catch (err) {
      // A body that fails mid-way must show as truncated, never as a clean end.
      res.destroy(err as Error)
    }
  }

  fetchUpstream(init?: UpstreamFetchInit): Promise<UpstreamResponse> {
    return this.fetcher ? this.fetcher(this, init) : Promise.reject(new NoRouteError())
  }

  // Transport operations (GatewayExchange): proxy-pass on `req`/`res`, exactly as the terminals called it.

  forward(options: ExchangeForwardOptions): Promise<ForwardResult> {
    // Over TLS the upstream learns the client's scheme; the transport keeps error listeners on req/res.
    if (options.proto === undefined && (this.req.socket as { encrypted?: boolean }).encrypted === true) options.proto = 'https'
    options.errorListenersSet = true
    return forward(this.req, this.res, options)
  }

  requestUpstream(options: ExchangeRequestOptions): Promise<UpstreamResponse> {
    return requestUpstream(this.req, options)
  }

  tunnel(options: ExchangeTunnelOptions, onTunnel: (socket: Socket) => void): Promise<TunnelResult> {
    const upgrade = this.upgrade
    if (!upgrade) return Promise.reject(new Error('tunnel() needs a WebSocket upgrade request'))
    const { socket, head } = upgrade
    // From here on the tunnel owns the socket; the exchange's response can no longer be used.
    upgrade.tunnelled = true
    this.res.detachSocket(socket as Socket)
    onTunnel(socket as Socket)
    return tunnelUpgrade(this.req, socket, head, options)
  }

  get committed(): boolean {
    return this.res.headersSent || this.req.destroyed
  }

  get clientGone(): boolean {
    return this.res.destroyed
  }

  get bodyComplete(): boolean {
    return this.req.complete
  }

  closeAfterResponse(): void {
    this.res.shouldKeepAlive = false
  }

  abortResponse(): void {
    if (!this.res.writableFinished) this.res.destroy()
  }

  onDone(fn: () => void): void {
    this.res.once('close', fn)
  }

  get responseStatus(): number {
    return this.res.headersSent ? this.res.statusCode : 0
  }

  responseHeader(name: string): string | string[] | number | undefined {
    return this.res.getHeader(name)
  }

  get bytesRead(): number {
    return this.req.socket?.bytesRead ?? 0
  }

  get bytesWritten(): number {
    return this.req.socket?.bytesWritten ?? 0
  }
}
