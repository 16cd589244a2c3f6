import type { Exchange, HeaderRecord, RequestInfo, ResponseTap, UpstreamFetchInit, UpstreamResponse } from '@switchboard/core'
import type { ForwardOptions, ForwardResult, RequestUpstreamOptions } from '@switchboard/proxy-pass'
import type { TunnelOptions, TunnelResult } from '@switchboard/websocket-tunnel'

/** Which transport made an exchange: `node:http` or the runtime's own server (`Bun.serve`, `Deno.serve`). */
export type TransportKind = 'node' | 'native'

/** Sends the exchange's request to its route's upstream and returns the response (cache revalidation). */
export type UpstreamFetcher = (ex: GatewayExchange, init: UpstreamFetchInit | undefined) => Promise<UpstreamResponse>

/**
 * What {@link GatewayExchange.forward} takes: proxy-pass's `forward()` options, plus the endpoint's
 * pool settings (a native transport bounds concurrency per endpoint itself; `node:http` leaves it
 * to the pool).
 */
export interface ExchangeForwardOptions extends ForwardOptions {
  /** The endpoint's `pool:` settings. @default the pool's own (node) / 128 connections, 1 s queue (native) */
  poolLimits?: { readonly connections: number; readonly queueTimeoutMs: number }
}

/** What {@link GatewayExchange.requestUpstream} takes (proxy-pass's `requestUpstream()` options). */
export interface ExchangeRequestOptions extends RequestUpstreamOptions {
  /** The endpoint's `pool:` settings (see {@link ExchangeForwardOptions.poolLimits}). @default the pool's own */
  poolLimits?: { readonly connections: number; readonly queueTimeoutMs: number }
}

/** What {@link GatewayExchange.tunnel} takes: the tunnel's options (the client's socket is the exchange's). */
export type ExchangeTunnelOptions = TunnelOptions

/** A WebSocket upgrade in progress (node transport only). */
export interface ExchangeUpgrade {
  /** Set once the tunnel owns the client connection (the exchange's response is then detached). */
  tunnelled: boolean
}

/**
 * The exchange the gateway's pipeline runs on, whatever the transport: the core {@link Exchange}
 * (what policies see), the {@link RequestInfo} a balancer sees, the gateway's own bookkeeping, and
 * the transport-specific operations as methods (proxying, fetching, tunnelling, connection control).
 * `NodeExchange` implements it on `node:http`, `NativeExchange` on Web `Request`/`Response`.
 * @example
 * const terminal = (ex: GatewayExchange) => ex.forward({ pool, target: ex.upstreamTarget })
 */
export interface GatewayExchange extends Exchange, RequestInfo {
  /** The transport that made this exchange. */
  readonly transport: TransportKind
  readonly method: string
  readonly target: string
  readonly headers: HeaderRecord
  readonly clientIp: string
  readonly normalizedPath: string
  upstreamTarget: string
  /** Method sent upstream when it differs from the client's (the `/proxy` envelope). */
  upstreamMethod: string | undefined
  /** The upstream this request is for (its route's, or a tenant's target), for metrics and logs. */
  upstreamName: string | undefined
  /** The endpoint of the last try, for the access log. */
  endpointUrl: string | undefined
  /** Tries sent upstream (1 without retries or hedges). */
  upstreamTries: number
  /** Milliseconds spent in the upstream call, all tries together. */
  upstreamMs: number | undefined
  /** The W3C trace id this request belongs to (received in `traceparent` or generated). */
  traceId: string | undefined
  /** This request's wait for the response head and longest body silence, over the upstream's. */
  upstreamTimeouts: { readonly responseMs: number; readonly idleMs: number } | undefined
  /** `state.get(key)` without creating the map when no layer used it (the hot path reads through this). */
  stateValue(key: string): unknown
  /** The parsed JSON body, when routing read it. */
  body: unknown
  /** The error that became the response, set by the pipeline. */
  error: unknown
  /** Set for WebSocket upgrades: the terminal step tunnels instead of proxying. */
  readonly upgrade: ExchangeUpgrade | undefined
  /** The socket peer's address; forwarding headers are built from it. */
  readonly peerIp: string
  /** Whether this client's forwarding headers are believed (a trusted front proxy). */
  trustForwarded: ((ip: string) => boolean) | undefined
  /** Set when a route matched: how `fetchUpstream()` reaches the route's upstream. */
  fetcher: UpstreamFetcher | undefined
  /** Upstream header edits, or undefined when no layer made any. */
  readonly upstreamHeaderEdits: Record<string, string | undefined> | undefined
  /** True when a layer set response headers or registered an `onResponseHead` hook. */
  readonly editsResponseHead: boolean
  /** The body read by `readBody`, replayed upstream instead of the stream. */
  readonly bufferedBody: Uint8Array | undefined
  /** True when the request carries a body (a length > 0 or chunked framing). */
  readonly hasBody: boolean
  /** Replaces the body sent upstream; `undefined` sends none. */
  replaceBody(bytes: Uint8Array | undefined): void
  /** One tap combining every registered tap (undefined when none). */
  combinedTap(): ResponseTap | undefined
  /** Applies `onResponseHead` hooks and `responseHeaders` to an outgoing head. */
  applyResponseHead(status: number, headers: HeaderRecord): void
  /** Sends `100 Continue` once, when the client asked for it and the body is about to be read. */
  sendContinue(): void

  /** Proxies the request to `options.pool`'s origin and streams the answer back to the client (proxy-pass `forward()` semantics). */
  forward(options: ExchangeForwardOptions): Promise<ForwardResult>
  /** Sends a copy of the request upstream and returns the response (proxy-pass `requestUpstream()` semantics). */
  requestUpstream(options: ExchangeRequestOptions): Promise<UpstreamResponse>
  /** Hands the client connection to a WebSocket tunnel; `onTunnel` gets the socket once the tunnel owns it. */
  tunnel(options: ExchangeTunnelOptions, onTunnel: (socket: import('node:net').Socket) => void): Promise<TunnelResult>
  /** True once the client saw part of the response or went away: nothing may be retried then. */
  readonly committed: boolean
  /** True when the client connection is gone. */
  readonly clientGone: boolean
  /** True when the request body was read to its end (or there is none). */
  readonly bodyComplete: boolean
  /** The connection closes once this response is sent (no keep-alive). */
  closeAfterResponse(): void
  /** Cuts a response that started and cannot finish cleanly (a visible truncation). */
  abortResponse(): void
  /** Calls `fn` once, when the response is finished or abandoned. */
  onDone(fn: () => void): void
  /** Status written to the client, 0 before a head went out. */
  readonly responseStatus: number
  /** A header of the response (as set so far; as written once the head went out). */
  responseHeader(name: string): string | string[] | number | undefined
  /** Bytes read from the client connection so far (heads and bodies; body bytes only on native). */
  readonly bytesRead: number
  /** Bytes written to the client connection so far (heads and bodies; body bytes only on native). */
  readonly bytesWritten: number
}

/**
 * One tap feeding every tap in `taps` that wanted the response (undefined when none was
 * registered); shared by both exchanges' `combinedTap()`.
 * @example combineTaps([cacheTap]) // cacheTap itself
 */
export function combineTaps(taps: readonly ResponseTap[] | undefined): ResponseTap | undefined {
  if (!taps) return undefined
  if (taps.length === 1) return taps[0]
  const active = new Set<ResponseTap>()
  return {
    onHead(status, headers) {
      for (const t of taps) if (t.onHead(status, headers)) active.add(t)
      return active.size > 0
    },
    onData(chunk) {
      for (const t of active) t.onData(chunk)
    },
    onEnd() {
      for (const t of active) t.onEnd()
    },
    onAbort(error) {
      for (const t of active) t.onAbort(error)
    },
  }
}

/**
 * Runs the `onResponseHead` hooks, then sets the layers' `responseHeaders`, on an outgoing head
 * (both exchanges' `applyResponseHead()`).
 * @example
 * const head = { 'content-type': 'text/plain' }
 * applyHeadEdits(undefined, { 'x-served-by': 'gw' }, 200, head) // head['x-served-by'] === 'gw'
 */
export function applyHeadEdits(
  hooks: ReadonlyArray<(status: number, headers: HeaderRecord) => void> | undefined,
  set: Record<string, string | string[]> | undefined,
  status: number,
  headers: HeaderRecord,
): void {
  if (hooks) for (const hook of hooks) hook(status, headers)
  if (set) for (const name in set) headers[name] = set[name]
}

/**
 * What both exchanges keep for the layers that ran on them, allocated only when a layer used it:
 * `state`, upstream header edits, response header edits, response taps and head hooks, and the
 * members of {@link GatewayExchange} read from them. `NodeExchange` and `NativeExchange` extend it.
 * @example
 * class MyExchange extends LayerEdits { readonly headers = {} }
 */
export abstract class LayerEdits {
  abstract readonly headers: HeaderRecord
  #state: Map<string, unknown> | undefined
  #upstreamHeaders: Record<string, string | undefined> | undefined
  #responseHeaders: Record<string, string | string[]> | undefined
  #taps: ResponseTap[] | undefined
  #headHooks: Array<(status: number, headers: HeaderRecord) => void> | undefined

  get state(): Map<string, unknown> {
    this.#state ??= new Map()
    return this.#state
  }

  /** `state.get(key)` without creating the map when no layer used it (the hot path reads through this). */
  stateValue(key: string): unknown {
    return this.#state?.get(key)
  }

  get upstreamHeaders(): Record<string, string | undefined> {
    this.#upstreamHeaders ??= {}
    return this.#upstreamHeaders
  }

  /** Upstream header edits, or undefined when no layer made any (hot path: no allocation). */
  get upstreamHeaderEdits(): Record<string, string | undefined> | undefined {
    return this.#upstreamHeaders
  }

  get responseHeaders(): Record<string, string | string[]> {
    this.#responseHeaders ??= {}
    return this.#responseHeaders
  }

  /** Response header edits, or undefined when no layer made any. */
  get responseHeaderEdits(): Readonly<Record<string, string | string[]>> | undefined {
    return this.#responseHeaders
  }

  /** True when a layer set response headers or registered an `onResponseHead` hook. */
  get editsResponseHead(): boolean {
    return this.#responseHeaders !== undefined || this.#headHooks !== undefined
  }

  /** True when the request carries a body (a length > 0 or chunked framing). */
  get hasBody(): boolean {
    const cl = this.headers['content-length']
    return (cl !== undefined && cl !== '0') || this.headers['transfer-encoding'] !== undefined
  }

  tap(tap: ResponseTap): void {
    ;(this.#taps ??= []).push(tap)
  }

  onResponseHead(hook: (status: number, headers: HeaderRecord) => void): void {
    ;(this.#headHooks ??= []).push(hook)
  }

  /** One tap combining every registered tap (undefined when none). */
  combinedTap(): ResponseTap | undefined {
    return combineTaps(this.#taps)
  }

  /** Applies `onResponseHead` hooks and `responseHeaders` to an outgoing head. */
  applyResponseHead(status: number, headers: HeaderRecord): void {
    applyHeadEdits(this.#headHooks, this.#responseHeaders, status, headers)
  }
}
