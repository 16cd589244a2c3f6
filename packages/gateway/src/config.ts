import { ConfigError, parseDuration, parseSize } from '@switchboard/core'
import { parse as parseYaml } from 'yaml'
import { balancerNames, createBalancer } from '@switchboard/balancer'

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
}

/** String-or-pattern condition values as they come from YAML (`/regex/flags` strings become RegExp). */
export type ConditionValue = string | RegExp | true

/** `routes[].match`. */
export interface RouteMatchConfig {
  path?: string
  pathRegex?: string
  methods?: string[]
  host?: string | string[]
  headers?: Record<string, ConditionValue>
  query?: Record<string, ConditionValue>
  payload?: unknown[]
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

/** Header edits. */
export interface HeaderEditConfig {
  set: Record<string, string>
  remove: string[]
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
  driver: 'memory' | 'sqlite' | 'redis'
  path?: string
  url?: string
  failMode?: 'open' | 'closed'
}

/** A validated, normalised gateway configuration. */
export interface GatewayConfig {
  server: ServerConfig
  upstreams: Record<string, UpstreamConfig>
  routes: RouteConfig[]
  store: StoreConfig
  /** The admin API, when enabled. */
  admin: AdminConfig | undefined
  /** First-200 discovery for requests no route claims, when configured. */
  discovery: DiscoveryConfig | undefined
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
}

/** `admin:`: the JSON admin API under a path prefix on the gateway's port. */
export interface AdminConfig {
  /** Path prefix. @default '/admin' */
  path: string
  /** Bearer token required on every admin call; without one only loopback clients are served. */
  token: string | undefined
}

/** Options of {@link parseConfig} and {@link loadConfigText}. */
export interface ParseConfigOptions {
  /** File name for error messages. */
  file?: string
  /** Variables for `${NAME}` / `${NAME:-default}` expansion. @default process.env where available */
  env?: Record<string, string | undefined>
}

const DEFAULT_HEALTH: HealthCheckConfig = {
  path: '/',
  method: 'HEAD',
  intervalMs: 10_000,
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  expectStatus: ['2xx', '3xx'],
}

const DEFAULT_OUTLIER: OutlierDetectionConfig = {
  consecutiveFailures: 5,
  failureRate: 0.5,
  minRequests: 20,
  windowMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedPercent: 50,
}

/**
 * Parses YAML (or JSON, which is YAML) config text, expands `${ENV}` in string values, validates it
 * and fills in defaults. Throws {@link ConfigError} naming the file and key path.
 * @example const config = loadConfigText(readFileSync('gw.yaml', 'utf8'), { file: 'gw.yaml' })
 */
export function loadConfigText(text: string, options: ParseConfigOptions = {}): GatewayConfig {
  let raw: unknown
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    throw new ConfigError('', `valid YAML (${(err as Error).message.split('\n')[0]})`, { file: options.file, cause: err })
  }
  return parseConfig(raw, options)
}

/**
 * Validates an already-parsed config object (see {@link loadConfigText}).
 * @example parseConfig({ upstreams: { a: { targets: ['http://127.0.0.1:3000'] } }, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] })
 */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): GatewayConfig {
  const env = options.env ?? (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {}
  const v = new Validator(options.file, env)
  const root = v.object(raw, '')
  v.keys(root, '', ['server', 'upstreams', 'routes', 'store', 'admin', 'discovery'])
  const server = parseServer(v, root.server)
  const discovery = parseDiscovery(v, root.discovery)
  const upstreams: Record<string, UpstreamConfig> = {}
  const upstreamsRaw = discovery && root.upstreams === undefined ? {} : v.object(root.upstreams, 'upstreams')
  const names = Object.keys(upstreamsRaw)
  if (names.length === 0 && !discovery) v.fail('upstreams', 'at least one upstream', upstreamsRaw)
  for (const name of names) upstreams[name] = parseUpstream(v, name, upstreamsRaw[name])
  const routesRaw = discovery && root.routes === undefined ? [] : v.list(root.routes, 'routes')
  if (routesRaw.length === 0 && !discovery) v.fail('routes', 'at least one route (or a discovery: section)', routesRaw)
  const seen = new Set<string>()
  const routes = routesRaw.map((r, i) => {
    const route = parseRoute(v, `routes[${i}]`, r, upstreams)
    if (seen.has(route.name)) v.fail(`routes[${i}].name`, 'a name no other route uses', route.name)
    seen.add(route.name)
    return route
  })
  const store = parseStore(v, root.store)
  const admin = parseAdmin(v, root.admin, server.healthPath)
  return { server, upstreams, routes, store, admin, discovery }
}

function parseServer(v: Validator, raw: unknown): ServerConfig {
  const s = raw === undefined ? {} : v.object(raw, 'server')
  v.keys(s, 'server', ['host', 'port', 'limits', 'healthPath', 'keepAliveTimeout', 'shutdownTimeout'])
  const l = s.limits === undefined ? {} : v.object(s.limits, 'server.limits')
  v.keys(l, 'server.limits', ['maxHeaderBytes', 'headersTimeout', 'bodyIdleTimeout', 'maxBodySize', 'maxRequestBodySize'])
  const healthPath = v.optString(s.healthPath, 'server.healthPath') ?? '/health'
  if (!healthPath.startsWith('/')) v.fail('server.healthPath', 'a path starting with /', healthPath)
  return {
    host: v.optString(s.host, 'server.host') ?? '127.0.0.1',
    port: v.port(s.port, 'server.port') ?? 8080,
    healthPath,
    keepAliveTimeoutMs: v.duration(s.keepAliveTimeout, 'server.keepAliveTimeout', 5_000),
    shutdownTimeoutMs: v.duration(s.shutdownTimeout, 'server.shutdownTimeout', 30_000),
    limits: {
      maxHeaderBytes: v.size(l.maxHeaderBytes, 'server.limits.maxHeaderBytes', 16 * 1024, 1024),
      headersTimeoutMs: v.duration(l.headersTimeout, 'server.limits.headersTimeout', 10_000, 1),
      bodyIdleTimeoutMs: v.duration(l.bodyIdleTimeout, 'server.limits.bodyIdleTimeout', 30_000, 1),
      maxBodyBytes: v.size(l.maxBodySize, 'server.limits.maxBodySize', 1024 * 1024, 0),
      maxRequestBodyBytes: v.size(l.maxRequestBodySize, 'server.limits.maxRequestBodySize', 1024 ** 3, 0),
    },
  }
}

function parseUpstream(v: Validator, name: string, raw: unknown): UpstreamConfig {
  const at = `upstreams.${name}`
  const u = v.object(raw, at)
  v.keys(u, at, ['balancer', 'targets', 'timeouts', 'healthCheck', 'outlierDetection', 'slowStart', 'retries'])
  let balancer: UpstreamConfig['balancer']
  if (u.balancer === undefined) balancer = { strategy: 'p2c', options: {} }
  else if (typeof u.balancer === 'string') balancer = { strategy: u.balancer, options: {} }
  else {
    const b = v.object(u.balancer, `${at}.balancer`)
    v.keys(b, `${at}.balancer`, ['strategy', 'options'])
    balancer = {
      strategy: v.string(b.strategy, `${at}.balancer.strategy`),
      options: b.options === undefined ? {} : v.object(b.options, `${at}.balancer.options`),
    }
  }
  if (!balancerNames().includes(balancer.strategy)) {
    v.fail(`${at}.balancer${typeof u.balancer === 'string' ? '' : '.strategy'}`, `a balancer name (${balancerNames().join(', ')})`, balancer.strategy)
  }
  try {
    // Build it once to validate the options now, with the key path, rather than at first request.
    createBalancer(balancer)
  } catch (err) {
    v.fail(`${at}.balancer.options`, `valid options for ${balancer.strategy} (${(err as Error).message})`, balancer.options)
  }
  const targetsRaw = v.list(u.targets, `${at}.targets`)
  if (targetsRaw.length === 0) v.fail(`${at}.targets`, 'at least one target', targetsRaw)
  const targets = targetsRaw.map((t, i) => {
    const tat = `${at}.targets[${i}]`
    const obj = typeof t === 'string' ? { url: t } : v.object(t, tat)
    v.keys(obj, tat, ['url', 'weight', 'priority'])
    const url = v.httpUrl(obj.url, `${tat}.url`)
    const weight = obj.weight === undefined ? 1 : v.number(obj.weight, `${tat}.weight`, { min: Number.MIN_VALUE })
    const priority = obj.priority === undefined ? 0 : v.integer(obj.priority, `${tat}.priority`, 0)
    return { url, weight, priority }
  })
  const t = u.timeouts === undefined ? {} : v.object(u.timeouts, `${at}.timeouts`)
  v.keys(t, `${at}.timeouts`, ['connect', 'response', 'idle'])
  const timeouts = {
    connectMs: v.duration(t.connect, `${at}.timeouts.connect`, 2_000, 1),
    responseMs: v.duration(t.response, `${at}.timeouts.response`, 30_000, 1),
    idleMs: v.duration(t.idle, `${at}.timeouts.idle`, 60_000, 1),
  }
  let healthCheck: HealthCheckConfig | undefined
  if (u.healthCheck !== undefined && u.healthCheck !== false) {
    const hat = `${at}.healthCheck`
    const h = u.healthCheck === true ? {} : v.object(u.healthCheck, hat)
    v.keys(h, hat, ['path', 'method', 'interval', 'timeout', 'healthyThreshold', 'unhealthyThreshold', 'expectStatus'])
    const method = (v.optString(h.method, `${hat}.method`) ?? DEFAULT_HEALTH.method).toUpperCase()
    if (method !== 'HEAD' && method !== 'GET' && method !== 'OPTIONS') v.fail(`${hat}.method`, 'HEAD, GET or OPTIONS', h.method)
    const path = v.optString(h.path, `${hat}.path`) ?? DEFAULT_HEALTH.path
    if (!path.startsWith('/')) v.fail(`${hat}.path`, 'a path starting with /', path)
    let expectStatus = DEFAULT_HEALTH.expectStatus
    if (h.expectStatus !== undefined) {
      const list = Array.isArray(h.expectStatus) ? h.expectStatus : [h.expectStatus]
      expectStatus = list.map((s, i) => {
        if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) return s
        if (typeof s === 'string' && /^[1-5]xx$/.test(s)) return s
        return v.fail(`${hat}.expectStatus[${i}]`, 'a status code (200) or class (2xx)', s)
      })
    }
    healthCheck = {
      path,
      method: method as HealthCheckConfig['method'],
      intervalMs: v.duration(h.interval, `${hat}.interval`, DEFAULT_HEALTH.intervalMs, 1),
      timeoutMs: v.duration(h.timeout, `${hat}.timeout`, DEFAULT_HEALTH.timeoutMs, 1),
      healthyThreshold: v.optInteger(h.healthyThreshold, `${hat}.healthyThreshold`, 1) ?? DEFAULT_HEALTH.healthyThreshold,
      unhealthyThreshold:
        v.optInteger(h.unhealthyThreshold, `${hat}.unhealthyThreshold`, 1) ?? DEFAULT_HEALTH.unhealthyThreshold,
      expectStatus,
    }
  }
  let outlierDetection: OutlierDetectionConfig | undefined
  if (u.outlierDetection !== undefined && u.outlierDetection !== false) {
    const oat = `${at}.outlierDetection`
    const o = u.outlierDetection === true ? {} : v.object(u.outlierDetection, oat)
    v.keys(o, oat, [
      'consecutiveFailures',
      'failureRate',
      'minRequests',
      'window',
      'baseEjectionTime',
      'maxEjectionTime',
      'maxEjectedPercent',
    ])
    outlierDetection = {
      consecutiveFailures:
        v.optInteger(o.consecutiveFailures, `${oat}.consecutiveFailures`, 1) ?? DEFAULT_OUTLIER.consecutiveFailures,
      failureRate:
        o.failureRate === undefined
          ? DEFAULT_OUTLIER.failureRate
          : v.number(o.failureRate, `${oat}.failureRate`, { min: 0, max: 1 }),
      minRequests: v.optInteger(o.minRequests, `${oat}.minRequests`, 1) ?? DEFAULT_OUTLIER.minRequests,
      windowMs: v.duration(o.window, `${oat}.window`, DEFAULT_OUTLIER.windowMs, 1),
      baseEjectionMs: v.duration(o.baseEjectionTime, `${oat}.baseEjectionTime`, DEFAULT_OUTLIER.baseEjectionMs, 1),
      maxEjectionMs: v.duration(o.maxEjectionTime, `${oat}.maxEjectionTime`, DEFAULT_OUTLIER.maxEjectionMs, 1),
      maxEjectedPercent:
        o.maxEjectedPercent === undefined
          ? DEFAULT_OUTLIER.maxEjectedPercent
          : v.number(o.maxEjectedPercent, `${oat}.maxEjectedPercent`, { min: 0, max: 100 }),
    }
  }
  if (outlierDetection && outlierDetection.maxEjectionMs < outlierDetection.baseEjectionMs) {
    v.fail(`${at}.outlierDetection.maxEjectionTime`, 'a duration at least as long as baseEjectionTime', u.outlierDetection && (u.outlierDetection as Obj).maxEjectionTime)
  }
  return {
    name,
    balancer,
    targets,
    timeouts,
    healthCheck,
    outlierDetection,
    slowStartMs: v.duration(u.slowStart, `${at}.slowStart`, 0),
    retries: v.optInteger(u.retries, `${at}.retries`, 0) ?? 1,
  }
}

function parseRoute(v: Validator, at: string, raw: unknown, upstreams: Record<string, UpstreamConfig>): RouteConfig {
  const r = v.object(raw, at)
  v.keys(r, at, ['name', 'match', 'upstream', 'priority', 'rewrite', 'requestHeaders', 'responseHeaders', 'cache', 'websocket'])
  const name = v.string(r.name, `${at}.name`)
  const m = v.object(r.match, `${at}.match`)
  v.keys(m, `${at}.match`, ['path', 'pathRegex', 'methods', 'method', 'host', 'headers', 'query', 'payload'])
  const match: RouteMatchConfig = {}
  if (m.path !== undefined) {
    match.path = v.string(m.path, `${at}.match.path`)
    if (!match.path.startsWith('/')) v.fail(`${at}.match.path`, 'a path starting with /', match.path)
  }
  if (m.pathRegex !== undefined) {
    match.pathRegex = v.string(m.pathRegex, `${at}.match.pathRegex`)
    try {
      new RegExp(match.pathRegex)
    } catch {
      v.fail(`${at}.match.pathRegex`, 'a valid regular expression', match.pathRegex)
    }
  }
  if (match.path === undefined && match.pathRegex === undefined) v.fail(`${at}.match.path`, 'a path pattern such as /api/*', undefined)
  const methods = m.methods ?? m.method
  if (methods !== undefined) {
    const list = typeof methods === 'string' ? [methods] : v.list(methods, `${at}.match.methods`)
    match.methods = list.map((x, i) => {
      const s = v.string(x, `${at}.match.methods[${i}]`).toUpperCase()
      if (!/^[A-Z]+$/.test(s)) v.fail(`${at}.match.methods[${i}]`, 'an HTTP method name', x)
      return s
    })
  }
  if (m.host !== undefined) {
    match.host = Array.isArray(m.host)
      ? m.host.map((h, i) => v.string(h, `${at}.match.host[${i}]`))
      : v.string(m.host, `${at}.match.host`)
  }
  if (m.headers !== undefined) match.headers = v.conditions(m.headers, `${at}.match.headers`)
  if (m.query !== undefined) match.query = v.conditions(m.query, `${at}.match.query`)
  if (m.payload !== undefined) {
    const list = v.list(m.payload, `${at}.match.payload`)
    if (list.length === 0) v.fail(`${at}.match.payload`, 'a non-empty list of JSON payloads', list)
    match.payload = list
  }
  const upstream = v.string(r.upstream, `${at}.upstream`)
  if (!(upstream in upstreams)) {
    v.fail(`${at}.upstream`, `the name of an upstream (${Object.keys(upstreams).join(', ')})`, upstream)
  }
  let rewrite: RouteConfig['rewrite']
  if (r.rewrite !== undefined) {
    const w = v.object(r.rewrite, `${at}.rewrite`)
    v.keys(w, `${at}.rewrite`, ['stripPrefix', 'addPrefix'])
    rewrite = {}
    if (w.stripPrefix !== undefined) rewrite.stripPrefix = v.pathPrefix(w.stripPrefix, `${at}.rewrite.stripPrefix`)
    if (w.addPrefix !== undefined) rewrite.addPrefix = v.pathPrefix(w.addPrefix, `${at}.rewrite.addPrefix`)
  }
  let cache: RouteCacheConfig | undefined
  if (r.cache === true) cache = { ttlMs: undefined, maxObjectBytes: 1024 * 1024, keyHeaders: [] }
  else if (r.cache !== undefined && r.cache !== false) {
    const c = v.object(r.cache, `${at}.cache`)
    v.keys(c, `${at}.cache`, ['ttl', 'maxObjectSize', 'keyHeaders'])
    cache = {
      ttlMs: c.ttl === undefined ? undefined : v.duration(c.ttl, `${at}.cache.ttl`, 0, 1),
      maxObjectBytes: v.size(c.maxObjectSize, `${at}.cache.maxObjectSize`, 1024 * 1024, 1),
      keyHeaders:
        c.keyHeaders === undefined
          ? []
          : v.list(c.keyHeaders, `${at}.cache.keyHeaders`).map((h, i) => v.string(h, `${at}.cache.keyHeaders[${i}]`).toLowerCase()),
    }
  }
  let websocket: RouteWebSocketConfig | undefined
  if (r.websocket !== undefined) {
    const w = v.object(r.websocket, `${at}.websocket`)
    v.keys(w, `${at}.websocket`, ['maxMessageSize', 'idleTimeout', 'pingInterval'])
    websocket = {
      maxMessageBytes: w.maxMessageSize === undefined ? undefined : v.size(w.maxMessageSize, `${at}.websocket.maxMessageSize`, 0, 1),
      idleTimeoutMs: w.idleTimeout === undefined ? undefined : v.duration(w.idleTimeout, `${at}.websocket.idleTimeout`, 0, 1),
      pingIntervalMs: w.pingInterval === undefined ? undefined : v.duration(w.pingInterval, `${at}.websocket.pingInterval`, 0, 1),
    }
  }
  return {
    name,
    match,
    upstream,
    priority: r.priority === undefined ? undefined : v.number(r.priority, `${at}.priority`, {}),
    rewrite,
    requestHeaders: r.requestHeaders === undefined ? undefined : v.headerEdit(r.requestHeaders, `${at}.requestHeaders`),
    responseHeaders: r.responseHeaders === undefined ? undefined : v.headerEdit(r.responseHeaders, `${at}.responseHeaders`),
    cache,
    websocket,
  }
}

function parseDiscovery(v: Validator, raw: unknown): DiscoveryConfig | undefined {
  if (raw === undefined) return undefined
  const d = v.object(raw, 'discovery')
  v.keys(d, 'discovery', ['endpoints', 'remember', 'store', 'timeouts'])
  const list = v.list(d.endpoints, 'discovery.endpoints')
  if (list.length === 0) v.fail('discovery.endpoints', 'at least one endpoint URL', list)
  const endpoints = list.map((e, i) => v.httpUrl(e, `discovery.endpoints[${i}]`))
  let rememberTtlMs = 3_600_000
  if (d.remember !== undefined) {
    const r = v.object(d.remember, 'discovery.remember')
    v.keys(r, 'discovery.remember', ['ttl'])
    rememberTtlMs = v.duration(r.ttl, 'discovery.remember.ttl', rememberTtlMs, 1)
  }
  const t = d.timeouts === undefined ? {} : v.object(d.timeouts, 'discovery.timeouts')
  v.keys(t, 'discovery.timeouts', ['connect', 'response', 'idle'])
  return {
    endpoints,
    rememberTtlMs,
    store: d.store === undefined ? undefined : parseStore(v, d.store, 'discovery.store'),
    timeouts: {
      connectMs: v.duration(t.connect, 'discovery.timeouts.connect', 2_000, 1),
      responseMs: v.duration(t.response, 'discovery.timeouts.response', 30_000, 1),
      idleMs: v.duration(t.idle, 'discovery.timeouts.idle', 60_000, 1),
    },
  }
}

function parseAdmin(v: Validator, raw: unknown, healthPath: string): AdminConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const a = raw === true ? {} : v.object(raw, 'admin')
  v.keys(a, 'admin', ['path', 'token'])
  const path = (v.optString(a.path, 'admin.path') ?? '/admin').replace(/\/+$/, '')
  if (!path.startsWith('/') || path.length < 2) v.fail('admin.path', 'a path prefix such as /admin', a.path)
  if (healthPath === path || healthPath.startsWith(`${path}/`)) v.fail('admin.path', 'a prefix that does not contain server.healthPath', a.path)
  const token = v.optString(a.token, 'admin.token')
  if (token !== undefined && token.length < 16) v.fail('admin.token', 'a token of at least 16 characters', '(hidden)')
  return { path, token }
}

function parseStore(v: Validator, raw: unknown, at = 'store'): StoreConfig {
  if (raw === undefined) return { driver: 'memory' }
  const s = v.object(raw, at)
  v.keys(s, at, ['driver', 'path', 'url', 'failMode'])
  const driver = v.string(s.driver, `${at}.driver`)
  if (driver !== 'memory' && driver !== 'sqlite' && driver !== 'redis') v.fail(`${at}.driver`, 'memory, sqlite or redis', driver)
  const out: StoreConfig = { driver }
  if (driver === 'sqlite') out.path = v.optString(s.path, `${at}.path`) ?? './switchboard.db'
  if (driver === 'redis') {
    out.url = v.string(s.url, `${at}.url`)
    if (!/^rediss?:\/\//.test(out.url)) v.fail(`${at}.url`, 'a redis:// or rediss:// URL', out.url)
  }
  if (s.failMode !== undefined) {
    if (s.failMode !== 'open' && s.failMode !== 'closed') v.fail(`${at}.failMode`, 'open or closed', s.failMode)
    out.failMode = s.failMode
  }
  return out
}

type Obj = Record<string, unknown>

/** Small validator: every failure names the file, the key path and what was expected. */
class Validator {
  readonly #file: string | undefined
  readonly #env: Record<string, string | undefined>

  constructor(file: string | undefined, env: Record<string, string | undefined>) {
    this.#file = file
    this.#env = env
  }

  fail(path: string, expected: string, got: unknown): never {
    throw new ConfigError(path, expected, { file: this.#file, got })
  }

  /** Expands `${NAME}` and `${NAME:-default}`; a missing variable without default is an error. */
  expand(value: string, path: string): string {
    if (!value.includes('${')) return value
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
      const found = this.#env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      return this.fail(path, `environment variable ${name} to be set`, undefined)
    })
  }

  object(value: unknown, path: string): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'a mapping', value)
    return value as Obj
  }

  list(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'a list', value)
    return value
  }

  keys(obj: Obj, path: string, allowed: string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(path ? `${path}.${key}` : key, `one of the known keys (${allowed.join(', ')})`, key)
      }
    }
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string' || value === '') this.fail(path, 'a non-empty string', value)
    return this.expand(value, path)
  }

  optString(value: unknown, path: string): string | undefined {
    return value === undefined ? undefined : this.string(value, path)
  }

  number(value: unknown, path: string, range: { min?: number; max?: number }): number {
    const n = typeof value === 'string' ? Number(this.expand(value, path)) : value
    if (typeof n !== 'number' || !Number.isFinite(n)) this.fail(path, 'a number', value)
    if (range.min !== undefined && n < range.min) this.fail(path, `a number ≥ ${range.min === Number.MIN_VALUE ? '0 (exclusive)' : range.min}`, value)
    if (range.max !== undefined && n > range.max) this.fail(path, `a number ≤ ${range.max}`, value)
    return n
  }

  integer(value: unknown, path: string, min: number): number {
    const n = this.number(value, path, { min })
    if (!Number.isInteger(n)) this.fail(path, `a whole number ≥ ${min}`, value)
    return n
  }

  optInteger(value: unknown, path: string, min: number): number | undefined {
    return value === undefined ? undefined : this.integer(value, path, min)
  }

  port(value: unknown, path: string): number | undefined {
    if (value === undefined) return undefined
    const n = typeof value === 'string' ? Number(this.expand(value, path)) : value
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) this.fail(path, 'a port number (0-65535)', value)
    return n
  }

  duration(value: unknown, path: string, fallback: number, min = 0): number {
    if (value === undefined) return fallback
    const ms = parseDuration(typeof value === 'string' ? this.expand(value, path) : value)
    if (ms === undefined || ms < min) this.fail(path, 'a duration such as 250ms, 2s, 5m or a number of milliseconds', value)
    return ms
  }

  size(value: unknown, path: string, fallback: number, min = 0): number {
    if (value === undefined) return fallback
    const bytes = parseSize(typeof value === 'string' ? this.expand(value, path) : value)
    if (bytes === undefined || bytes < min) this.fail(path, `a size such as 16kb, 10mb or a number of bytes (≥ ${min})`, value)
    return bytes
  }

  httpUrl(value: unknown, path: string): string {
    const s = this.string(value, path)
    let url: URL
    try {
      url = new URL(s)
    } catch {
      return this.fail(path, 'an http:// or https:// URL', s)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') this.fail(path, 'an http:// or https:// URL', s)
    if (url.search || url.hash || url.username || url.password) this.fail(path, 'a URL without query, fragment or credentials', s)
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`
  }

  pathPrefix(value: unknown, path: string): string {
    const s = this.string(value, path)
    if (!s.startsWith('/')) this.fail(path, 'a path prefix starting with /', s)
    return s
  }

  conditions(value: unknown, path: string): Record<string, ConditionValue> {
    const obj = this.object(value, path)
    const out: Record<string, ConditionValue> = {}
    for (const [key, cond] of Object.entries(obj)) {
      if (cond === true) out[key.toLowerCase()] = true
      else if (typeof cond === 'string') {
        const re = /^\/(.*)\/([a-z]*)$/s.exec(cond)
        if (re) {
          try {
            out[key.toLowerCase()] = new RegExp(re[1], re[2])
          } catch {
            this.fail(`${path}.${key}`, 'a valid /regular expression/', cond)
          }
        } else out[key.toLowerCase()] = this.expand(cond, `${path}.${key}`)
      } else this.fail(`${path}.${key}`, 'a string, a /regex/ or true', cond)
    }
    return out
  }

  headerEdit(value: unknown, path: string): HeaderEditConfig {
    const obj = this.object(value, path)
    this.keys(obj, path, ['set', 'remove'])
    const set: Record<string, string> = {}
    if (obj.set !== undefined) {
      for (const [k, val] of Object.entries(this.object(obj.set, `${path}.set`))) {
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) this.fail(`${path}.set.${k}`, 'a valid header name', k)
        const s = typeof val === 'number' ? String(val) : this.string(val, `${path}.set.${k}`)
        if (/[\r\n\0]/.test(s)) this.fail(`${path}.set.${k}`, 'a header value without CR, LF or NUL', s)
        set[k.toLowerCase()] = s
      }
    }
    const remove =
      obj.remove === undefined
        ? []
        : this.list(obj.remove, `${path}.remove`).map((x, i) => this.string(x, `${path}.remove[${i}]`).toLowerCase())
    return { set, remove }
  }
}
