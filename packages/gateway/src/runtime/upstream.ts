import type { Balancer } from '@switchboard/core'
import { createEndpoint, type EndpointState } from '@switchboard/balancer'
import { createHealthChecker, type HealthChangeEvent, type HealthChecker } from '@switchboard/health-checker'
import { createUpstreamPool, type UpstreamPool } from '@switchboard/proxy-pass'
import type { GatewayRegistry } from '../registry.ts'
import type { UpstreamConfig } from '../config/types.ts'

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
  /** The config serialised: equal keys mean a reload can keep this upstream (pools, health, stats). */
  readonly key: string
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
    this.balancer = registry.createBalancer(config.balancer.strategy, config.balancer.options)
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
      onChange: (event: HealthChangeEvent) =>
        log(event.healthy ? 'info' : 'warn', `upstream ${this.name}: ${event.endpoint.url} is ${event.healthy ? 'healthy' : 'unhealthy'}`, {
          upstream: this.name,
          endpoint: event.endpoint.url,
          healthy: event.healthy,
          reason: event.reason,
          source: event.source,
        }),
    })
    for (const ep of this.endpoints) {
      this.#pools.set(
        ep,
        createUpstreamPool(originOf(ep.url), {
          connectTimeoutMs: config.timeouts.connectMs,
          connections: config.pool.connections,
          queueTimeoutMs: config.pool.queueTimeoutMs,
          onConnect: () => ep.connectionOpened(),
          onDisconnect: () => ep.connectionClosed(),
        }),
      )
    }
  }

  /** Starts active health checks (when configured). */
  start(): void {
    if (this.#started) return
    this.#started = true
    if (this.config.healthCheck) this.checker.start()
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
      await this.checker.stop()
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
      return { ...ep.toJSON(), pool: pool ? { ...pool.stats(), saturated: pool.saturated } : undefined }
    })
  }

  /** Endpoints whose connection pool is full right now (every connection busy). */
  saturatedCount(): number {
    let n = 0
    for (const pool of this.#pools.values()) if (pool.saturated) n++
    return n
  }
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
