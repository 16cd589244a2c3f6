import type { Balancer } from '@switchboard/core'
import { createBalancer, createEndpoint, type EndpointState } from '@switchboard/balancer'
import { createHealthChecker, type HealthChangeEvent, type HealthChecker } from '@switchboard/health-checker'
import { createUpstreamPool, type UpstreamPool } from '@switchboard/proxy-pass'
import type { UpstreamConfig } from './config.ts'

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
  readonly #pools = new Map<EndpointState, UpstreamPool>()

  constructor(config: UpstreamConfig, log: UpstreamLog) {
    this.name = config.name
    this.config = config
    this.endpoints = config.targets.map((t) =>
      createEndpoint({ url: t.url, weight: t.weight, priority: t.priority }),
    )
    this.balancer = createBalancer(config.balancer)
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
          onConnect: () => ep.connectionOpened(),
          onDisconnect: () => ep.connectionClosed(),
        }),
      )
    }
  }

  /** Starts active health checks (when configured). */
  start(): void {
    if (this.config.healthCheck) this.checker.start()
  }

  /** Healthy endpoints; the same array object while the healthy set does not change. */
  candidates(): EndpointState[] {
    return this.checker.healthy()
  }

  pool(endpoint: EndpointState): UpstreamPool {
    const pool = this.#pools.get(endpoint)
    if (!pool) throw new Error(`no pool for ${endpoint.url}`)
    return pool
  }

  /** Stops health checks and closes every pool (in-flight requests finish first). */
  async close(): Promise<void> {
    await this.checker.stop()
    await Promise.all([...this.#pools.values()].map((p) => p.close()))
  }

  /** A JSON snapshot of every endpoint's stats. */
  snapshot(): Record<string, unknown>[] {
    return this.endpoints.map((ep) => ep.toJSON())
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
