import { createIpMatcher, type Exchange, type Middleware, type Store, type UpstreamResponse } from '@switchboard/core'
import { createMatcher, type Matcher } from '@switchboard/matcher'
import { createDiscovery, type Discovery, type StatusPattern } from '@switchboard/discovery'
import { createHttpCache, type HttpCache } from '@switchboard/cache'
import { headers, rewrite } from '@switchboard/policies'
import type { GatewayConfig, RouteConfig, StoreConfig, UpstreamConfig } from '../config/types.ts'
import { DEFAULT_POOL } from '../config/upstreams.ts'
import type { GatewayRegistry, LifecycleHooks, ReloadSummary } from '../registry.ts'
import { createDocs, type DocsHandler } from '../docs/index.ts'
import { AccessPlan } from './access.ts'
import { UpstreamRuntime } from './upstream.ts'

/** Log sink: one structured line per event. */
export type GatewayLogger = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void

/** One route at run time: its config, its upstream, and its policy layers in order. */
export interface RouteRuntime {
  readonly config: RouteConfig
  readonly upstream: UpstreamRuntime
  readonly layers: readonly Middleware[]
  /** True when the route authenticates (its own or the server's auth policies, and not `public`). */
  readonly protected: boolean
}

/** What building a runtime needs besides the config. */
export interface RuntimeDeps {
  readonly registry: GatewayRegistry
  readonly logger: GatewayLogger
  /** A store given by the embedder: used instead of `config.store`, never closed by the gateway. */
  readonly store?: Store
  /** Layers run on every route before its own (GatewayOptions.policies). */
  readonly routePolicies?: readonly Middleware[]
  /** Sends a discovery probe to one endpoint of the discovery upstream (the transport's upstream call). */
  readonly probe: (upstream: UpstreamRuntime, ex: Exchange, url: string, body: Uint8Array | undefined) => Promise<UpstreamResponse>
}

/** Name of the upstream that holds the discovery endpoints (not a valid config name, so no clash). */
export const DISCOVERY_UPSTREAM = '(discovery)'

/**
 * Everything one validated config builds: matcher, routes, upstreams, policies, stores, caches and
 * discovery. Immutable once built; the gateway swaps whole runtimes on reload. A request keeps the
 * runtime it started on (`active` counts them), and a retired runtime closes what its successor
 * does not reuse once its last request finished.
 */
export class Runtime {
  readonly config: GatewayConfig
  readonly registry: GatewayRegistry
  readonly matcher: Matcher<RouteRuntime>
  readonly routes: ReadonlyMap<string, RouteRuntime>
  readonly upstreams: ReadonlyMap<string, UpstreamRuntime>
  readonly caches: readonly HttpCache[]
  readonly serverPolicies: readonly Middleware[]
  readonly hooks: readonly LifecycleHooks[]
  readonly store: Store
  readonly discovery: { readonly discovery: Discovery; readonly upstream: UpstreamRuntime; readonly store: Store } | undefined
  /** True for addresses in `server.trustedProxies`; undefined when none are configured. */
  readonly trusted: ((ip: string) => boolean) | undefined
  /** Where authentication goes, and which identity headers clients may not send. */
  readonly access: AccessPlan
  /** The server's authentication for requests no route claims (401 before 404), when it has auth policies. */
  readonly unmatchedAuth: Middleware | undefined
  /** True when some routes authenticate and others do not (path-variant checks are needed then). */
  readonly mixedAccess: boolean
  /** Layers of `proxy.policies`, run for tenant requests (`clients:`) once the client is known. */
  readonly tenantLayers: readonly Middleware[]
  /** `/docs` and `/openapi.json`, when `docs:` is set. */
  readonly docs: DocsHandler | undefined
  /** Requests started on this runtime and not finished. */
  active = 0
  readonly #ownsStore: boolean
  #idle: (() => void) | undefined

  private constructor(init: {
    config: GatewayConfig
    registry: GatewayRegistry
    matcher: Matcher<RouteRuntime>
    routes: Map<string, RouteRuntime>
    upstreams: Map<string, UpstreamRuntime>
    caches: HttpCache[]
    serverPolicies: Middleware[]
    store: Store
    ownsStore: boolean
    discovery: Runtime['discovery']
    access: AccessPlan
    tenantLayers: Middleware[]
  }) {
    this.config = init.config
    this.registry = init.registry
    this.matcher = init.matcher
    this.routes = init.routes
    this.upstreams = init.upstreams
    this.caches = init.caches
    this.serverPolicies = init.serverPolicies
    this.hooks = init.registry.hooks
    this.store = init.store
    this.#ownsStore = init.ownsStore
    this.discovery = init.discovery
    this.access = init.access
    this.tenantLayers = init.tenantLayers
    this.docs = init.config.docs ? createDocs(init.config) : undefined
    const serverAuth = init.access.serverAuthenticators
    this.unmatchedAuth = serverAuth.length > 0 ? init.access.layer(serverAuth) : undefined
    const kinds = new Set([...init.routes.values()].map((r) => r.protected))
    this.mixedAccess = kinds.size > 1 || (kinds.has(true) && init.discovery !== undefined)
    const proxies = init.config.server.trustedProxies
    this.trusted = proxies.length > 0 ? createIpMatcher(proxies) : undefined
  }

  /**
   * The client's address: the socket peer, or, when the peer is a trusted proxy, the nearest
   * `X-Forwarded-For` entry that is not itself a trusted proxy (read right to left, so a client
   * cannot prepend a fake address).
   */
  clientIp(peer: string, forwardedFor: string | string[] | undefined): string {
    const trusted = this.trusted
    if (!trusted || forwardedFor === undefined || !trusted(peer)) return peer
    const list = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',')
    for (let i = list.length - 1; i >= 0; i--) {
      const ip = list[i].trim()
      if (ip === '') continue
      if (!trusted(ip)) return ip
    }
    return list[0]?.trim() || peer
  }

  /**
   * Builds a runtime. With `previous`, upstreams whose config did not change are taken over with
   * their pools, health state and stats, and so are stores whose config did not change.
   */
  static async build(config: GatewayConfig, deps: RuntimeDeps, previous?: Runtime): Promise<Runtime> {
    const { registry, logger } = deps
    const sameStore = previous && JSON.stringify(previous.config.store) === JSON.stringify(config.store)
    const store = deps.store ?? (sameStore ? previous.store : await registry.createStore(config.store))
    const context = (name: string) => ({ name, log: logger, store })
    const policy = (name: string): Middleware => {
      const instance = config.policies[name]
      return registry.policy(instance.use)!.create(instance.options, context(name))
    }
    const access = new AccessPlan(config, registry, logger, context)
    const upstreams = new Map<string, UpstreamRuntime>()
    const log = (level: 'info' | 'warn', message: string, fields: Record<string, unknown>): void => logger(level, message, fields)
    for (const name of Object.keys(config.upstreams)) {
      const u = config.upstreams[name]
      const old = previous?.upstreams.get(name)
      upstreams.set(name, old && old.key === JSON.stringify(u) ? old : new UpstreamRuntime(u, log, registry))
    }
    const caches: HttpCache[] = []
    const routes = new Map<string, RouteRuntime>()
    for (const route of config.routes) {
      const authenticators = access.routeAuthenticators(route)
      const layers: Middleware[] = [...(deps.routePolicies ?? [])]
      for (const name of access.order(route)) layers.push(name === null ? access.layer(authenticators) : policy(name))
      // Shorthand keys are the built-in policies, run after the named ones.
      if (route.requestHeaders || route.responseHeaders) layers.push(headers({ request: route.requestHeaders, response: route.responseHeaders }))
      if (route.rewrite) layers.push(rewrite(route.rewrite))
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
      routes.set(route.name, { config: route, upstream: upstreams.get(route.upstream)!, layers, protected: authenticators.length > 0 })
    }
    const matcher = createMatcher(
      config.routes.map((r) => ({ name: r.name, priority: r.priority, match: { ...r.match }, data: routes.get(r.name)! })),
    )
    const discovery = config.discovery ? await buildDiscovery(config, deps, store, previous, log) : undefined
    const runtime = new Runtime({
      config,
      registry,
      matcher,
      routes,
      upstreams,
      caches,
      serverPolicies: config.server.policies.filter((n) => !access.isAuth(n)).map(policy),
      store,
      ownsStore: deps.store === undefined,
      discovery,
      access,
      tenantLayers: (config.proxy?.policies ?? []).map(policy),
    })
    for (const u of runtime.allUpstreams()) u.start()
    return runtime
  }

  /** Upstreams including the discovery one. */
  *allUpstreams(): Iterable<UpstreamRuntime> {
    yield* this.upstreams.values()
    if (this.discovery) yield this.discovery.upstream
  }

  /** Marks one request started on this runtime. */
  enter(): void {
    this.active++
  }

  /** Marks one request finished. */
  leave(): void {
    if (--this.active === 0 && this.#idle) this.#idle()
  }

  /**
   * Waits until no request uses this runtime (or `deadline` passes), then closes the upstreams,
   * stores and discovery pools that `next` did not take over (everything when `next` is undefined).
   */
  async retire(next: Runtime | undefined, deadline: number): Promise<void> {
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        this.#idle = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    const kept = new Set(next ? [...next.allUpstreams()] : [])
    await Promise.all([...this.allUpstreams()].filter((u) => !kept.has(u)).map((u) => u.close()))
    const d = this.discovery
    if (d && d.store !== this.store && d.store !== next?.discovery?.store) await d.store.close()
    if (this.#ownsStore && this.store !== next?.store) await this.store.close()
  }

  /** What changed from `previous` to this runtime, by name, with a one-line summary. */
  diff(previous: Runtime): ReloadSummary {
    const added: string[] = []
    const removed: string[] = []
    const changed: string[] = []
    const compare = (kind: string, before: Record<string, unknown>, after: Record<string, unknown>): void => {
      for (const name of Object.keys(after)) {
        if (!Object.hasOwn(before, name)) added.push(`${kind} ${name}`)
        else if (JSON.stringify(before[name]) !== JSON.stringify(after[name])) changed.push(`${kind} ${name}`)
      }
      for (const name of Object.keys(before)) if (!Object.hasOwn(after, name)) removed.push(`${kind} ${name}`)
    }
    const byName = <T extends { name: string }>(list: T[]): Record<string, T> => Object.fromEntries(list.map((x) => [x.name, x]))
    compare('upstream', previous.config.upstreams, this.config.upstreams)
    compare('route', byName(previous.config.routes), byName(this.config.routes))
    compare('policy', previous.config.policies, this.config.policies)
    const other = ['server', 'store', 'admin', 'discovery', 'plugins'] as const
    for (const key of other) {
      if (JSON.stringify(previous.config[key]) !== JSON.stringify(this.config[key])) changed.push(key)
    }
    const parts = [...added.map((x) => `+${x}`), ...changed.map((x) => `~${x}`), ...removed.map((x) => `-${x}`)]
    return { added, removed, changed, line: `reload: ${parts.length ? parts.join(', ') : 'no changes'}` }
  }
}

async function buildDiscovery(
  config: GatewayConfig,
  deps: RuntimeDeps,
  store: Store,
  previous: Runtime | undefined,
  log: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void,
): Promise<Runtime['discovery']> {
  const d = config.discovery!
  // Remembered routes must survive restarts: without a persistent store configured, use SQLite.
  const spec: StoreConfig | undefined =
    d.store ?? (config.store.driver === 'memory' && !deps.store ? { driver: 'sqlite', path: './switchboard-routes.db' } : undefined)
  const old = previous?.discovery
  const sameSpec = old && JSON.stringify(previous.config.discovery?.store ?? null) === JSON.stringify(d.store ?? null) && JSON.stringify(previous.config.store) === JSON.stringify(config.store)
  const discoveryStore = spec ? (sameSpec ? old.store : await deps.registry.createStore(spec)) : store
  // The discovery endpoints are an upstream like any other: pools, stats and passive health.
  const upstreamConfig: UpstreamConfig = {
    name: DISCOVERY_UPSTREAM,
    balancer: { strategy: 'first-available', options: {} },
    targets: d.endpoints.map((url) => ({ url, weight: 1, priority: 0 })),
    timeouts: d.timeouts,
    healthCheck: undefined,
    outlierDetection: undefined,
    slowStartMs: 0,
    retries: 0,
    pool: DEFAULT_POOL,
  }
  const key = JSON.stringify(upstreamConfig)
  const upstream = old && old.upstream.key === key ? old.upstream : new UpstreamRuntime(upstreamConfig, log, deps.registry)
  const discovery = createDiscovery({
    endpoints: d.endpoints,
    store: discoveryStore,
    ttlMs: d.rememberTtlMs,
    maxBodyBytes: config.server.limits.maxBodyBytes,
    keyHeaders: d.keyHeaders,
    successStatuses: d.successStatuses as StatusPattern[],
    replay: d.replay,
    keyQuery: d.keyQuery,
    maxEntries: d.maxEntries,
    transport: { send: (ex, url, body) => deps.probe(upstream, ex, url, body) },
    onEvent: (e) => {
      if (e.type === 'remembered' || e.type === 'forgotten') {
        deps.logger('info', `discovery: ${e.type} ${e.key}`, { endpoint: e.endpoint, reason: e.reason })
      }
    },
  })
  return { discovery, upstream, store: discoveryStore }
}
