import { createWriteStream, type WriteStream } from 'node:fs'
import { CLIENT_STATE, isGatewayError, SUBJECT_STATE, TOKEN_USAGE_STATE, type TokenUsage } from '@switchboard/core'
import { type Counter, DEFAULT_LATENCY_BUCKETS, type Gauge, type Histogram, type HistogramChild, MetricsRegistry, type CounterChild } from '@switchboard/metrics'
import type { AccessLogConfig } from '../config/types.ts'
import type { GatewayLogger, Runtime } from '../runtime/runtime.ts'
import type { GatewayExchange } from '../transport/exchange.ts'
import { UsageLedger } from '../llm/ledger.ts'

/** Status classes as the `code` label has them; `aborted` is a client gone before any response head. */
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const
type StatusClass = (typeof CLASSES)[number]

/** Error codes counted as rejections, by the reason label they get (a bounded set). */
const REJECTIONS: Record<string, string> = {
  ERR_UNAUTHORIZED: 'unauthorized',
  ERR_FORBIDDEN: 'forbidden',
  ERR_RATE_LIMITED: 'rate_limited',
  ERR_PAYLOAD_TOO_LARGE: 'too_large',
  ERR_HEADERS_TOO_LARGE: 'too_large',
  ERR_BAD_REQUEST: 'bad_request',
  ERR_REQUEST_TIMEOUT: 'request_timeout',
  ERR_MAINTENANCE: 'maintenance',
  ERR_NO_ROUTE: 'no_route',
  ERR_UPSTREAM_POOL_SATURATED: 'pool_saturated',
  ERR_CIRCUIT_OPEN: 'circuit_open',
  ERR_SERVICE_UNAVAILABLE: 'unavailable',
}

/** Route label of requests no configured route claimed. */
export const NO_ROUTE = '(none)'
/** Upstream label of requests the gateway answered itself. */
export const NO_UPSTREAM = '(gateway)'

/** One request that ended in an error, for the dashboard. */
export interface RecentError {
  readonly time: number
  readonly method: string
  readonly path: string
  readonly route: string
  readonly status: number
  readonly code: string | undefined
}

/** Per route × upstream: the children the hot path touches, looked up once. */
interface SeriesSet {
  readonly byClass: Record<StatusClass, CounterChild>
  readonly duration: HistogramChild
  readonly bytesIn: CounterChild
  readonly bytesOut: CounterChild
  /** The upstream-duration histogram of this set's upstream (none for requests no upstream served). */
  readonly upstreamDuration: HistogramChild | undefined
}

/**
 * Everything the gateway measures and logs about requests: Prometheus metrics (labels bounded to
 * config names: route, upstream, endpoint, status class; never a path or a client value), the
 * access log, and the last errors for the dashboard. One per gateway: counters survive reloads.
 */
export class Observer {
  readonly registry: MetricsRegistry = new MetricsRegistry({ maxSeriesPerMetric: 2_000 })
  readonly started: number = Date.now()
  readonly recentErrors: RecentError[] = []
  /** Token usage of metered routes (`switchboard_tokens_total`, `/admin/usage`). */
  readonly usage: UsageLedger
  readonly #requests: Counter
  readonly #duration: Histogram
  readonly #bytesIn: Counter
  readonly #bytesOut: Counter
  readonly #inFlight: Gauge
  readonly #rejections: Counter
  readonly #retries: Counter
  readonly #cache: Counter
  readonly #upstreamDuration: Histogram
  /** Series per route, then per upstream: two lookups per request, no key string built. */
  readonly #sets = new Map<string, Map<string, SeriesSet>>()
  #setCount = 0
  readonly #log: AccessLog | undefined
  #inFlightNow = 0
  #totalRequests = 0
  #total5xx = 0

  constructor(
    access: AccessLogConfig | undefined,
    logger: GatewayLogger,
    live: { runtime(): Runtime; tunnelsOpen(): number },
  ) {
    const r = this.registry
    this.#requests = r.counter('switchboard_requests_total', 'Requests answered, by route, upstream and status class.', ['route', 'upstream', 'code'])
    this.#duration = r.histogram('switchboard_request_duration_seconds', 'Time from the request head to the end of the response, by route and upstream.', ['route', 'upstream'], DEFAULT_LATENCY_BUCKETS)
    this.#bytesIn = r.counter('switchboard_request_bytes_total', 'Bytes received from clients (heads and bodies, as read from the socket).', ['route', 'upstream'])
    this.#bytesOut = r.counter('switchboard_response_bytes_total', 'Bytes sent to clients (heads and bodies, as written to the socket).', ['route', 'upstream'])
    this.#inFlight = r.gauge('switchboard_requests_in_flight', 'Requests being served now.')
    this.#rejections = r.counter('switchboard_rejections_total', 'Requests the gateway refused itself, by route and reason (unauthorized, forbidden, rate_limited, …).', ['route', 'reason'])
    this.#retries = r.counter('switchboard_upstream_retries_total', 'Extra tries sent to an upstream (retries and hedges).', ['upstream'])
    this.#cache = r.counter('switchboard_cache_results_total', 'Cache outcomes by route (hit, miss, stale, revalidated, bypass).', ['route', 'result'])
    this.#upstreamDuration = r.histogram('switchboard_upstream_duration_seconds', 'Time spent in the upstream call (all tries) per upstream.', ['upstream'], DEFAULT_LATENCY_BUCKETS)
    const healthy = r.gauge('switchboard_upstream_endpoint_healthy', 'Whether an endpoint is in rotation (1) or not (0).', ['upstream', 'endpoint'])
    const inFlight = r.gauge('switchboard_upstream_endpoint_in_flight', 'Requests in flight to an endpoint.', ['upstream', 'endpoint'])
    const open = r.gauge('switchboard_upstream_endpoint_connections', 'Open connections to an endpoint.', ['upstream', 'endpoint'])
    const saturated = r.gauge('switchboard_upstream_pool_saturated', 'Whether every connection of an endpoint pool is busy (1) or not (0).', ['upstream', 'endpoint'])
    const circuit = r.gauge('switchboard_circuit_state', 'Circuit breaker state per endpoint: 1 for the state it is in.', ['upstream', 'endpoint', 'state'])
    const tunnels = r.gauge('switchboard_websocket_tunnels_open', 'WebSocket tunnels open now.')
    const up = r.gauge('switchboard_uptime_seconds', 'Seconds since the gateway started.')
    r.onCollect(() => {
      for (const g of [healthy, inFlight, open, saturated, circuit]) g.clear()
      const runtime = live.runtime()
      for (const u of runtime.allUpstreams()) {
        const candidates = new Set(u.candidates())
        for (const snap of u.snapshot()) {
          const url = String(snap.url)
          const ep = u.endpoints.find((e) => e.url === url)!
          healthy.labels(u.name, url).set(candidates.has(ep) ? 1 : 0)
          inFlight.labels(u.name, url).set(ep.inFlight)
          open.labels(u.name, url).set(ep.openConnections)
          const pool = snap.pool as { saturated?: boolean } | undefined
          saturated.labels(u.name, url).set(pool?.saturated ? 1 : 0)
          const state = (snap.circuit as { state?: string } | undefined)?.state
          if (state) for (const s of ['closed', 'open', 'half-open']) circuit.labels(u.name, url, s).set(s === state ? 1 : 0)
        }
      }
      tunnels.set(live.tunnelsOpen())
      up.set((Date.now() - this.started) / 1000)
      this.#inFlight.set(this.#inFlightNow)
    })
    this.usage = new UsageLedger(r)
    this.#log = access ? new AccessLog(access, logger) : undefined
  }

  /** Marks a request started; returns what {@link done} needs. */
  begin(ex: GatewayExchange): RequestMark {
    this.#inFlightNow++
    return { t0: performance.now(), in0: ex.bytesRead, out0: ex.bytesWritten }
  }

  /** Records a finished (or abandoned) request: metrics, the access log, recent errors. */
  done(ex: GatewayExchange, mark: RequestMark): void {
    this.#inFlightNow--
    const tunnelled = ex.upgrade?.tunnelled === true
    const status = tunnelled ? 101 : ex.responseStatus
    const cls: StatusClass = status === 0 ? 'aborted' : status < 200 ? '1xx' : status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx'
    const route = ex.route?.name ?? NO_ROUTE
    const upstream = ex.upstreamName ?? NO_UPSTREAM
    const set = this.#set(route, upstream)
    const seconds = (performance.now() - mark.t0) / 1000
    set.byClass[cls].inc()
    // A tunnel's lifetime is not a request duration.
    if (!tunnelled) set.duration.observe(seconds)
    const bytesIn = Math.max(0, ex.bytesRead - mark.in0)
    const bytesOut = Math.max(0, ex.bytesWritten - mark.out0)
    if (bytesIn > 0) set.bytesIn.inc(bytesIn)
    if (bytesOut > 0) set.bytesOut.inc(bytesOut)
    this.#totalRequests++
    if (cls === '5xx') this.#total5xx++
    const error = ex.error
    const code = isGatewayError(error) ? error.code : error === undefined ? undefined : 'ERR_INTERNAL'
    if (code !== undefined && REJECTIONS[code]) this.#rejections.labels(route, REJECTIONS[code]).inc()
    if (ex.upstreamName !== undefined) {
      if (ex.upstreamTries > 1) this.#retries.labels(ex.upstreamName).inc(ex.upstreamTries - 1)
      if (ex.upstreamMs !== undefined) set.upstreamDuration?.observe(ex.upstreamMs / 1000)
    }
    const xcache = status !== 0 ? ex.responseHeader('x-cache') : undefined
    if (typeof xcache === 'string') this.#cache.labels(route, xcache.toLowerCase()).inc()
    if (cls === '5xx' || (code !== undefined && status >= 500)) {
      this.recentErrors.push({ time: Date.now(), method: ex.method, path: ex.normalizedPath.slice(0, 200), route, status, code })
      if (this.recentErrors.length > 50) this.recentErrors.shift()
    }
    const usage = ex.stateValue(TOKEN_USAGE_STATE) as TokenUsage | undefined
    if (usage) this.usage.record(route, usageClient(ex), usage)
    this.#log?.write(ex, status, seconds, bytesIn, bytesOut, code, usage)
  }

  /** Requests answered and 5xx among them since start, and requests in flight now. */
  totals(): { requests: number; errors5xx: number; inFlight: number } {
    return { requests: this.#totalRequests, errors5xx: this.#total5xx, inFlight: this.#inFlightNow }
  }

  /** Flushes and closes the access log. */
  close(): Promise<void> {
    return this.#log?.close() ?? Promise.resolve()
  }

  #set(route: string, upstream: string): SeriesSet {
    let byUpstream = this.#sets.get(route)
    let set = byUpstream?.get(upstream)
    if (!set) {
      const byClass = {} as Record<StatusClass, CounterChild>
      for (const c of CLASSES) byClass[c] = this.#requests.labels(route, upstream, c)
      set = {
        byClass,
        duration: this.#duration.labels(route, upstream),
        bytesIn: this.#bytesIn.labels(route, upstream),
        bytesOut: this.#bytesOut.labels(route, upstream),
        upstreamDuration: upstream === NO_UPSTREAM ? undefined : this.#upstreamDuration.labels(upstream),
      }
      // Route and upstream names come from config (bounded); the maps are bounded with them.
      if (this.#setCount < 10_000) {
        if (!byUpstream) this.#sets.set(route, (byUpstream = new Map()))
        byUpstream.set(upstream, set)
        this.#setCount++
      }
    }
    return set
  }

}

/** Where a request started, for {@link Observer.done}. */
export interface RequestMark {
  readonly t0: number
  readonly in0: number
  readonly out0: number
}

/**
 * One JSON line per request, to stdout or appended to a file. Lines are batched and written every
 * 50 ms (or per 64 KiB), so logging costs a `JSON.stringify`, not a write per request.
 * Our own rather than pino: pino's transports run in worker threads, which Deno's Node
 * compatibility does not run the same way, and all we need is a buffered line writer.
 */
class AccessLog {
  readonly #config: AccessLogConfig
  readonly #file: WriteStream | undefined
  #buffer = ''
  #scheduled = false

  constructor(config: AccessLogConfig, logger: GatewayLogger) {
    this.#config = config
    if (config.path) {
      this.#file = createWriteStream(config.path, { flags: 'a' })
      this.#file.on('error', (err) => logger('error', 'access log: write failed', { path: config.path, error: err.message }))
    }
  }

  write(ex: GatewayExchange, status: number, seconds: number, bytesIn: number, bytesOut: number, code: string | undefined, usage: TokenUsage | undefined): void {
    if (this.#config.sample < 1 && status < 500 && Math.random() >= this.#config.sample) return
    const line: Record<string, unknown> = {
      time: new Date().toISOString(),
      requestId: headerValue(ex.responseHeader('x-request-id')) ?? headerValue(ex.headers['x-request-id']),
      traceId: ex.traceId,
      method: ex.method,
      path: ex.normalizedPath,
      route: ex.route?.name ?? NO_ROUTE,
      upstream: ex.upstreamName,
      endpoint: ex.endpointUrl,
      status,
      code,
      bytesIn,
      bytesOut,
      durationMs: Math.round(seconds * 1e6) / 1e3,
      upstreamMs: ex.upstreamMs === undefined ? undefined : Math.round(ex.upstreamMs * 1e3) / 1e3,
      clientIp: ex.clientIp,
      subject: ex.stateValue(SUBJECT_STATE),
      tokens: usage && { model: usage.model, prompt: usage.promptTokens, completion: usage.completionTokens, source: usage.source },
    }
    if (this.#config.query && ex.request.query) line.query = ex.request.query
    this.#buffer += `${JSON.stringify(line)}\n`
    if (this.#buffer.length > 65_536) this.#flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      setTimeout(() => this.#flush(), 50).unref?.()
    }
  }

  #flush(): void {
    this.#scheduled = false
    if (this.#buffer === '') return
    const text = this.#buffer
    this.#buffer = ''
    if (this.#file) this.#file.write(text)
    else process.stdout.write(text)
  }

  close(): Promise<void> {
    this.#flush()
    const file = this.#file
    return file ? new Promise((resolve) => file.end(() => resolve())) : Promise.resolve()
  }
}

/** Who a metered request is counted for: the authenticated client, else the subject, else `anonymous`. */
function usageClient(ex: GatewayExchange): string {
  const who = ex.stateValue(CLIENT_STATE) ?? ex.stateValue(SUBJECT_STATE)
  return typeof who === 'string' && who !== '' ? who : 'anonymous'
}

function headerValue(v: unknown): string | undefined {
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : typeof v === 'number' ? String(v) : undefined
}
