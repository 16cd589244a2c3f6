import type { Socket } from 'node:net'
import { type Exchange, type UpstreamFetchInit, type UpstreamResponse } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import { forward, type ForwardResult, requestUpstream, type UpstreamPool } from '@switchboard/proxy-pass'
import { type TunnelGroup, tunnelUpgrade, type TunnelResult } from '@switchboard/websocket-tunnel'
import { BODY_LIMIT_STATE } from '@switchboard/policies'
import type { LimitsConfig } from '../config/types.ts'
import type { RouteRuntime } from '../runtime/runtime.ts'
import { basePathOf, type UpstreamRuntime } from '../runtime/upstream.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'
import { callUpstream, type UpstreamCall, type Verdict } from '../upstream/call.ts'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** The terminal step of an HTTP request: forward to the route's upstream, streaming both ways. */
class ProxyCall implements UpstreamCall<ForwardResult> {
  readonly kind = 'proxy'
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: NodeExchange
  readonly retryable: boolean
  readonly #limits: LimitsConfig

  constructor(ex: NodeExchange, upstream: UpstreamRuntime, limits: LimitsConfig) {
    this.request = ex
    this.upstream = upstream
    this.#limits = limits
    this.retryable = IDEMPOTENT.has(ex.method) && (ex.bufferedBody !== undefined || !ex.hasBody)
  }

  prepare(endpoint: EndpointState): void {
    const ex = this.request
    ex.sendContinue()
    const sticky = this.upstream.balancer.responseHeaders?.(endpoint, ex)
    if (sticky) Object.assign(ex.responseHeaders, sticky)
  }

  send(endpoint: EndpointState, pool: UpstreamPool): Promise<ForwardResult> {
    const ex = this.request
    const timeouts = this.upstream.config.timeouts
    return forward(ex.req, ex.res, {
      pool,
      target: basePathOf(endpoint.url) + ex.upstreamTarget,
      headers: ex.upstreamHeaderEdits,
      clientIp: ex.peerIp,
      responseTimeoutMs: timeouts.responseMs,
      idleTimeoutMs: timeouts.idleMs,
      body: ex.bufferedBody,
      // A route's body-limit policy can only lower the server's limit (BODY_LIMIT_STATE).
      maxBodyBytes: Math.min(this.#limits.maxRequestBodyBytes, (ex.state.get(BODY_LIMIT_STATE) as number | undefined) ?? Number.POSITIVE_INFINITY),
      sendTimeoutMs: this.#limits.sendTimeoutMs,
      trustForwarded: ex.trustForwarded,
      // Hooks and `responseHeaders` are applied together, once; no closure when nothing edits.
      onResponseHead: ex.editsResponseHead ? (status, headers) => ex.applyResponseHead(status, headers) : undefined,
      tap: ex.combinedTap(),
    })
  }

  judge(result: ForwardResult): Verdict {
    return { ok: result.status < 500 && !result.aborted, status: result.status }
  }

  committed(): boolean {
    return this.request.res.headersSent || this.request.req.destroyed
  }
}

/** A request sent upstream whose response comes back to the caller (cache revalidation, probes). */
class FetchCall implements UpstreamCall<UpstreamResponse> {
  readonly tried: EndpointState[] = []
  readonly kind: 'fetch' | 'probe'
  readonly upstream: UpstreamRuntime
  readonly request: NodeExchange
  readonly retryable: boolean
  readonly pinned: EndpointState | undefined
  readonly #init: UpstreamFetchInit | undefined
  readonly #body: Uint8Array | undefined

  constructor(
    ex: NodeExchange,
    upstream: UpstreamRuntime,
    init: UpstreamFetchInit | undefined,
    options: { pinned?: EndpointState; body?: Uint8Array } = {},
  ) {
    this.request = ex
    this.upstream = upstream
    this.#init = init
    this.pinned = options.pinned
    this.kind = options.pinned ? 'probe' : 'fetch'
    this.#body = options.body ?? ex.bufferedBody
    this.retryable = IDEMPOTENT.has(init?.method ?? ex.method) && (this.#body !== undefined || !ex.hasBody)
  }

  send(endpoint: EndpointState, pool: UpstreamPool): Promise<UpstreamResponse> {
    const ex = this.request
    const timeouts = this.upstream.config.timeouts
    const edits = this.#init?.headers
    return requestUpstream(ex.req, {
      pool,
      method: this.#init?.method ?? ex.method,
      target: basePathOf(endpoint.url) + ex.upstreamTarget,
      headers: edits ? { ...ex.upstreamHeaderEdits, ...edits } : ex.upstreamHeaderEdits,
      clientIp: ex.peerIp,
      body: this.#body,
      trustForwarded: ex.trustForwarded,
      responseTimeoutMs: timeouts.responseMs,
      idleTimeoutMs: timeouts.idleMs,
    })
  }

  judge(result: UpstreamResponse): Verdict {
    return { ok: result.status < 500, status: result.status }
  }

  committed(): boolean {
    return false
  }
}

/** A WebSocket upgrade relayed to the route's upstream. */
class TunnelCall implements UpstreamCall<TunnelResult> {
  readonly kind = 'tunnel'
  readonly retryable = false
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: NodeExchange
  readonly #route: RouteRuntime
  readonly #onTunnel: (socket: Socket) => void
  readonly #group: TunnelGroup | undefined

  constructor(ex: NodeExchange, route: RouteRuntime, onTunnel: (socket: Socket) => void, group: TunnelGroup | undefined) {
    this.request = ex
    this.#route = route
    this.upstream = route.upstream
    this.#onTunnel = onTunnel
    this.#group = group
  }

  send(endpoint: EndpointState): Promise<TunnelResult> {
    const ex = this.request
    const upgrade = ex.upgrade!
    const { socket, head } = upgrade
    // From here on the tunnel owns the socket; the exchange's response can no longer be used.
    upgrade.tunnelled = true
    ex.res.detachSocket(socket as Socket)
    this.#onTunnel(socket as Socket)
    const ws = this.#route.config.websocket
    return tunnelUpgrade(ex.req, socket, head, {
      target: endpoint.url,
      path: basePathOf(endpoint.url) + ex.upstreamTarget,
      clientIp: ex.peerIp,
      connectTimeoutMs: this.upstream.config.timeouts.connectMs,
      handshakeTimeoutMs: this.upstream.config.timeouts.responseMs,
      headers: ex.upstreamHeaderEdits,
      maxMessageBytes: ws?.maxMessageBytes,
      idleTimeoutMs: ws?.idleTimeoutMs,
      pingIntervalMs: ws?.pingIntervalMs,
      group: this.#group,
    })
  }

  judge(result: TunnelResult): Verdict {
    // An upstream refusal (403) is an answer; only a failed connect or handshake counts against it.
    return { ok: result.outcome !== 'failed', status: result.status }
  }

  committed(): boolean {
    return true
  }
}

/** Proxies the exchange to its route's upstream (retries per the upstream's rule). */
export function proxyToUpstream(ex: NodeExchange, route: RouteRuntime, limits: LimitsConfig): Promise<void> {
  return callUpstream(new ProxyCall(ex, route.upstream, limits)).then(noop)
}

function noop(): void {}

/** Tunnels a WebSocket upgrade to the route's upstream; `onTunnel` gets the client socket once the tunnel owns it. */
export async function tunnelToUpstream(
  ex: NodeExchange,
  route: RouteRuntime,
  onTunnel: (socket: Socket) => void,
  group?: TunnelGroup,
): Promise<TunnelResult> {
  return callUpstream(new TunnelCall(ex, route, onTunnel, group))
}

/** `ex.fetchUpstream()` for a matched route: the same call as proxying, returning the response. */
export function fetchFromUpstream(ex: NodeExchange, route: RouteRuntime, init: UpstreamFetchInit | undefined): Promise<UpstreamResponse> {
  return callUpstream(new FetchCall(ex, route.upstream, init))
}

/** A discovery probe to one endpoint, counted in that endpoint's stats and health. */
export function probeEndpoint(upstream: UpstreamRuntime, ex: Exchange, url: string, body: Uint8Array | undefined): Promise<UpstreamResponse> {
  const pinned = upstream.endpoints.find((e) => e.url === url)
  if (!pinned) return Promise.reject(new Error(`discovery endpoint ${url} is not configured`))
  return callUpstream(new FetchCall(ex as NodeExchange, upstream, undefined, { pinned, body }))
}
