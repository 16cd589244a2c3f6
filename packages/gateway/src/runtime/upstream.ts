import { type Balancer, PoolSaturatedError } from '@switchboard/core'
import { createEndpoint, type EndpointState } from '@switchboard/balancer'
import { createEngineStatsScraper, createHealthChecker, type EngineStatsScraper, type HealthChangeEvent, type HealthChecker } from '@switchboard/health-checker'
import { createUpstreamPool, type UpstreamPool } from '@switchboard/proxy-pass'
import type { GatewayRegistry } from '../registry.ts'
import type { RetryConfig, UpstreamConfig } from '../config/types.ts'
import { shorthandRetry } from '../config/upstreams.ts'
import { CircuitBreakers, RetryBudget } from '../upstream/resilience.ts'
import { tlsProbeFetch } from '../transport/tls.ts'

/** Receives health changes and other upstream events. */
export type UpstreamLog = (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void

/**
 * One configured upstream at run time: its endpoints with live stats, a pool per endpoint, the
 * balancer and the health checker.
 */
export class UpstreamRuntime {
  readonly name: string
  readonly config: UpstreamConfig
  readonly endpoints: EndpointState[]
  readonly balancer: Balancer
  readonly checker: HealthChecker
  /** Scrapes the engines' `/metrics` into `endpoint.engine`, when `engineStats:` is set. */
  readonly engineStats: EngineStatsScraper | undefined
  /** Per-endpoint circuit breakers, when `circuitBreaker:` is set. */
  readonly breakers: CircuitBreakers | undefined
  /** Hedged requests of routes on this upstream: hedges sent, and how many of them won. */
  readonly hedges: { sent: number; won: number } = { sent: 0, won: 0 }
  /** The retry rule in force (`retry:` or the `retries: N` shorthand). */
  readonly retry: RetryConfig
  /** The retry budget, when `retry.budget` is in force. */
  readonly budget: RetryBudget | undefined
  /** The config serialised: equal keys mean a reload can keep this upstream (pools, health, stats). */
  readonly key: string
  /** `Host` sent to each endpoint, when `host:` is not `preserve`. */
  readonly #hosts: Map<EndpointState, string> | undefined
  readonly #pools = new Map<EndpointState, UpstreamPool>()
  #started = false
  #closed: Promise<void> | undefined

  constructor(config: UpstreamConfig, log: UpstreamLog, registry: GatewayRegistry) {
    this.name = config.name
    this.config = config
    this.key = JSON.stringify(config)
    this.endpoints = config.targets.map((t) =>
      createEndpoint({ url: t.url, weight: t.weight, priority: t.priority }),
    )
    this.balancer = withRetryAfter(registry.createBalancer(config.balancer.strategy, config.balancer.options))
    const es = config.engineStats
    this.engineStats =
      es &&
      createEngineStatsScraper({
        endpoints: this.endpoints,
        path: es.path,
        intervalMs: es.intervalMs,
        timeoutMs: es.timeoutMs,
        format: es.format,
        onUpdate: (endpoint, report) => {
          if (report.missing.length > 0 || !report.ok)
            log('warn', `upstream ${this.name}: engine stats of ${endpoint.url} are stale`, { upstream: this.name, endpoint: endpoint.url, error: report.error, missing: report.missing })
        },
      })
    const hc = config.healthCheck
    const od = config.outlierDetection
    this.checker = createHealthChecker({
      endpoints: this.endpoints,
      active: hc && {
        path: hc.path,
        method: hc.method,
        intervalMs: hc.intervalMs,
        timeoutMs: hc.timeoutMs,
        healthyThreshold: hc.healthyThreshold,
        unhealthyThreshold: hc.unhealthyThreshold,
        expectStatus: hc.expectStatus,
      },
      passive: od && {
        consecutiveFailures: od.consecutiveFailures,
        failureRate: od.failureRate,
        minRequests: od.minRequests,
        windowMs: od.windowMs,
        baseEjectionMs: od.baseEjectionMs,
        maxEjectionMs: od.maxEjectionMs,
        maxEjectedPercent: od.maxEjectedPercent,
      },
      slowStartMs: config.slowStartMs,
      // Probes to https: targets trust the same CA and send the same SNI name as the pool.
      fetch: config.tls && tlsProbeFetch(config.tls),
      onChange: (event: HealthChangeEvent) =>
        log(event.healthy ? 'info' : 'warn', `upstream ${this.name}: ${event.endpoint.url} is ${event.healthy ? 'healthy' : 'unhealthy'}`, {
          upstream: this.name,
          endpoint: event.endpoint.url,
          healthy: event.healthy,
          reason: event.reason,
          source: event.source,
        }),
    })
    const host = config.host ?? 'preserve'
    this.#hosts = host === 'preserve' ? undefined : new Map(this.endpoints.map((ep) => [ep, host === 'upstream' ? new URL(ep.url).host : host.literal]))
    this.retry = config.retry ?? shorthandRetry(config.retries)
    this.budget = this.retry.budget && new RetryBudget(this.retry.budget)
    this.breakers =
      config.circuitBreaker &&
      new CircuitBreakers(config.circuitBreaker, (endpoint, from, to, reason) =>
        log(to === 'open' ? 'warn' : 'info', `upstream ${this.name}: circuit of ${endpoint.url} ${from} → ${to} (${reason})`, {
          upstream: this.name,
          endpoint: endpoint.url,
          circuit: to,
          from,
          reason,
        }),
      )
    for (const ep of this.endpoints) {
      this.#pools.set(
        ep,
        createUpstreamPool(originOf(ep.url), {
          connectTimeoutMs: config.timeouts.connectMs,
          connections: config.pool.connections,
          queueTimeoutMs: config.pool.queueTimeoutMs,
          onConnect: () => ep.connectionOpened(),
          onDisconnect: () => ep.connectionClosed(),
          tls: config.tls,
        }),
      )
    }
  }

  /** The `Host` to send to `endpoint`, or undefined to keep the client's (`host: preserve`). */
  hostFor(endpoint: EndpointState): string | undefined {
    return this.#hosts?.get(endpoint)
  }

  /**
   * The request's upstream header edits plus what this upstream adds for `endpoint`: its `Host`
   * (unless a layer set one) and its `defaultHeaders` (unless the client or a layer set them).
   * Returns `edits` itself when there is nothing to add (the hot path allocates nothing).
   */
  editsFor(endpoint: EndpointState, edits: Record<string, string | undefined> | undefined, clientHeaders: Record<string, unknown>): Record<string, string | undefined> | undefined {
    const host = this.#hosts?.get(endpoint)
    const defaults = this.config.defaultHeaders
    if (host === undefined && defaults === undefined) return edits
    const out: Record<string, string | undefined> = { ...edits }
    if (host !== undefined && !('host' in out)) out.host = host
    if (defaults) for (const name in defaults) if (clientHeaders[name] === undefined && !(name in out)) out[name] = defaults[name]
    return out
  }

  /** Starts active health checks (when configured). */
  start(): void {
    if (this.#started) return
    this.#started = true
    if (this.config.healthCheck) this.checker.start()
    this.engineStats?.start()
  }

  /** Healthy endpoints; the same array object while the healthy set does not change. */
  candidates(): EndpointState[] {
    return this.checker.healthy() as EndpointState[]
  }

  pool(endpoint: EndpointState): UpstreamPool {
    const pool = this.#pools.get(endpoint)
    if (!pool) throw new Error(`no pool for ${endpoint.url}`)
    return pool
  }

  /** Stops health checks and closes every pool (in-flight requests finish first). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([this.checker.stop(), this.engineStats?.stop()])
      await Promise.all([...this.#pools.values()].map((p) => p.close()))
    })()
    return this.#closed
  }

  /** Open connections over every endpoint's pool (reload tests use it to prove pools were kept). */
  get openConnections(): number {
    let n = 0
    for (const ep of this.endpoints) n += ep.openConnections
    return n
  }

  /** A JSON snapshot of every endpoint's stats. */
  snapshot(): Record<string, unknown>[] {
    return this.endpoints.map((ep) => {
      const pool = this.#pools.get(ep)
      const out: Record<string, unknown> = { ...ep.toJSON(), pool: pool ? { ...pool.stats(), saturated: pool.saturated } : undefined }
      if (this.breakers) out.circuit = this.breakers.snapshot(ep)
      return out
    })
  }

  /** Every endpoint's circuit (empty when breakers are off) and the retry budget's counters. */
  breakerSnapshot(): { circuits: unknown[]; budget: Record<string, number> | undefined; hedges: { sent: number; won: number } } {
    return { circuits: this.breakers ? this.endpoints.map((ep) => this.breakers!.snapshot(ep)) : [], budget: this.budget?.toJSON(), hedges: { ...this.hedges } }
  }

  /** Endpoints whose connection pool is full right now (every connection busy). */
  saturatedCount(): number {
    let n = 0
    for (const pool of this.#pools.values()) if (pool.saturated) n++
    return n
  }
}

/**
 * A balancer whose `PoolSaturatedError` also puts `Retry-After` on the client's answer: the
 * request a balancer sees is the exchange, whose `responseHeaders` the error response carries.
 */
function withRetryAfter(balancer: Balancer): Balancer {
  if (!balancer.needsBody && balancer.name !== 'score') return balancer
  const wrapped: Balancer = {
    name: balancer.name,
    needsBody: balancer.needsBody,
    pick(candidates, request) {
      try {
        return balancer.pick(candidates, request)
      } catch (err) {
        const out = (request as { responseHeaders?: Record<string, string> }).responseHeaders
        if (err instanceof PoolSaturatedError && out) Object.assign(out, err.headers)
        throw err
      }
    },
  }
  if (balancer.responseHeaders) wrapped.responseHeaders = (endpoint, request) => balancer.responseHeaders!(endpoint, request)
  return wrapped
}

/** `http://host:port` of a target URL that may carry a path prefix. */
export function originOf(url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2)
  return i === -1 ? url : url.slice(0, i)
}

/** The path prefix of a target URL (`''` when none). */
export function basePathOf(url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2)
  return i === -1 ? '' : url.slice(i)
}
