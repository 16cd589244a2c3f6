/**
 * Live statistics of one endpoint, kept up to date by the gateway (proxy-pass feedback) and the
 * health checker. "Engine stats" (physical load) and "request stats" (request-level performance)
 * in the sense of the pluggable router seed. Reading a field never allocates.
 */
export interface EndpointStats {
  /** Requests sent to this endpoint and not finished yet (engine stat). */
  readonly inFlight: number
  /** Open upstream connections to this endpoint (engine stat). */
  readonly openConnections: number
  /** Exponentially weighted moving average of response latency in ms; `NaN` before any sample. */
  readonly latencyEwmaMs: number
  /** Median latency over the sliding window in ms; `NaN` without samples. */
  readonly latencyP50Ms: number
  /** 95th percentile latency over the sliding window in ms; `NaN` without samples. */
  readonly latencyP95Ms: number
  /** 99th percentile latency over the sliding window in ms; `NaN` without samples. */
  readonly latencyP99Ms: number
  /** Share of failed requests (5xx or transport error) over the sliding window, 0..1. */
  readonly errorRate: number
  /** Completed requests per second over the sliding window. */
  readonly requestsPerSecond: number
  /** Latency of the last successful active probe in ms; `NaN` before one. */
  readonly probeLatencyMs: number
  /** Requests completed since start. */
  readonly totalRequests: number
  /** Requests failed since start. */
  readonly totalErrors: number
}

/**
 * A field of {@link EngineStats} that an engine reports (for {@link EngineStats.ageOf}).
 * @example const field: EngineStatsField = 'waiting'
 */
export type EngineStatsField = 'running' | 'waiting' | 'kvCacheUsage' | 'prefixCacheHitRate' | 'models'

/**
 * What an inference engine (vLLM, SGLang, TGI) reports about its own load, scraped from its
 * Prometheus `/metrics` and `/v1/models`. A metric the engine did not report (or renamed) is
 * `NaN`, never 0, and makes the stats `stale`; balancers then fall back to the gateway's own
 * counters. Reading a field never allocates.
 * @example
 * const e = endpoint.engine
 * const queue = e && !e.stale ? e.running + e.waiting + e.inFlightSinceScrape : endpoint.stats.inFlight
 */
export interface EngineStats {
  /** Requests the engine is running now (`vllm:num_requests_running`); `NaN` when unknown. */
  readonly running: number
  /** Requests queued in the engine (`vllm:num_requests_waiting`); `NaN` when unknown. */
  readonly waiting: number
  /** KV-cache usage, 0..1 (`vllm:kv_cache_usage_perc`); `NaN` when unknown. */
  readonly kvCacheUsage: number
  /** Prefix-cache hit rate, 0..1, between the last two scrapes; `NaN` when unknown. */
  readonly prefixCacheHitRate: number
  /** Model ids the endpoint serves (`GET /v1/models`); empty when unknown. */
  readonly models: readonly string[]
  /** Milliseconds since the last successful scrape; `Infinity` before one. */
  readonly ageMs: number
  /** True when a required metric is missing, the last scrape failed, or the figures are older than 3 intervals. */
  readonly stale: boolean
  /** Requests the gateway itself sent to this endpoint since the last scrape (not in the engine's figures yet). */
  readonly inFlightSinceScrape: number
  /** Milliseconds since `field` was last reported; `Infinity` when it never was. */
  ageOf(field: EngineStatsField): number
}

/**
 * One engine-stats scrape as a scraper hands it to an endpoint (`EndpointState.setEngine`).
 * Unknown figures are `NaN`, never 0.
 * @example const update: EngineUpdate = { running: 3, waiting: 0, kvCacheUsage: 0.4, prefixCacheHitRate: Number.NaN, complete: true, staleAfterMs: 3_000 }
 */
export interface EngineUpdate {
  /** Requests running in the engine; `NaN` when the metric was missing. */
  running: number
  /** Requests waiting in the engine; `NaN` when the metric was missing. */
  waiting: number
  /** KV-cache usage 0..1; `NaN` when missing. */
  kvCacheUsage: number
  /** Prefix-cache hit rate 0..1; `NaN` when missing or not computable yet. */
  prefixCacheHitRate: number
  /** Served model ids; `undefined` keeps the previous list. */
  models?: readonly string[]
  /** False when the scrape failed or a required metric was missing: the stats are then stale. */
  complete: boolean
  /** The stats turn stale this long after the update (3 scrape intervals). */
  staleAfterMs: number
  /** How old each field already is at this update, in ms (`Infinity` = never reported). @default 0 for every known figure */
  fieldAgesMs?: Partial<Record<EngineStatsField, number>>
}

/**
 * One target of an upstream as a balancer sees it.
 * `weight` is the effective weight (slow start may hold it below `configuredWeight`).
 */
export interface Endpoint {
  /** Stable identifier, unique within its upstream (the URL unless configured otherwise). */
  readonly id: string
  /** Base URL: `http://127.0.0.1:3000` (a path prefix is allowed). */
  readonly url: string
  /** Effective weight, > 0. */
  readonly weight: number
  /** Weight from config. */
  readonly configuredWeight: number
  /** Tier for `first-available`: lower goes first. */
  readonly priority: number
  /** False while an active check or outlier detection holds it out. */
  readonly healthy: boolean
  /** Live statistics. */
  readonly stats: EndpointStats
  /**
   * The engine's own figures, when the upstream scrapes them (`engineStats:`); absent otherwise.
   * @example const waiting = endpoint.engine?.waiting ?? Number.NaN
   */
  readonly engine?: EngineStats
}

/** Header values as a lowercase record, the way `node:http` exposes them. */
export type HeaderRecord = Record<string, string | string[] | undefined>

/** What a balancer may look at to choose: never a socket, never a stream. */
export interface RequestInfo {
  /** Upper-case method. */
  readonly method: string
  /** Raw request target (path and query), as received. */
  readonly target: string
  /** Lowercase header record. */
  readonly headers: HeaderRecord
  /** Address of the client (after trusted-proxy resolution). */
  readonly clientIp: string
  /** The JSON request body, when an earlier step already parsed it. */
  readonly body?: unknown
}

/**
 * A load-balancing strategy: one synchronous function from healthy candidates to one of them.
 * @example
 * const first: Balancer = { name: 'first', pick: (candidates) => candidates[0] }
 */
export interface Balancer {
  /** Registry name (`round-robin`, `p2c`, ...). */
  readonly name: string
  /** Returns one of `candidates`, or `undefined` only when the list is empty. */
  pick(candidates: readonly Endpoint[], request: RequestInfo): Endpoint | undefined
  /**
   * Headers to add to the client's response after `endpoint` served `request` (a sticky cookie).
   * Optional.
   */
  responseHeaders?(endpoint: Endpoint, request: RequestInfo): Record<string, string> | undefined
  /**
   * True when `pick()` looks at `request.body` (the prompt of an LLM request): the gateway then
   * parses a JSON body, within its body-size limit, before picking. @default false
   */
  readonly needsBody?: boolean
}

/**
 * An {@link Endpoint} whose stats the gateway and the health checker keep current: the contract
 * `EndpointState` in `@switchboard/balancer` implements, so a health checker or a custom endpoint
 * store depends on this interface, not on the balancer package.
 * @example
 * const started = endpoint.begin()
 * endpoint.end(started, response.status < 500)
 */
export interface TrackedEndpoint extends Endpoint {
  /** Marks a request as started; returns the start time to hand to {@link end}. */
  begin(): number
  /** Marks a request as finished, feeding latency and error stats. */
  end(startedAt: number, ok: boolean): void
  /** Records an active probe's latency (`undefined` for a failed probe). */
  recordProbe(latencyMs: number | undefined): void
  /** Puts the endpoint in or out of rotation. */
  setHealthy(healthy: boolean): void
  /** Sets the effective weight (slow start). */
  setWeight(weight: number): void
  /** An upstream connection opened. */
  connectionOpened(): void
  /** An upstream connection closed. */
  connectionClosed(): void
  /** A JSON snapshot of id, url, weight, health and stats. */
  toJSON(): Record<string, unknown>
}
