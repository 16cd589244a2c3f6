import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Middleware, Store } from '@switchboard/core'
import { maintenanceSwitch } from '@switchboard/policies'
import { createTunnelGroup } from '@switchboard/websocket-tunnel'
import { type AdminActions, handleAdmin, sendMetrics } from './admin/admin.ts'
import { createDashboard } from './admin/dashboard/index.ts'
import { buildStats, explain } from './admin/insight.ts'
import { type AdminListener, createAdminListener } from './admin/listener.ts'
import { Observer } from './observe/observer.ts'
import type { FleetAdmin } from './cluster/worker.ts'
import type { LoadedConfig } from './config/load.ts'
import type { GatewayConfig } from './config/types.ts'
import { buildPipeline, type Pipeline } from './pipeline/pipeline.ts'
import { probeEndpoint } from './pipeline/terminals.ts'
import { GatewayRegistry, type ReloadSummary } from './registry.ts'
import { type GatewayLogger, Runtime } from './runtime/runtime.ts'
import type { UpstreamRuntime } from './runtime/upstream.ts'
import { createNodeTransport, type NodeTransport } from './transport/node.ts'
import type { NodeExchange } from './transport/node-exchange.ts'
import type { GatewayExchange } from './transport/exchange.ts'
import { createNativeTransport, type NativeTransport } from './transport/native.ts'
import { nativeCaveats, resolveTransport, RUNTIME } from './transport/select.ts'

export type { GatewayLogger } from './runtime/runtime.ts'

/** Options of {@link createGateway} beyond the config file. */
export interface GatewayOptions {
  /** Extra layers run on every route before the route's own (auth, rate limits, ...). */
  policies?: Middleware[]
  /** Log sink. @default JSON lines on stderr for warn/error, stdout for info */
  logger?: GatewayLogger
  /** Use this store instead of the one `config.store` names (tests, embedding). */
  store?: Store
  /** Balancers, policy types and hooks the config may use (plugins loaded into it). @default the built-ins */
  registry?: GatewayRegistry
  /** Where `reload()` without an argument (SIGHUP, `POST /admin/reload`) reads the new config from. */
  source?: () => Promise<LoadedConfig>
  /** Set in a `server.workers` fleet worker: the admin API answers for every worker (cluster/worker.ts). */
  fleet?: FleetAdmin
}

/** A running (or ready to run) gateway. */
export interface Gateway {
  /** The validated config in force (changes on reload). */
  readonly config: GatewayConfig
  /**
   * The `node:http` server (created by the gateway). On the native transport there is none: reading
   * it throws (use {@link Gateway.address} and {@link Gateway.transport}).
   */
  readonly server: Server
  /** The transport serving requests: `node` (`node:http`) or `native` (`Bun.serve` / `Deno.serve`). */
  readonly transport: 'node' | 'native'
  /** The main listener's address once `listen()` resolved. */
  address(): AddressInfo | undefined
  /** The store shared by everything that keeps state (of the config in force). */
  readonly store: Store
  /** Starts listening on `config.server.host`/`port` (or the given port). */
  listen(port?: number, host?: string): Promise<AddressInfo>
  /**
   * Swaps in a new config atomically: requests in flight finish on the old one, the next request
   * (keep-alive connections included) uses the new one; unchanged upstreams keep their pools,
   * health and stats. Without an argument the `source` option is read. A config that fails to
   * build is refused (the promise rejects) and the old one keeps serving.
   */
  reload(next?: LoadedConfig | GatewayConfig): Promise<ReloadSummary>
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
  /** Metrics, the access log and recent errors (one per gateway; counters survive reloads). */
  readonly observer: Observer
  /** Where the admin listener (`admin.listen`) listens, once `listen()` started it. */
  readonly adminAddress: AddressInfo | undefined
}

/**
 * Builds a gateway from a validated config: an immutable runtime (matcher, routes, upstreams,
 * policies, stores) behind a hardened `node:http` server, swapped whole on reload.
 * @example
 * const gw = await createGateway(loadConfigText(yaml))
 * await gw.listen()
 */
export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? defaultLogger
  let closing = false
  let started = false
  let closePromise: Promise<void> | undefined
  let reloading: Promise<ReloadSummary> | undefined
  const deps = (registry: GatewayRegistry) => ({ registry, logger, store: options.store, routePolicies: options.policies, probe: probeEndpoint })
  let current: { runtime: Runtime; pipeline: Pipeline }
  const tunnels = createTunnelGroup()
  const observer = new Observer(config.logs.access, logger, { runtime: () => current.runtime, tunnelsOpen: () => transport.tunnels.size })
  // Built on first use: a gateway without an admin never reads the dashboard's files.
  let dashboard: ReturnType<typeof createDashboard> | undefined
  let adminListener: AdminListener | undefined
  let adminAddress: AddressInfo | undefined
  const ctx = {
    tunnels,
    logger,
    closing: () => closing,
    admin: (ex: NodeExchange, sub: string) =>
      options.fleet ? options.fleet.admin(ex, sub, current.runtime.config.admin!, adminActions) : handleAdmin(ex, sub, current.runtime.config.admin!, adminActions),
    onTunnel: (socket: import('node:net').Socket) => transport.trackTunnel(socket),
    metrics: (ex: NodeExchange) => (options.fleet ? options.fleet.metrics(ex) : sendMetrics(ex, adminActions)),
  }
  const install = (runtime: Runtime): void => {
    current = { runtime, pipeline: buildPipeline(runtime, ctx) }
  }
  install(await Runtime.build(config, deps(options.registry ?? new GatewayRegistry())))

  // `server.transport` (read at start): node:http, or Bun.serve / Deno.serve; `native` with a config
  // it cannot serve throws here, naming the key.
  const choice = resolveTransport(config.server.transport, config)
  if (config.server.transport === 'auto' && choice.reason && choice.transport === 'node' && !choice.reason.startsWith('Node')) logger('info', `server.transport auto: node:http (${choice.reason})`, {})
  const handler = {
    closing: () => closing,
    clientIp: (req: import('node:http').IncomingMessage) => current.runtime.clientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for']),
    clientIpOf: (peer: string, forwardedFor: string | string[] | undefined) => current.runtime.clientIp(peer, forwardedFor),
    pipeBodies: () => current.runtime.config.server.pipeBodies,
    // Not async: the pipeline's promise is the run's (one promise less per request).
    run(ex: GatewayExchange): Promise<void> {
      const { runtime, pipeline } = current
      runtime.enter()
      const mark = observer.begin(ex)
      ex.onDone(() => {
        runtime.leave()
        observer.done(ex, mark)
      })
      return pipeline(ex)
    },
  }
  const limitsNow = () => current.runtime.config.server.limits
  if (choice.transport === 'native') for (const caveat of nativeCaveats(config)) logger('warn', `server.transport native: ${caveat}`, {})
  if (config.server.pipeBodies && (choice.transport !== 'native' || RUNTIME !== 'bun')) {
    logger('warn', 'server.pipeBodies: only the native transport on Bun pipes bodies; this gateway streams them itself', { transport: choice.transport, runtime: RUNTIME })
  }
  const transport: NodeTransport | NativeTransport =
    choice.transport === 'native' ? createNativeTransport(config.server, limitsNow, handler) : createNodeTransport(config.server, limitsNow, handler)
  const nodeServer = (): Server => {
    if ('server' in transport) return transport.server
    throw new TypeError('gateway.server: this gateway runs on the native transport (server.transport: native); use gateway.address()')
  }

  async function reload(next?: LoadedConfig | GatewayConfig): Promise<ReloadSummary> {
    if (closing) throw new Error('the gateway is shutting down')
    let loaded: LoadedConfig
    if (next === undefined) {
      if (!options.source) throw new Error('no config source to reload from')
      loaded = await options.source()
    } else loaded = 'registry' in next && 'config' in next ? next : { config: next, registry: current.runtime.registry }
    const old = current.runtime
    const listening = old.config.server
    const wanted = loaded.config.server
    if (JSON.stringify(old.config.admin?.listen) !== JSON.stringify(loaded.config.admin?.listen) || JSON.stringify(old.config.logs) !== JSON.stringify(loaded.config.logs)) {
      logger('warn', 'reload: admin.listen and logs changes need a restart; keeping the current ones', {})
    }
    if (wanted.host !== listening.host || wanted.port !== listening.port) {
      // The listening socket is not rebuilt on reload; say so rather than silently ignoring it.
      logger('warn', 'reload: server.host/port changes need a restart; keeping the current address', {})
      loaded.config.server.host = listening.host
      loaded.config.server.port = listening.port
    }
    if ((wanted.tls === undefined) !== (transport.tls === undefined)) {
      // HTTP and HTTPS are different servers: the listening socket would have to be rebuilt.
      throw new Error(`reload refused: turning server.tls ${wanted.tls ? 'on' : 'off'} needs a restart; the current config keeps serving`)
    }
    // Certificates are checked before anything changes and put in force with the new config.
    const commitTls = transport.tls && JSON.stringify(wanted.tls) !== JSON.stringify(transport.tls.config) ? transport.tls.prepare(wanted.tls!) : undefined
    const runtime = await Runtime.build(loaded.config, deps(loaded.registry), old)
    commitTls?.()
    install(runtime)
    const summary = runtime.diff(old)
    // Admin overrides of maintenance instances that no longer exist are dropped.
    maintenanceSwitch.retain(Object.keys(runtime.config.policies))
    logger('info', summary.line, { added: summary.added, removed: summary.removed, changed: summary.changed })
    void old.retire(runtime, Date.now() + runtime.config.server.shutdownTimeoutMs).catch((err) =>
      logger('warn', 'closing the previous config failed', { error: String(err) }),
    )
    for (const h of runtime.hooks) if (h.reload) await safeHook(logger, 'reload', () => h.reload!(summary))
    return summary
  }

  const adminActions: AdminActions = {
    upstreams: () => gateway.upstreamStats(),
    breakers: () => {
      const out: Record<string, unknown> = {}
      for (const u of current.runtime.allUpstreams()) out[u.name] = u.breakerSnapshot()
      return out
    },
    cache: () => gateway.cacheStats(),
    purgeCache: (prefix) => gateway.purgeCache(prefix),
    get forgetRoutes() {
      return current.runtime.discovery ? (prefix: string) => gateway.forgetRoutes(prefix) : undefined
    },
    routes: () =>
      current.runtime.config.routes.map((r) => ({ name: r.name, match: describeMatch(r.match), upstream: r.upstream, policies: r.policies })),
    config: () => redact(current.runtime.config),
    maintenance: () => maintenanceSwitch.list(),
    setMaintenance: (on, policy) => maintenanceSwitch.set(on, policy),
    stats: () => buildStats(observer, current.runtime),
    explain: (input) => explain(current.runtime, input),
    get discovery() {
      const d = current.runtime.discovery
      // The remembered routes (first 500), and the counters.
      return d ? async () => ({ stats: d.discovery.stats(), remembered: await d.discovery.list('', { limit: 500 }) }) : undefined
    },
    metrics: () => ({ contentType: observer.registry.contentType, text: observer.registry.exposition() }),
    usage: () => observer.usage.rows(),
    dashboard: (ex, sub) => (dashboard ??= createDashboard({ apiBase: current.runtime.config.admin?.path ?? '/admin' })).serve(ex, sub),
    reload: options.source
      ? async () => {
          // One reload at a time: a second caller waits for the first one's outcome.
          reloading ??= reload().finally(() => (reloading = undefined))
          try {
            return (await reloading).line
          } catch (err) {
            logger('error', 'POST /admin/reload: reload refused, the previous config keeps serving', { error: (err as Error)?.message ?? String(err) })
            throw err
          }
        }
      : undefined,
  }

  // A fleet worker serves its admin actions to the primary (which owns admin.listen) on a private port.
  if (options.fleet) await options.fleet.attach(adminActions, () => current.runtime.config.admin)

  const gateway: Gateway = {
    get config() {
      return current.runtime.config
    },
    get server() {
      return nodeServer()
    },
    transport: choice.transport,
    address() {
      return 'server' in transport ? ((transport.server.address() as AddressInfo | null) ?? undefined) : transport.address()
    },
    get store() {
      return current.runtime.store
    },
    get inFlight() {
      return transport.inFlight
    },
    observer,
    get adminAddress() {
      return adminAddress
    },
    async listen(port = current.runtime.config.server.port, hostname = current.runtime.config.server.host) {
      const admin = current.runtime.config.admin
      if (admin?.listen && !adminListener && !options.fleet) {
        adminListener = createAdminListener(() => current.runtime.config.admin ?? admin, adminActions, logger)
        adminAddress = await adminListener.listen(admin.listen.host, admin.listen.port)
        if (admin.token === undefined) logger('warn', `admin listener on ${adminAddress.address}:${adminAddress.port} has no admin.token: it answers loopback clients only`, {})
        else logger('info', `admin listener on ${adminAddress.address}:${adminAddress.port}: dashboard at /, JSON under ${admin.path}, Prometheus at /metrics`, {})
      }
      if (!('server' in transport)) {
        const address = await transport.listen(port, hostname)
        started = true
        for (const h of current.runtime.hooks) if (h.startup) await safeHook(logger, 'startup', () => h.startup!({ address: address.address, port: address.port }))
        return address
      }
      const server = transport.server
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, hostname, async () => {
          server.off('error', reject)
          const address = server.address() as AddressInfo
          started = true
          for (const h of current.runtime.hooks) if (h.startup) await safeHook(logger, 'startup', () => h.startup!({ address: address.address, port: address.port }))
          resolve(address)
        })
      })
    },
    reload,
    close() {
      closePromise ??= (async () => {
        closing = true
        const shutdownMs = current.runtime.config.server.shutdownTimeoutMs
        // Frame-mode tunnels get a 1001 close handshake now; transparent ones run until the drain deadline.
        const tunnelsClosed = tunnels.closeAll({ timeoutMs: shutdownMs })
        if (!('server' in transport)) {
          transport.stopAccepting()
          const deadline = Date.now() + shutdownMs
          while (transport.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
          await transport.closeAll()
          await tunnelsClosed
          await adminListener?.close()
          await observer.close()
          if (started) for (const h of current.runtime.hooks) if (h.shutdown) await safeHook(logger, 'shutdown', () => h.shutdown!())
          await current.runtime.retire(undefined, Date.now())
          return
        }
        const server = transport.server
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections?.()
        const deadline = Date.now() + shutdownMs
        while (transport.inFlight > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 25))
          server.closeIdleConnections?.()
        }
        server.closeAllConnections?.()
        await tunnelsClosed
        for (const s of transport.tunnels) s.destroy()
        await stopped
        await adminListener?.close()
        await observer.close()
        if (started) for (const h of current.runtime.hooks) if (h.shutdown) await safeHook(logger, 'shutdown', () => h.shutdown!())
        await current.runtime.retire(undefined, Date.now())
      })()
      return closePromise
    },
    upstreamStats() {
      const out: Record<string, Record<string, unknown>[]> = {}
      for (const u of current.runtime.allUpstreams()) out[u.name] = u.snapshot()
      return out
    },
    upstream: (name) => current.runtime.upstreams.get(name),
    cacheStats() {
      const total: Record<string, number> = {}
      for (const c of current.runtime.caches) for (const [k, v] of Object.entries(c.stats())) total[k] = (total[k] ?? 0) + v
      return total
    },
    async forgetRoutes(prefix = '') {
      const d = current.runtime.discovery
      return d ? d.discovery.forget(prefix) : 0
    },
    discoveryStats: () => {
      const d = current.runtime.discovery
      return d ? { ...d.discovery.stats() } : undefined
    },
    async purgeCache(prefix = '') {
      let n = 0
      for (const c of current.runtime.caches) n += await c.purgePrefix(prefix)
      return n
    },
  }
  return gateway
}

async function safeHook(logger: GatewayLogger, what: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (err) {
    logger('error', `${what} hook failed`, { error: String((err as Error)?.stack ?? err) })
  }
}

function describeMatch(match: GatewayConfig['routes'][number]['match']): Record<string, unknown> {
  return JSON.parse(JSON.stringify(match, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))) as Record<string, unknown>
}

const SECRET_KEY = /token|secret|password|passwd|key|authorization|credential|cookie|hash/i
const TLS_FILE_KEYS = new Set(['certFile', 'keyFile', 'caFile'])
const TLS_PEM_KEYS = new Set(['cert', 'key', 'ca'])
/** Sections whose every value is a secret (their names are not). */
const SECRET_SECTIONS = new Set(['secrets', 'users'])

/**
 * The config as JSON with every value under a secret-looking key replaced, whole subtrees included
 * (`secrets:`, Basic `users:`, `keys: [{ key | hash }]`, a client's `keyHash`): names stay, values go.
 */
function redact(config: GatewayConfig): unknown {
  const hide = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return '(redacted)'
    if (Array.isArray(value)) return value.map(hide)
    return Object.fromEntries(Object.keys(value).map((k) => [k, hide((value as Record<string, unknown>)[k])]))
  }
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => {
      if (value instanceof RegExp) return String(value)
      // TLS (`server.tls`, `upstreams.NAME.tls`): file names stay, PEM texts (certificates and keys) go.
      if (TLS_FILE_KEYS.has(key) && typeof value === 'string') return value
      if (TLS_PEM_KEYS.has(key) && typeof value === 'string' && value.includes('-----BEGIN ')) return undefined
      if (SECRET_SECTIONS.has(key) && typeof value === 'object' && value !== null) return hide(value)
      if (key && SECRET_KEY.test(key) && (typeof value === 'string' || typeof value === 'number')) return '(redacted)'
      return value
    }),
  )
}

function defaultLogger(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })
  if (level === 'info') console.log(line)
  else console.error(line)
}

