import type { Socket } from 'node:net'
import { noop } from '../transport/socket.ts'
import { type Exchange, GatewayError, type UpstreamFetchInit, type UpstreamResponse } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import type { ForwardResult, UpstreamPool } from '@switchboard/proxy-pass'
import type { TunnelGroup, TunnelResult } from '@switchboard/websocket-tunnel'
import { BODY_LIMIT_STATE } from '@switchboard/policies'
import type { LimitsConfig, RouteConfig } from '../config/types.ts'
import type { RouteRuntime } from '../runtime/runtime.ts'
import { basePathOf, type UpstreamRuntime } from '../runtime/upstream.ts'
import type { GatewayExchange } from '../transport/exchange.ts'
import { parseJson } from './json-body.ts'
import { type AttemptContext, callUpstream, type UpstreamCall, type Verdict } from '../upstream/call.ts'
import { RETRYABLE_STATUS_CODE } from '../upstream/resilience.ts'
import { meteredToUpstream } from './usage.ts'

/** Methods a retry may send again (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** The terminal step of an HTTP request: forward to the route's upstream, streaming both ways. */
class ProxyCall implements UpstreamCall<ForwardResult> {
  readonly kind = 'proxy'
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: GatewayExchange
  readonly retryable: boolean
  readonly replayable: boolean
  readonly route: RouteConfig | undefined
  readonly attempt: AttemptContext = {}
  readonly #limits: LimitsConfig

  constructor(ex: GatewayExchange, upstream: UpstreamRuntime, limits: LimitsConfig, route?: RouteConfig) {
    this.request = ex
    this.upstream = upstream
    this.route = route
    this.#limits = limits
    this.replayable = ex.bufferedBody !== undefined || !ex.hasBody
    this.retryable = IDEMPOTENT.has(ex.method) && this.replayable
  }

  prepare(endpoint: EndpointState): void {
    this.request.sendContinue()
    pointAt(this.request, this.upstream, endpoint)
  }

  send(endpoint: EndpointState, pool: UpstreamPool): Promise<ForwardResult> {
    const ex = this.request
    const timeouts = ex.upstreamTimeouts ?? this.upstream.config.timeouts
    ex.upstreamTries++
    return ex.forward({
      pool,
      poolLimits: this.upstream.config.pool,
      method: ex.upstreamMethod,
      target: basePathOf(endpoint.url) + ex.upstreamTarget,
      headers: withDeadline(this.upstream.editsFor(endpoint, ex.upstreamHeaderEdits, ex.headers), this.attempt),
      clientIp: ex.peerIp,
      responseTimeoutMs: headWait(timeouts.responseMs, this.attempt),
      shouldRetry: this.attempt.shouldRetry,
      idleTimeoutMs: timeouts.idleMs,
      body: ex.bufferedBody,
      // A route's body-limit policy can only lower the server's limit (BODY_LIMIT_STATE).
      maxBodyBytes: Math.min(this.#limits.maxRequestBodyBytes, (ex.stateValue(BODY_LIMIT_STATE) as number | undefined) ?? Number.POSITIVE_INFINITY),
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
    return this.request.committed
  }
}

/** A request sent upstream whose response comes back to the caller (cache revalidation, probes). */
class FetchCall implements UpstreamCall<UpstreamResponse> {
  readonly tried: EndpointState[] = []
  readonly kind: 'fetch' | 'probe'
  readonly upstream: UpstreamRuntime
  readonly request: GatewayExchange
  readonly retryable: boolean
  readonly pinned: EndpointState | undefined
  readonly replayable: boolean
  readonly route: RouteConfig | undefined
  readonly attempt: AttemptContext = {}
  readonly #init: UpstreamFetchInit | undefined
  readonly #body: Uint8Array | undefined

  constructor(
    ex: GatewayExchange,
    upstream: UpstreamRuntime,
    init: UpstreamFetchInit | undefined,
    options: { pinned?: EndpointState; body?: Uint8Array; route?: RouteConfig } = {},
  ) {
    this.request = ex
    this.upstream = upstream
    this.#init = init
    this.pinned = options.pinned
    this.route = options.route
    this.kind = options.pinned ? 'probe' : 'fetch'
    this.#body = options.body ?? ex.bufferedBody
    this.replayable = this.#body !== undefined || !ex.hasBody
    this.retryable = IDEMPOTENT.has(init?.method ?? ex.method) && this.replayable
  }

  async send(endpoint: EndpointState, pool: UpstreamPool): Promise<UpstreamResponse> {
    const ex = this.request
    const timeouts = ex.upstreamTimeouts ?? this.upstream.config.timeouts
    const edits = this.#init?.headers
    const base = this.upstream.editsFor(endpoint, ex.upstreamHeaderEdits, ex.headers)
    const res = await ex.requestUpstream({
      pool,
      poolLimits: this.upstream.config.pool,
      method: this.#init?.method ?? ex.upstreamMethod ?? ex.method,
      target: basePathOf(endpoint.url) + ex.upstreamTarget,
      headers: withDeadline(edits ? { ...base, ...edits } : base, this.attempt),
      clientIp: ex.peerIp,
      body: this.#body,
      trustForwarded: ex.trustForwarded,
      responseTimeoutMs: headWait(timeouts.responseMs, this.attempt),
      idleTimeoutMs: timeouts.idleMs,
    })
    return discardForRetry(res, this.attempt)
  }

  judge(result: UpstreamResponse): Verdict {
    return { ok: result.status < 500, status: result.status }
  }

  committed(): boolean {
    return false
  }
}

/**
 * One leg of a hedged request: sent with `requestUpstream()` (never written to the client by
 * itself), abortable when the other leg wins.
 */
class HedgeCall implements UpstreamCall<UpstreamResponse> {
  readonly kind = 'fetch'
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: GatewayExchange
  readonly retryable = true
  readonly replayable = true
  readonly route: RouteConfig
  readonly attempt: AttemptContext = {}
  readonly #abort = new AbortController()
  readonly #decided: () => boolean

  constructor(ex: GatewayExchange, upstream: UpstreamRuntime, route: RouteConfig, decided: () => boolean) {
    this.request = ex
    this.upstream = upstream
    this.route = route
    this.#decided = decided
  }

  prepare(): void {
    this.request.sendContinue()
  }

  async send(endpoint: EndpointState, pool: UpstreamPool): Promise<UpstreamResponse> {
    const ex = this.request
    const timeouts = ex.upstreamTimeouts ?? this.upstream.config.timeouts
    ex.upstreamTries++
    ex.endpointUrl = endpoint.url
    const res = await ex.requestUpstream({
      pool,
      poolLimits: this.upstream.config.pool,
      method: ex.upstreamMethod ?? ex.method,
      target: basePathOf(endpoint.url) + ex.upstreamTarget,
      headers: withDeadline(this.upstream.editsFor(endpoint, ex.upstreamHeaderEdits, ex.headers), this.attempt),
      clientIp: ex.peerIp,
      trustForwarded: ex.trustForwarded,
      responseTimeoutMs: headWait(timeouts.responseMs, this.attempt),
      idleTimeoutMs: timeouts.idleMs,
      signal: this.#abort.signal,
    })
    return discardForRetry(res, this.attempt)
  }

  judge(result: UpstreamResponse): Verdict {
    return { ok: result.status < 500, status: result.status }
  }

  /** Nothing is retried once the other leg won or the client saw a byte. */
  committed(): boolean {
    return this.#decided() || this.request.committed
  }

  cancelled(): boolean {
    return this.#abort.signal.aborted
  }

  cancel(): void {
    this.#abort.abort()
  }
}

/**
 * A hedged request: the first leg now, a second on another endpoint after `hedge.after` (when
 * the retry budget allows); the first response head wins and its body is streamed to the client
 * with backpressure, the other leg is aborted.
 */
async function hedgeToUpstream(ex: GatewayExchange, route: RouteRuntime): Promise<void> {
  const upstream = route.upstream
  const hedge = route.config.hedge!
  let winner: HedgeCall | undefined
  const decided = (): boolean => winner !== undefined
  const stats = upstream.hedges
  const response = await new Promise<{ call: HedgeCall; res: UpstreamResponse }>((resolve, reject) => {
    const legs: HedgeCall[] = []
    let running = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    let firstError: unknown
    const settleError = (err: unknown): void => {
      firstError ??= err
      if (winner || running > 0) return
      // Hedges race slow answers; a failure is the retry rule's business (it already ran).
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      reject(firstError)
    }
    const launch = (call: HedgeCall): void => {
      legs.push(call)
      running++
      callUpstream(call).then(
        (res) => {
          running--
          if (winner) return res.cancel()
          winner = call
          if (timer !== undefined) clearTimeout(timer)
          timer = undefined
          for (const other of legs) if (other !== call) other.cancel()
          resolve({ call, res })
        },
        (err: unknown) => {
          running--
          if (winner || call.cancelled()) return
          settleError(err)
        },
      )
    }
    const first = new HedgeCall(ex, upstream, route.config, decided)
    launch(first)
    const endpoint = first.tried[0]
    const p95 = endpoint?.latencyP95Ms
    const delay = hedge.after === 'p95' ? (p95 !== undefined && Number.isFinite(p95) && p95 > 0 ? p95 : hedge.fallbackMs) : hedge.after
    timer = setTimeout(() => {
      timer = undefined
      if (winner) return
      const others = upstream.candidates().filter((c) => !first.tried.includes(c))
      if (others.length > 0 && (!upstream.budget || upstream.budget.tryRetry())) {
        const second = new HedgeCall(ex, upstream, route.config, decided)
        second.attempt.hedged = true
        second.attempt.deadlineAt = first.attempt.deadlineAt
        second.tried.push(...first.tried)
        stats.sent++
        launch(second)
        // The hedge's endpoint list starts with the first leg's: it only counts its own tries.
        second.tried.splice(0, first.tried.length)
      }
    }, delay)
  })
  const { call, res } = response
  if (call.attempt.hedged) stats.won++
  const sticky = call.tried.length > 0 ? upstream.balancer.responseHeaders?.(call.tried.at(-1)!, ex) : undefined
  if (sticky) Object.assign(ex.responseHeaders, sticky)
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = v as string | string[]
  if (ex.method === 'HEAD' || res.status === 204 || res.status === 304) {
    res.cancel()
    return ex.respond(res.status, headers)
  }
  await ex.respond(res.status, headers, res.body)
}

/** A WebSocket upgrade relayed to the route's upstream. */
class TunnelCall implements UpstreamCall<TunnelResult> {
  readonly kind = 'tunnel'
  readonly retryable = false
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: GatewayExchange
  readonly #route: RouteRuntime
  readonly #onTunnel: (socket: Socket) => void
  readonly #group: TunnelGroup | undefined

  constructor(ex: GatewayExchange, route: RouteRuntime, onTunnel: (socket: Socket) => void, group: TunnelGroup | undefined) {
    this.request = ex
    this.#route = route
    this.upstream = route.upstream
    this.#onTunnel = onTunnel
    this.#group = group
  }

  send(endpoint: EndpointState): Promise<TunnelResult> {
    const ex = this.request
    ex.upstreamTries++
    ex.endpointUrl = endpoint.url
    const ws = this.#route.config.websocket
    // The exchange hands its connection to the tunnel (and to `onTunnel`) from here on.
    return ex.tunnel({
      target: endpoint.url,
      path: basePathOf(endpoint.url) + ex.upstreamTarget,
      clientIp: ex.peerIp,
      connectTimeoutMs: this.upstream.config.timeouts.connectMs,
      handshakeTimeoutMs: this.upstream.config.timeouts.responseMs,
      headers: this.upstream.editsFor(endpoint, ex.upstreamHeaderEdits, ex.headers) as Record<string, string | undefined> | undefined,
      maxMessageBytes: ws?.maxMessageBytes,
      idleTimeoutMs: ws?.idleTimeoutMs,
      pingIntervalMs: ws?.pingIntervalMs,
      group: this.#group,
      tls: this.upstream.config.tls,
    }, this.#onTunnel)
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
export async function proxyToUpstream(ex: GatewayExchange, route: RouteRuntime, limits: LimitsConfig): Promise<void> {
  // A balancer that reads the prompt (prefix-affinity, score) gets the parsed body; bounded like the matcher's read.
  if (route.upstream.balancer.needsBody && ex.body === undefined && ex.hasBody && !ex.upgrade)
    ex.body = parseJson(await ex.readBody(Math.min(limits.maxBodyBytes, (ex.stateValue(BODY_LIMIT_STATE) as number | undefined) ?? Number.POSITIVE_INFINITY)))
  const t0 = performance.now()
  try {
    if (route.config.usage && (await meteredToUpstream(ex, route, limits))) return
    // Hedging needs two responses in hand, so it cannot stream through forward(); response taps
    // (the cache) only see forward(), so a route with one is not hedged.
    if (route.config.hedge && IDEMPOTENT.has(ex.method) && !ex.hasBody && !ex.combinedTap()) await hedgeToUpstream(ex, route)
    else await callUpstream(new ProxyCall(ex, route.upstream, limits, route.config))
  } finally {
    ex.upstreamMs = performance.now() - t0
  }
}


/** Records the endpoint a try goes to and adds the balancer's sticky response headers for it. */
export function pointAt(ex: GatewayExchange, upstream: UpstreamRuntime, endpoint: EndpointState): void {
  ex.endpointUrl = endpoint.url
  const sticky = upstream.balancer.responseHeaders?.(endpoint, ex)
  if (sticky) Object.assign(ex.responseHeaders, sticky)
}

/** The response-head wait of one try: the upstream's timeout, cut to what the route's deadline leaves. */
export function headWait(responseMs: number, attempt: AttemptContext): number {
  if (attempt.deadlineAt === undefined) return responseMs
  return Math.max(1, Math.min(responseMs, attempt.deadlineAt - Date.now()))
}

/** Header edits plus `X-Request-Timeout: <ms left>` when the route asks for it. */
export function withDeadline(edits: Record<string, string | undefined> | undefined, attempt: AttemptContext): Record<string, string | undefined> | undefined {
  if (attempt.deadlineAt === undefined || !attempt.deadlineHeader) return edits
  return { ...edits, 'x-request-timeout': String(Math.max(0, attempt.deadlineAt - Date.now())) }
}

/** Tunnels a WebSocket upgrade to the route's upstream; `onTunnel` gets the client socket once the tunnel owns it. */
export async function tunnelToUpstream(
  ex: GatewayExchange,
  route: RouteRuntime,
  onTunnel: (socket: Socket) => void,
  group?: TunnelGroup,
): Promise<TunnelResult> {
  return callUpstream(new TunnelCall(ex, route, onTunnel, group))
}

/** `ex.fetchUpstream()` for a matched route: the same call as proxying, returning the response. */
export function fetchFromUpstream(ex: GatewayExchange, route: RouteRuntime, init: UpstreamFetchInit | undefined): Promise<UpstreamResponse> {
  return callUpstream(new FetchCall(ex, route.upstream, init, { route: route.config }))
}

/** A discovery probe to one endpoint, counted in that endpoint's stats and health. */
export function probeEndpoint(upstream: UpstreamRuntime, ex: Exchange, url: string, body: Uint8Array | undefined): Promise<UpstreamResponse> {
  const pinned = upstream.endpoints.find((e) => e.url === url)
  if (!pinned) return Promise.reject(new Error(`discovery endpoint ${url} is not configured`))
  return callUpstream(new FetchCall(ex as GatewayExchange, upstream, undefined, { pinned, body }))
}

/** A fetched response the retry rule wants to try again is cancelled and reported as retryable. */
export function discardForRetry(res: UpstreamResponse, attempt: AttemptContext): UpstreamResponse {
  if (!attempt.shouldRetry?.(res.status, res.headers)) return res
  res.cancel()
  throw Object.assign(new GatewayError(res.status, RETRYABLE_STATUS_CODE, `Upstream answered ${res.status}; retrying`), { headers: res.headers })
}
