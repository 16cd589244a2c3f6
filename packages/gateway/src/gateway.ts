import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  BadRequestError,
  GatewayError,
  HeadersTooLargeError,
  isGatewayError,
  MethodNotAllowedError,
  type Middleware,
  NoHealthyUpstreamError,
  NoRouteError,
  RequestTimeoutError,
  ServiceUnavailableError,
  type Store,
  type UpstreamFetchInit,
  type UpstreamResponse,
} from '@switchboard/core'
import { createMatcher, type Matcher, normalizePath } from '@switchboard/matcher'
import type { EndpointState } from '@switchboard/balancer'
import { createUpstreamPool, forward, requestUpstream, type UpstreamPool } from '@switchboard/proxy-pass'
import { createDiscovery, type Discovery } from '@switchboard/discovery'
import { isWebSocketUpgrade, tunnelUpgrade } from '@switchboard/websocket-tunnel'
import { createHttpCache, type HttpCache } from '@switchboard/cache'
import { createStore } from '@switchboard/store'
import type { GatewayConfig, RouteConfig, StoreConfig } from './config.ts'
import { type AdminActions, handleAdmin } from './admin.ts'
import { NodeExchange } from './exchange.ts'
import { basePathOf, originOf, UpstreamRuntime, type UpstreamLog } from './upstream.ts'

/** Log sink: one structured line per event. */
export type GatewayLogger = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void

/** Options of {@link createGateway} beyond the config file. */
export interface GatewayOptions {
  /** Extra layers run on every route before the route's own (auth, rate limits, ...). */
  policies?: Middleware[]
  /** Log sink. @default JSON lines on stderr for warn/error, stdout for info */
  logger?: GatewayLogger
  /** Use this store instead of the one `config.store` names (tests, embedding). */
  store?: Store
}

/** A running (or ready to run) gateway. */
export interface Gateway {
  /** The validated config in force. */
  readonly config: GatewayConfig
  /** The `node:http` server (created by the gateway). */
  readonly server: Server
  /** The store shared by everything that keeps state. */
  readonly store: Store
  /** Starts listening on `config.server.host`/`port` (or the given port). */
  listen(port?: number, host?: string): Promise<AddressInfo>
  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (up to
   * `server.shutdownTimeout`), then close everything.
   */
  close(): Promise<void>
  /** Live stats of every endpoint, per upstream. */
  upstreamStats(): Record<string, Record<string, unknown>[]>
  /** The upstream runtimes (endpoints, balancer, health checker). */
  upstream(name: string): UpstreamRuntime | undefined
  /** Cache counters, summed over routes with a cache. */
  cacheStats(): Record<string, number>
  /** Purges cached responses whose key starts with `prefix` (all when empty). */
  purgeCache(prefix?: string): Promise<number>
  /** Forgets remembered discovery routes whose key starts with `prefix` (all when empty); returns how many. */
  forgetRoutes(prefix?: string): Promise<number>
  /** Discovery counters (hits, misses, probes, remembered, forgotten), when discovery is configured. */
  discoveryStats(): Record<string, number> | undefined
  /** Number of requests being served right now. */
  readonly inFlight: number
}

interface RouteRuntime {
  readonly config: RouteConfig
  readonly upstream: UpstreamRuntime
  readonly layers: Middleware[]
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

/**
 * Builds a gateway from a validated config: matcher, balancers, health checks, cache and
 * proxy-pass composed into one request pipeline on a hardened `node:http` server.
 * @example
 * const gw = await createGateway(loadConfigText(yaml))
 * await gw.listen()
 */
export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? defaultLogger
  const store = options.store ?? (await createStore(config.store as Parameters<typeof createStore>[0]))
  const upstreamLog: UpstreamLog = (level, message, fields) => logger(level, message, fields)
  const upstreams = new Map<string, UpstreamRuntime>()
  for (const [name, u] of Object.entries(config.upstreams)) upstreams.set(name, new UpstreamRuntime(u, upstreamLog))
  const caches: HttpCache[] = []
  const routes = new Map<string, RouteRuntime>()
  for (const route of config.routes) {
    const layers: Middleware[] = [...(options.policies ?? [])]
    const edits = routeHeaderLayer(route)
    if (edits) layers.push(edits)
    if (route.cache) {
      const cache = createHttpCache({
        store,
        ttlMs: route.cache.ttlMs,
        maxObjectBytes: route.cache.maxObjectBytes,
        keyHeaders: route.cache.keyHeaders,
        namespace: `cache:${route.name}:`,
      })
      caches.push(cache)
      layers.push(cache.middleware())
    }
    routes.set(route.name, { config: route, upstream: upstreams.get(route.upstream)!, layers })
  }
  const discoveryPools = new Map<string, UpstreamPool>()
  let discovery: Discovery | undefined
  let discoveryStore: Store | undefined
  let discoveryLayer: Middleware | undefined
  if (config.discovery) {
    const d = config.discovery
    // Remembered routes must survive restarts: without a persistent store configured, use SQLite.
    const spec: StoreConfig | undefined =
      d.store ?? (config.store.driver === 'memory' && !options.store ? { driver: 'sqlite', path: './switchboard-routes.db' } : undefined)
    discoveryStore = spec ? await createStore(spec as Parameters<typeof createStore>[0]) : store
    for (const url of d.endpoints) {
      if (!discoveryPools.has(originOf(url))) discoveryPools.set(originOf(url), createUpstreamPool(originOf(url), { connectTimeoutMs: d.timeouts.connectMs }))
    }
    discovery = createDiscovery({
      endpoints: d.endpoints,
      store: discoveryStore,
      ttlMs: d.rememberTtlMs,
      maxBodyBytes: config.server.limits.maxBodyBytes,
      transport: {
        send: (ex, url, body) => {
          const nex = ex as NodeExchange
          return requestUpstream(nex.req, {
            pool: discoveryPools.get(originOf(url))!,
            target: basePathOf(url) + nex.upstreamTarget,
            headers: nex.upstreamHeaderEdits,
            clientIp: nex.clientIp,
            body,
            responseTimeoutMs: d.timeouts.responseMs,
            idleTimeoutMs: d.timeouts.idleMs,
          })
        },
      },
      onEvent: (e) => {
        if (e.type === 'remembered' || e.type === 'forgotten') {
          logger('info', `discovery: ${e.type} ${e.key}`, { endpoint: e.endpoint, reason: e.reason })
        }
      },
    })
    discoveryLayer = discovery.middleware()
  }
  const matcher: Matcher<RouteRuntime> = createMatcher(
    config.routes.map((r) => ({
      name: r.name,
      priority: r.priority,
      match: {
        path: r.match.path,
        pathRegex: r.match.pathRegex,
        methods: r.match.methods,
        host: r.match.host,
        headers: r.match.headers,
        query: r.match.query,
        payload: r.match.payload,
      },
      data: routes.get(r.name)!,
    })),
  )
  const limits = config.server.limits
  let inFlight = 0
  let closing = false
  let closePromise: Promise<void> | undefined
  const tunnels = new Set<Duplex>()

  const host = { fetchUpstream: fetchVia }

  async function fetchVia(ex: NodeExchange, init: UpstreamFetchInit | undefined): Promise<UpstreamResponse> {
    const rt = ex.state.get(ROUTE_KEY) as RouteRuntime | undefined
    if (!rt) throw new NoRouteError()
    const ep = rt.upstream.balancer.pick(rt.upstream.candidates(), ex) as EndpointState | undefined
    if (!ep) throw new NoHealthyUpstreamError({ details: { upstream: rt.upstream.name } })
    const started = ep.begin()
    try {
      const res = await requestUpstream(ex.req, {
        pool: rt.upstream.pool(ep),
        method: init?.method ?? ex.method,
        target: basePathOf(ep.url) + ex.upstreamTarget,
        headers: { ...ex.upstreamHeaderEdits, ...init?.headers },
        clientIp: ex.clientIp,
        body: ex.bufferedBody,
        responseTimeoutMs: rt.upstream.config.timeouts.responseMs,
        idleTimeoutMs: rt.upstream.config.timeouts.idleMs,
      })
      ep.end(started, res.status < 500)
      rt.upstream.checker.observe(ep, { ok: res.status < 500, status: res.status })
      return res
    } catch (err) {
      ep.end(started, false)
      rt.upstream.checker.observe(ep, { ok: false })
      throw err
    }
  }

  /** The last step: pick an endpoint and forward, retrying idempotent requests that failed before a response. */
  async function proxyStep(ex: NodeExchange, rt: RouteRuntime): Promise<void> {
    const upstream = rt.upstream
    const timeouts = upstream.config.timeouts
    const replayable = ex.bufferedBody !== undefined || !ex.hasBody
    let attempts = IDEMPOTENT.has(ex.method) && replayable ? 1 + upstream.config.retries : 1
    let tried: EndpointState[] | undefined
    let candidates = upstream.candidates()
    for (;;) {
      const ep = upstream.balancer.pick(candidates, ex) as EndpointState | undefined
      if (!ep) throw new NoHealthyUpstreamError({ details: { upstream: upstream.name } })
      ex.sendContinue()
      const sticky = upstream.balancer.responseHeaders?.(ep, ex)
      if (sticky) Object.assign(ex.responseHeaders, sticky)
      const started = ep.begin()
      try {
        const result = await forward(ex.req, ex.res, {
          pool: upstream.pool(ep),
          target: basePathOf(ep.url) + ex.upstreamTarget,
          headers: ex.upstreamHeaderEdits,
          clientIp: ex.clientIp,
          responseTimeoutMs: timeouts.responseMs,
          idleTimeoutMs: timeouts.idleMs,
          body: ex.bufferedBody,
          maxBodyBytes: limits.maxRequestBodyBytes,
          // Hooks and `responseHeaders` are applied together, once; no closure when nothing edits.
          onResponseHead: ex.editsResponseHead ? (status, headers) => ex.applyResponseHead(status, headers) : undefined,
          tap: ex.combinedTap(),
        })
        const ok = result.status < 500 && !result.aborted
        ep.end(started, ok)
        upstream.checker.observe(ep, { ok, status: result.status })
        return
      } catch (err) {
        ep.end(started, false)
        upstream.checker.observe(ep, { ok: false })
        if (--attempts <= 0 || ex.res.headersSent || ex.req.destroyed) throw err
        ;(tried ??= []).push(ep)
        const left = candidates.filter((c) => !tried!.includes(c))
        if (left.length === 0) throw err
        candidates = left
      }
    }
  }

  /** Runs the route's layers from `i`, then `final` (proxy-pass for HTTP, the tunnel for upgrades). */
  function runLayers(
    ex: NodeExchange,
    rt: RouteRuntime,
    i: number,
    final: (ex: NodeExchange, rt: RouteRuntime) => Promise<void>,
  ): Promise<void> {
    if (ex.responded) return Promise.resolve()
    if (i === rt.layers.length) return final(ex, rt)
    let called = false
    return rt.layers[i](ex, () => {
      if (called) return Promise.reject(new Error(`next() called twice in ${rt.layers[i].name || 'a layer'}`))
      called = true
      return runLayers(ex, rt, i + 1, final)
    })
  }

  async function handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    inFlight++
    res.once('close', () => inFlight--)
    if (closing) res.shouldKeepAlive = false
    const parsed = parseTarget(req.url ?? '/')
    if (typeof parsed === 'string') return sendError(res, new BadRequestError({ message: parsed }))
    if (hasDuplicateHost(req.rawHeaders)) return sendError(res, new BadRequestError({ message: 'Duplicate Host header' }))
    const { target, path, query, normalized } = parsed
    if (path === config.server.healthPath && (req.method === 'GET' || req.method === 'HEAD')) return sendHealth(res)
    const admin = config.admin
    if (admin && (normalized === admin.path || normalized.startsWith(`${admin.path}/`))) {
      return handleAdmin(req, res, normalized.slice(admin.path.length), admin, adminActions)
    }
    const clientIp = req.socket.remoteAddress ?? ''
    const ex = new NodeExchange(req, res, host, target, path, query, clientIp, expectContinue)
    if (ex.hasBody) watchBodyIdle(req, res, limits.bodyIdleTimeoutMs)
    try {
      const input = { method: ex.method, path: normalized, query, host: req.headers.host, headers: req.headers, body: undefined as unknown }
      let match = matcher.match(input)
      if (matcher.needsBody(input)) {
        const bytes = await ex.readBody(limits.maxBodyBytes)
        input.body = ex.body = parseJson(bytes)
        match = matcher.match(input)
      }
      if (!match) {
        if (!discoveryLayer) throw new NoRouteError()
        // Seed 000: nothing claims it, so try the endpoints in order and remember the winner.
        await discoveryLayer(ex, () => Promise.reject(new NoRouteError()))
        return
      }
      const rt = match.route.data
      ex.route = { name: rt.config.name, params: match.params }
      ex.state.set(ROUTE_KEY, rt)
      const rewrite = rt.config.rewrite
      if (rewrite) ex.upstreamTarget = rewriteTarget(target, rewrite)
      await runLayers(ex, rt, 0, proxyStep)
    } catch (err) {
      if (!res.headersSent && !res.destroyed) {
        if (!isGatewayError(err)) logger('error', 'request failed', { error: String((err as Error)?.stack ?? err) })
        // The body may be partly unread: do not reuse this connection.
        if (ex.hasBody && !req.complete) res.shouldKeepAlive = false
        sendError(res, isGatewayError(err) ? err : new GatewayError(500, 'ERR_INTERNAL', 'Internal error', { cause: err }))
      } else if (!res.writableFinished) {
        res.destroy()
      }
    }
  }

  function sendHealth(res: ServerResponse): void {
    const body: Record<string, { healthy: number; total: number }> = {}
    let ok = true
    for (const [name, u] of upstreams) {
      const healthy = u.candidates().length
      body[name] = { healthy, total: u.endpoints.length }
      if (healthy === 0) ok = false
    }
    const text = JSON.stringify({ status: closing ? 'draining' : ok ? 'ok' : 'degraded', upstreams: body })
    res.writeHead(ok && !closing ? 200 : 503, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!isWebSocketUpgrade(req)) {
      // Not a WebSocket upgrade (e.g. h2c): ignore the Upgrade header and serve plain HTTP/1.1.
      if (head.length > 0) socket.unshift(head)
      void handle(req, responseOnSocket(req, socket, () => true), false)
      return
    }
    // The same routes, layers (policies) and balancer as HTTP. Until the tunnel takes the socket
    // over, a layer answers through an ordinary response on it (a 401, say), then the socket closes.
    let tunnelled = false
    const res = responseOnSocket(req, socket, () => !tunnelled)
    const fail = (err: GatewayError): void => {
      if (!res.headersSent) sendError(res, err)
      else socket.destroy()
    }
    if (closing) return fail(new ServiceUnavailableError())
    const parsed = parseTarget(req.url ?? '/')
    if (typeof parsed === 'string') return fail(new BadRequestError({ message: parsed }))
    const { target, path, query, normalized } = parsed
    const match = matcher.match({ method: req.method ?? 'GET', path: normalized, query, host: req.headers.host, headers: req.headers })
    if (!match) return fail(new NoRouteError())
    const rt = match.route.data
    const ex = new NodeExchange(req, res, host, target, path, query, req.socket.remoteAddress ?? '', false)
    ex.route = { name: rt.config.name, params: match.params }
    ex.state.set(ROUTE_KEY, rt)
    if (rt.config.rewrite) ex.upstreamTarget = rewriteTarget(target, rt.config.rewrite)

    const tunnelStep = async (ex: NodeExchange, rt: RouteRuntime): Promise<void> => {
      const ep = rt.upstream.balancer.pick(rt.upstream.candidates(), ex) as EndpointState | undefined
      if (!ep) throw new NoHealthyUpstreamError({ details: { upstream: rt.upstream.name } })
      tunnelled = true
      res.detachSocket(socket as Socket)
      tunnels.add(socket)
      socket.once('close', () => tunnels.delete(socket))
      const started = ep.begin()
      try {
        const result = await tunnelUpgrade(req, socket, head, {
          target: ep.url,
          path: basePathOf(ep.url) + ex.upstreamTarget,
          clientIp: ex.clientIp,
          connectTimeoutMs: rt.upstream.config.timeouts.connectMs,
          handshakeTimeoutMs: rt.upstream.config.timeouts.responseMs,
          headers: ex.upstreamHeaderEdits,
          maxMessageBytes: rt.config.websocket?.maxMessageBytes,
          idleTimeoutMs: rt.config.websocket?.idleTimeoutMs,
          pingIntervalMs: rt.config.websocket?.pingIntervalMs,
        })
        // An upstream refusal (403) is an answer; only a failed connect or handshake counts against it.
        const ok = result.outcome !== 'failed'
        ep.end(started, ok)
        rt.upstream.checker.observe(ep, { ok, status: result.status })
      } catch (err) {
        ep.end(started, false)
        logger('warn', 'websocket tunnel failed', { route: rt.config.name, error: String(err) })
      }
    }
    runLayers(ex, rt, 0, tunnelStep).catch((err: unknown) => {
      if (tunnelled) return void socket.destroy()
      if (!isGatewayError(err)) logger('error', 'upgrade failed', { error: String((err as Error)?.stack ?? err) })
      fail(isGatewayError(err) ? err : new GatewayError(500, 'ERR_INTERNAL', 'Internal error', { cause: err }))
    })
  }

  const adminActions: AdminActions = {
    upstreams: () => gateway.upstreamStats(),
    cache: () => gateway.cacheStats(),
    purgeCache: (prefix) => gateway.purgeCache(prefix),
    forgetRoutes: discovery && ((prefix) => gateway.forgetRoutes(prefix)),
  }

  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: config.server.keepAliveTimeoutMs,
      // Node checks head timeouts on this period; keep it well under headersTimeout.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      noDelay: true,
    },
    (req, res) => void handle(req, res, false),
  )
  server.on('checkContinue', (req, res) => void handle(req, res, true))
  server.on('checkExpectation', (_req, res) => {
    res.writeHead(417, JSON_HEADERS)
    res.end(new GatewayError(417, 'ERR_EXPECTATION_FAILED', 'Expectation failed').toBody())
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => onClientError(err, socket))
  // RFC 9110 §9.3.6: a reverse proxy has no business tunnelling CONNECT.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => writeRawError(socket, new MethodNotAllowedError()))
  server.on('upgrade', onUpgrade)

  for (const u of upstreams.values()) u.start()

  const gateway: Gateway = {
    config,
    server,
    store,
    get inFlight() {
      return inFlight
    },
    listen(port = config.server.port, hostname = config.server.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, hostname, () => {
          server.off('error', reject)
          resolve(server.address() as AddressInfo)
        })
      })
    },
    close() {
      closePromise ??= (async () => {
        closing = true
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections?.()
        const deadline = Date.now() + config.server.shutdownTimeoutMs
        while (inFlight > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 25))
          server.closeIdleConnections?.()
        }
        server.closeAllConnections?.()
        for (const s of tunnels) s.destroy()
        await stopped
        await Promise.all([...upstreams.values()].map((u) => u.close()))
        await Promise.all([...discoveryPools.values()].map((p) => p.close()))
        if (discoveryStore && discoveryStore !== store) await discoveryStore.close()
        if (!options.store) await store.close()
      })()
      return closePromise
    },
    upstreamStats() {
      const out: Record<string, Record<string, unknown>[]> = {}
      for (const [name, u] of upstreams) out[name] = u.snapshot()
      return out
    },
    upstream: (name) => upstreams.get(name),
    cacheStats() {
      const total: Record<string, number> = {}
      for (const c of caches) for (const [k, v] of Object.entries(c.stats())) total[k] = (total[k] ?? 0) + v
      return total
    },
    async forgetRoutes(prefix = '') {
      return discovery ? discovery.forget(prefix) : 0
    },
    discoveryStats: () => (discovery ? { ...discovery.stats() } : undefined),
    async purgeCache(prefix = '') {
      let n = 0
      for (const c of caches) n += await c.purgePrefix(prefix)
      return n
    },
  }
  return gateway
}

const ROUTE_KEY = 'switchboard.route'

function defaultLogger(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })
  if (level === 'info') console.log(line)
  else console.error(line)
}

function sendError(res: ServerResponse, err: GatewayError): void {
  // A malformed request says nothing good about the rest of this connection's bytes.
  if (err.status === 400 || err.status === 408 || err.status === 413) res.shouldKeepAlive = false
  const text = err.toBody()
  res.writeHead(err.status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function writeRawError(socket: Duplex, err: GatewayError): void {
  if (socket.writable) {
    const text = err.toBody()
    socket.write(
      `HTTP/1.1 ${err.status} ${err.message}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    )
  }
  socket.destroy()
}

function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset or a half-sent request after the response started: nothing to answer.
  if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
    socket.destroy()
    return
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') return writeRawError(socket, new HeadersTooLargeError())
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return writeRawError(socket, new RequestTimeoutError())
  writeRawError(socket, new BadRequestError())
}

/** Arms the request-body idle timer: silence longer than `ms` while the body arrives → 408 and close. */
function watchBodyIdle(req: IncomingMessage, res: ServerResponse, ms: number): void {
  const socket = req.socket
  const onTimeout = (): void => {
    if (req.complete) return
    if (!res.headersSent) {
      res.shouldKeepAlive = false
      sendError(res, new RequestTimeoutError({ message: 'Request body idle timeout' }))
    }
    socket.destroy()
  }
  socket.setTimeout(ms, onTimeout)
  req.once('end', () => socket.setTimeout(0, onTimeout))
  req.once('close', () => socket.setTimeout(0, onTimeout))
}

/** The request target split for routing, or the reason it must be refused with 400. */
function parseTarget(raw: string): { target: string; path: string; query: string; normalized: string } | string {
  let target = raw
  if (raw.charCodeAt(0) !== 47 /* / */) {
    // RFC 9112 §3.2.2: accept absolute-form, but never connect to the host it names.
    const origin = absoluteFormPath(raw)
    if (origin === undefined) return 'Invalid request target'
    target = origin
  }
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const normalized = normalizePath(path)
  if (normalized === undefined) return 'Invalid request path'
  return { target, path, query: q === -1 ? '' : target.slice(q), normalized }
}

/**
 * A response written straight onto an upgrade socket (no parser owns it any more); once it is
 * finished, the socket closes when `closeAfter()` says so.
 */
function responseOnSocket(req: IncomingMessage, socket: Duplex, closeAfter: () => boolean): ServerResponse {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as Socket)
  res.once('finish', () => {
    if (!closeAfter()) return
    res.detachSocket(socket as Socket)
    socket.end()
  })
  return res
}

/** Origin-form path of an absolute-form target (`http://h/p?q` → `/p?q`), or undefined when invalid. */
function absoluteFormPath(raw: string): string | undefined {
  const m = /^https?:\/\/[^/?#\s]+([/?][^#\s]*)?$/i.exec(raw)
  if (!m) return undefined
  const rest = m[1] ?? '/'
  return rest.startsWith('?') ? `/${rest}` : rest
}

function hasDuplicateHost(raw: string[]): boolean {
  let seen = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true
      seen = true
    }
  }
  return false
}

function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    return undefined
  }
}

function rewriteTarget(target: string, rewrite: NonNullable<RouteConfig['rewrite']>): string {
  let out = target
  const strip = rewrite.stripPrefix
  if (strip && (out === strip || out.startsWith(strip.endsWith('/') ? strip : `${strip}/`) || out.startsWith(`${strip}?`))) {
    out = out.slice(strip.endsWith('/') ? strip.length - 1 : strip.length)
    if (!out.startsWith('/')) out = `/${out}`
  }
  if (rewrite.addPrefix) out = rewrite.addPrefix.replace(/\/$/, '') + out
  return out
}

function requestHeaderEdits(route: RouteConfig): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const name of route.requestHeaders?.remove ?? []) out[name] = undefined
  Object.assign(out, route.requestHeaders?.set)
  return out
}

function routeHeaderLayer(route: RouteConfig): Middleware | undefined {
  if (!route.requestHeaders && !route.responseHeaders) return undefined
  const upstreamEdits = route.requestHeaders ? requestHeaderEdits(route) : undefined
  const responseSet = route.responseHeaders?.set
  const responseRemove = route.responseHeaders?.remove ?? []
  return async function routeHeaders(ex, next) {
    if (upstreamEdits) Object.assign(ex.upstreamHeaders, upstreamEdits)
    if (responseSet && Object.keys(responseSet).length > 0) Object.assign(ex.responseHeaders, responseSet)
    if (responseRemove.length > 0) {
      ex.onResponseHead((_status, headers) => {
        for (const name of responseRemove) delete headers[name]
      })
    }
    await next()
  }
}
