import type { ConditionValue, HeaderEditConfig } from '@switchboard/core'
import type { BodyCondition } from '@switchboard/matcher'
import type { GatewayRegistry } from '../registry.ts'
import type { ModelsConfig } from './models.ts'

export type { ConditionValue, HeaderEditConfig }


/** Limits on what a client may send; every size and every wait has one. */
export interface LimitsConfig {
  /** Request head larger than this: 431. @default 16 KiB */
  maxHeaderBytes: number
  /** The whole request head must arrive within this (slowloris). @default 10 s */
  headersTimeoutMs: number
  /** Longest silence while a request body is arriving: 408. @default 30 s */
  bodyIdleTimeoutMs: number
  /** Largest body the gateway reads itself (payload routes, discovery replay): 413. @default 1 MiB */
  maxBodyBytes: number
  /** Largest request body streamed to an upstream: 413 (declared) or a cut-off upload. @default 1 GiB */
  maxRequestBodyBytes: number
  /** Most header fields in a request head; more: 431, nothing forwarded. @default 100 */
  maxHeaderCount: number
  /** Longest time a write to a client may stay blocked (a client that does not read): the response is cut and the upstream connection freed. @default 30 s */
  sendTimeoutMs: number
}

/** `server:` section. */
export interface ServerConfig {
  /** @default '127.0.0.1' */
  host: string
  /** @default 8080; `PORT` in the environment overrides it in the CLI */
  port: number
  limits: LimitsConfig
  /** Path answered by the gateway itself with its health. @default '/health' */
  healthPath: string
  /** Idle keep-alive connections close after this. @default 5 s */
  keepAliveTimeoutMs: number
  /** On SIGTERM/SIGINT in-flight requests get this long to finish. @default 30 s */
  shutdownTimeoutMs: number
  /** Named policies (from `policies:`) run for every request before routing. @default [] */
  policies: string[]
  /**
   * Front proxies (CIDR ranges) whose `X-Forwarded-*` / `Forwarded` headers are believed and
   * extended; from anyone else those headers are dropped and the gateway sets its own. @default []
   */
  trustedProxies: string[]
  /** Paths no authentication applies to, on any route: exact (`/status`) or a subtree (`/assets/*`), matched against the normalised path. @default [] */
  publicPaths: string[]
  /**
   * The listener's HTTP implementation: `node` (`node:http`, every runtime), `native`
   * (`Bun.serve` / `Deno.serve`), or `auto` (what {@link resolveTransport} picks for the runtime).
   * Read at start only. @default 'auto'
   */
  transport: TransportMode
  /**
   * Native transport on Bun only: a response body over 64 KiB with a declared length (and nothing
   * that reads it, such as a cache) is handed to Bun to pipe, never through JavaScript. Trades the
   * gateway's own body timing for Bun's: see the README's "Piped bodies". Read at start and on reload. @default false
   */
  pipeBodies: boolean
  /** Worker processes sharing the port (`auto` = one per core). Read at start only. @default 1 */
  workers: number
  /** HTTPS on the listener (`server.tls`); undefined = plain HTTP. Certificates are re-read on reload. */
  tls: ListenerTlsConfig | undefined
}

/** `server.transport`. */
export type TransportMode = 'auto' | 'node' | 'native'

/** One certificate of the listener: PEM texts read from `cert` / `key` files at load. */
export interface TlsCertificateConfig {
  /** Host name this certificate is chosen for by SNI (`*.example.com` allowed); undefined = the default certificate. */
  serverName: string | undefined
  /** The files named in the config, for messages and the admin view. */
  certFile: string
  keyFile: string
  /** PEM text of the certificate chain. */
  cert: string
  /** PEM text of the private key (never shown by the admin API). */
  key: string
}

/** `server.tls`: one entry, or a list of entries for SNI (the entry without `serverName` is the default). */
export interface ListenerTlsConfig {
  certificates: TlsCertificateConfig[]
  /** Lowest protocol version accepted. @default 'TLSv1.2' */
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** PEM text of CAs whose client certificates are requested and verified (mutual TLS); undefined = none asked. */
  ca: string | undefined
  /** The file `ca` was read from. */
  caFile: string | undefined
}

/** `upstreams.NAME.tls`: how HTTPS targets are verified. */
export interface UpstreamTlsConfig {
  /** PEM text of the CAs trusted for this upstream instead of the runtime's defaults; undefined = defaults. */
  ca: string | undefined
  caFile: string | undefined
  /** SNI name and the name the certificate must carry; undefined = the target URL's host. */
  servername: string | undefined
  /** `false` accepts any certificate (logged as a warning at start; for tests only). @default true */
  rejectUnauthorized: boolean
}

/** Upstream timeouts (`upstreams.NAME.timeouts`). */
export interface TimeoutsConfig {
  /** TCP connect: 502 when it fails, 504 when it takes too long. @default 2 s */
  connectMs: number
  /** Request sent → response head: 504. @default 30 s */
  responseMs: number
  /** Longest silence inside a streaming body, either way. @default 60 s */
  idleMs: number
}

/** One target of an upstream. */
export interface TargetConfig {
  url: string
  /** @default 1 */
  weight: number
  /** Tier for `first-available`: lower first. @default 0 */
  priority: number
}

/** Active health checks (`healthCheck:` on an upstream). */
export interface HealthCheckConfig {
  path: string
  method: 'HEAD' | 'GET' | 'OPTIONS'
  intervalMs: number
  timeoutMs: number
  healthyThreshold: number
  unhealthyThreshold: number
  expectStatus: Array<number | string>
}

/** Passive outlier detection (`outlierDetection:` on an upstream). */
export interface OutlierDetectionConfig {
  consecutiveFailures: number
  failureRate: number
  minRequests: number
  windowMs: number
  baseEjectionMs: number
  maxEjectionMs: number
  maxEjectedPercent: number
}

/** `upstreams.NAME`. */
export interface UpstreamConfig {
  name: string
  balancer: { strategy: string; options: Record<string, unknown> }
  targets: TargetConfig[]
  timeouts: TimeoutsConfig
  healthCheck: HealthCheckConfig | undefined
  outlierDetection: OutlierDetectionConfig | undefined
  /** Ramp a returning endpoint's weight over this long; 0 = off. */
  slowStartMs: number
  /** Extra attempts on another endpoint for idempotent requests that failed before a response. @default 1 */
  retries: number
  /** Connection pool per endpoint (`pool: { connections, queueTimeout }`). */
  pool: PoolConfig
  /**
   * The retry rule in force: `retry:` when set, else derived from the `retries: N` shorthand
   * (N + 1 attempts, on connect/reset/timeout only, no backoff, no budget). Absent in configs
   * built by hand: the shorthand applies.
   */
  retry?: RetryConfig
  /** Per-endpoint circuit breakers; off (undefined) unless `circuitBreaker:` is set. */
  circuitBreaker?: CircuitBreakerConfig
  /**
   * The `Host` sent upstream: `preserve` (the client's, the contract's default), `upstream` (the
   * target URL's own host, what a third-party API needs; the default for `targets:` entries), or a
   * literal host name. Absent in configs built by hand: `preserve`.
   */
  host?: HostMode
  /** Headers set on every request to this upstream unless the request sets them (`targets.NAME.defaultHeaders`). */
  defaultHeaders?: Record<string, string>
  /** TLS options for `https://` targets (`upstreams.NAME.tls`). Absent = the runtime's CA store, SNI from the URL. */
  tls?: UpstreamTlsConfig
  /** Scrape each target's Prometheus metrics (`upstreams.NAME.engineStats`): vLLM/SGLang/TGI queue and KV figures for the LLM balancers. */
  engineStats?: EngineStatsConfig
}

/** `upstreams.NAME.engineStats: { path, interval, timeout, format }`. */
export interface EngineStatsConfig {
  path: string
  intervalMs: number
  timeoutMs: number
  format: 'vllm' | 'sglang' | 'tgi' | 'auto'
}

/** `upstreams.NAME.host`: `preserve`, `upstream`, or `{ literal: 'api.example.com' }`. */
export type HostMode = 'preserve' | 'upstream' | { readonly literal: string }

/**
 * `clients.NAME` (seed 004): a tenant with its own key, sent to one target with a secret the
 * gateway injects, limited to some methods and paths.
 */
export interface ClientConfig {
  readonly name: string
  /** `sha256:<hex>` of the client's key (`key:` values are hashed at load, so the config holds no usable secret). */
  readonly keyHash: string
  /** True when the client has neither `key` nor `keyHash` and authenticates with its own name (seed 004; a warning at start). */
  readonly nameIsKey: boolean
  /** The upstream (a `targets:` entry or an `upstreams:` one) its requests go to. */
  readonly target: string
  /** Name of the `secrets:` entry injected as `Authorization` upstream, if any. */
  readonly authHeaderRef: string | undefined
  /** Upper-case methods; empty = any. */
  readonly allowedMethods: readonly string[]
  /** Exact paths or globs, matched against the normalised path; empty = any. */
  readonly allowedPaths: readonly string[]
  /** Bounds the wait for the response head and any silence inside the body (not a stream's total length). */
  readonly timeoutMs: number | undefined
  /** Identity headers sent upstream for this client; none unless configured (`identityHeaders:`). */
  readonly identityHeaders: { readonly subject?: string; readonly method?: string; readonly client?: string } | false
}

/** `docs:`: an API reference page and its OpenAPI 3.1 document, served by the gateway. */
export interface DocsConfig {
  /** The page. @default '/docs' */
  readonly path: string
  /** The OpenAPI document. @default '/openapi.json' */
  readonly openapiPath: string
  /** `info.title` of the document. @default 'Switchboard gateway' */
  readonly title: string
}

/** `proxy:`: the `POST /proxy` envelope endpoint for `clients:`. */
export interface ProxyEnvelopeConfig {
  /** @default '/proxy' */
  readonly path: string
  /** Largest envelope read. @default server.limits.maxBodyBytes */
  readonly maxBodyBytes: number
  /** Clients may also call their target's paths on the gateway directly (passthrough), for requests no route claims. @default true */
  readonly passthrough: boolean
  /** Named policies run for tenant requests (envelope and passthrough) once the client is known: a rate limit keyed by `client`, say. @default [] */
  readonly policies: readonly string[]
}

/** A failure a retry may follow: a connect error, a reset before the response head, a response-head timeout, or an upstream status. */
export type RetryOn = 'connect' | 'reset' | 'timeout' | number

/** `upstreams.NAME.retry`. */
export interface RetryConfig {
  /** Most tries in all, the first included. @default 3 */
  attempts: number
  /** Which failures are retried. @default ['connect', 'reset', 'timeout', 502, 503, 504, 429] */
  on: RetryOn[]
  /** Exponential backoff with full jitter: wait `random() × min(max, base × 2^(retry−1))`. @default { base: 50 ms, max: 2 s } */
  backoff: { baseMs: number; maxMs: number }
  /** Retries (and hedges) ≤ `ratio` × requests over `window`, plus a floor accrued at `minPerSecond`; undefined = no budget. @default { ratio: 0.2, minPerSecond: 5, window: 10 s } */
  budget: RetryBudgetConfig | undefined
  /** Longest `Retry-After` waited for; above it the 429/503 goes to the client. @default 10 s */
  retryAfterCapMs: number
  /** With every endpoint tried, retry one of them again (true for `retry:`; false for the `retries: N` shorthand). */
  reuseEndpoints: boolean
}

/** `upstreams.NAME.retry.budget`. */
export interface RetryBudgetConfig {
  /** @default 0.2 */
  ratio: number
  /** @default 5 */
  minPerSecond: number
  /** @default 10 s */
  windowMs: number
}

/** `upstreams.NAME.circuitBreaker`. */
export interface CircuitBreakerConfig {
  /** This many failures in a row open an endpoint's circuit. @default 5 */
  consecutiveFailures: number
  /** A failure share at least this over `window` (with `minRequests`) opens it. @default 0.5 */
  failureRatio: number
  /** @default 10 s */
  windowMs: number
  /** @default 20 */
  minRequests: number
  /** How long a circuit stays open before half-open trials. @default 5 s */
  openForMs: number
  /** Trials admitted while half-open; all must succeed to close. @default 1 */
  halfOpenRequests: number
}

/** `upstreams.NAME.pool`. */
export interface PoolConfig {
  /** Most connections open to one endpoint. @default 128 */
  connections: number
  /** Longest wait for a free connection when all are busy: 503 `ERR_UPSTREAM_POOL_SATURATED`. @default 1 s */
  queueTimeoutMs: number
}


/** `routes[].match`. */
export interface RouteMatchConfig {
  path?: string
  pathRegex?: string
  methods?: string[]
  host?: string | string[]
  headers?: Record<string, ConditionValue>
  query?: Record<string, ConditionValue>
  payload?: unknown[]
  /** Per-field JSON body conditions (`match.body: { model: "llama-*" }`); see the matcher's `BodyCondition`. */
  body?: Record<string, BodyCondition>
}

/** `routes[].cache`. */
export interface RouteCacheConfig {
  /** Freshness used only when the upstream gives none. */
  ttlMs: number | undefined
  /** Bodies above this stream through uncached. @default 1 MiB */
  maxObjectBytes: number
  /** Request headers added to the cache key (a tenant header, say). @default [] */
  keyHeaders: string[]
}


/** One route. */
export interface RouteConfig {
  name: string
  match: RouteMatchConfig
  upstream: string
  priority: number | undefined
  rewrite: { stripPrefix?: string; addPrefix?: string } | undefined
  requestHeaders: HeaderEditConfig | undefined
  responseHeaders: HeaderEditConfig | undefined
  cache: RouteCacheConfig | undefined
  /** WebSocket limits; any of them switches the tunnel from socket-level to frame-aware relay. */
  websocket: RouteWebSocketConfig | undefined
  /** Named policies (from `policies:`) run after this route matched, before the shorthand edits. @default [] */
  policies: string[]
  /** This route's own retry rule, replacing its upstream's (`upstreams.X.retry`); the upstream's budget still counts. @default the upstream's */
  retry?: RetryConfig
  /** Bound on all tries together (first byte of the response head): 504 `ERR_DEADLINE_EXCEEDED`. @default undefined (none) */
  deadlineMs?: number
  /** Send `X-Request-Timeout: <ms left>` upstream on every try (needs `deadline`). @default false */
  deadlineHeader?: boolean
  /** Retry POST/PATCH (non-idempotent methods) too, when the body is buffered. @default false */
  retryNonIdempotent?: boolean
  /** Hedged requests (idempotent, no body): a second try on another endpoint after a delay. @default undefined (off) */
  hedge?: RouteHedgeConfig
  /** No authentication on this route, even when `server.policies` has auth policies (`public: true`). @default false */
  public?: boolean
  /** Token accounting of LLM responses on this route (`usage: { format: openai }`). @default undefined (off) */
  usage?: RouteUsageConfig
}

/** `routes[].usage`: how the route's LLM responses are metered. */
export interface RouteUsageConfig {
  /** The API the upstream speaks: OpenAI-compatible (vLLM, SGLang, TGI) or Anthropic messages. */
  format: 'openai' | 'anthropic'
  /** OpenAI streams: also ask for per-chunk usage (`continuous_usage_stats`, vLLM) and strip it again. @default false */
  continuousUsage: boolean
}

/** `routes[].hedge`. */
export interface RouteHedgeConfig {
  /** Fixed delay before the hedge (ms), or `'p95'`: the first endpoint's observed p95 latency. */
  after: number | 'p95'
  /** Delay used for `'p95'` while the endpoint has no latency samples yet. @default 100 ms */
  fallbackMs: number
}

/** `routes[].websocket`. */
export interface RouteWebSocketConfig {
  /** A bigger message closes both sides with 1009. */
  maxMessageBytes: number | undefined
  /** No message either way for this long closes both sides with 1001. */
  idleTimeoutMs: number | undefined
  /** Ping both sides this often; a side that missed the last ping is dropped. */
  pingIntervalMs: number | undefined
}

/** `store:`: where state lives. */
export interface StoreConfig {
  /** A registered store driver: `memory`, `sqlite`, `redis`, or one a plugin added. */
  driver: string
  /** SQLite file. */
  path?: string
  /** Redis URL. */
  url?: string
  /** What a store outage does: `open` allows (and logs), `closed` answers 503. */
  failMode?: 'open' | 'closed'
  /** Further driver options, as the driver documents them. */
  [option: string]: unknown
}

/** A validated, normalised gateway configuration. */
export interface GatewayConfig {
  server: ServerConfig
  upstreams: Record<string, UpstreamConfig>
  routes: RouteConfig[]
  store: StoreConfig
  /** The admin API, when enabled. */
  admin: AdminConfig | undefined
  /** First-success discovery for requests no route claims, when configured. */
  discovery: DiscoveryConfig | undefined
  /** Plugin modules, resolved to absolute file URLs or package names, in load order. */
  plugins: string[]
  /** Named policy instances (`policies.NAME: { use: TYPE, ...options }`), options already parsed. */
  policies: Record<string, PolicyInstanceConfig>
  /** `secrets.NAME`: values (already `${ENV}`-expanded) the gateway injects upstream; never shown. */
  secrets: Record<string, string>
  /** `clients.NAME` (seed 004 tenants). Empty without a `clients:` section. */
  clients: Record<string, ClientConfig>
  /** The `/proxy` envelope, present when `clients:` is. */
  proxy: ProxyEnvelopeConfig | undefined
  /** The `/docs` page, when enabled. */
  docs: DocsConfig | undefined
  /** Prometheus text on the main listener, when `metrics:` is set (the admin listener always has `/metrics`). */
  metrics: MetricsConfig | undefined
  /** The aggregated `GET /v1/models` the gateway answers itself, when `models:` is set. */
  models?: ModelsConfig
  /** Access logs. */
  logs: LogsConfig
  /** Trace context propagation. */
  tracing: TracingConfig
  /** Where the config came from (for reload and relative paths). */
  source: { file: string | undefined }
}

/** One entry of `policies:`. */
export interface PolicyInstanceConfig {
  readonly name: string
  /** The registered policy type. */
  readonly use: string
  /** Options as the type's `parse` returned them. */
  readonly options: unknown
}

/** `discovery:`: try endpoints in order for unrouted requests and remember the first that answers 200. */
export interface DiscoveryConfig {
  /** Endpoints in the order they are tried. */
  endpoints: string[]
  /** How long a remembered route is used (`remember: { ttl }`). @default 1 h */
  rememberTtlMs: number
  /** Where remembered routes live; @default the top-level store when it is sqlite or redis, else sqlite ./switchboard-routes.db */
  store: StoreConfig | undefined
  timeouts: TimeoutsConfig
  /** Request headers whose values are part of the remembered key (callers kept apart). @default [] */
  keyHeaders: string[]
  /** Statuses that end the search as a success: codes or classes. @default ['2xx'] */
  successStatuses: Array<number | string>
  /** Which methods are tried on more than one endpoint. @default 'idempotent' */
  replay: 'idempotent' | 'all'
  /** Include the query string in the remembered key. @default false */
  keyQuery: boolean
  /** Most routes one instance remembers (LRU). @default 10 000 */
  maxEntries: number
}

/** `admin:`: the JSON admin API under a path prefix on the gateway's port. */
export interface AdminConfig {
  /** Path prefix of the JSON API (on the main listener, or on `listen`). @default '/admin' */
  path: string
  /** Bearer token required on every admin call; without one only loopback clients are served. */
  token: string | undefined
  /**
   * The admin's own listener (`127.0.0.1:9901`): the dashboard at `/`, JSON under `path`, Prometheus
   * text at `/metrics`; admin paths then never collide with upstream paths. Undefined: the admin API
   * is served on the main listener under `path` (the dashboard at `{path}/dashboard`).
   */
  listen: { host: string; port: number } | undefined
}

/** `metrics:` at the top level: the main listener also serves Prometheus text at `path`. */
export interface MetricsConfig {
  /** @default '/metrics' */
  path: string
}

/** `logs:`. */
export interface LogsConfig {
  /** Access logs (one JSON line per request), when on. */
  access: AccessLogConfig | undefined
}

/** `logs.access`: `true` (stdout, every request) or `{ path, sample, query }`. */
export interface AccessLogConfig {
  /** A file to append to; stdout when absent. */
  path: string | undefined
  /** Fraction of requests logged (0–1); responses ≥ 500 are always logged. @default 1 */
  sample: number
  /** Log the query string too (it may carry secrets: off by default). @default false */
  query: boolean
}

/** `tracing:`. */
export interface TracingConfig {
  /** Propagate W3C `traceparent` upstream with the gateway's own span id, generating one when absent. @default true */
  traceparent: boolean
}

/** Options of {@link parseConfig} and {@link loadConfigText}. */
export interface ParseConfigOptions {
  /** File name for error messages. */
  file?: string
  /** Variables for `${NAME}` / `${NAME:-default}` expansion. @default process.env where available */
  env?: Record<string, string | undefined>
  /** Balancers and policy types config may name. @default the built-ins */
  registry?: GatewayRegistry
}
