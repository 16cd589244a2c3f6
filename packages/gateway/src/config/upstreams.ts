import type { ConfigObject, ConfigValidator } from '@switchboard/core'
import type { GatewayRegistry } from '../registry.ts'
import { parseHeaderMap, parseHostMode } from './clients.ts'
import { parseUpstreamTls } from './tls.ts'
import type { CircuitBreakerConfig, EngineStatsConfig, HealthCheckConfig, OutlierDetectionConfig, PoolConfig, RetryConfig, RetryOn, UpstreamConfig } from './types.ts'

export const DEFAULT_HEALTH: HealthCheckConfig = {
  path: '/',
  method: 'HEAD',
  intervalMs: 10_000,
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  expectStatus: ['2xx', '3xx'],
}

export const DEFAULT_OUTLIER: OutlierDetectionConfig = {
  consecutiveFailures: 5,
  failureRate: 0.5,
  minRequests: 20,
  windowMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedPercent: 50,
}
export function parseUpstream(v: ConfigValidator, name: string, raw: unknown, registry: GatewayRegistry, baseDir: string = process.cwd()): UpstreamConfig {
  const at = `upstreams.${name}`
  const u = v.object(raw, at)
  v.keys(u, at, ['balancer', 'targets', 'timeouts', 'healthCheck', 'outlierDetection', 'slowStart', 'retries', 'retry', 'circuitBreaker', 'pool', 'host', 'defaultHeaders', 'tls', 'engineStats'])
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
  if (!registry.hasBalancer(balancer.strategy)) {
    v.fail(`${at}.balancer${typeof u.balancer === 'string' ? '' : '.strategy'}`, `a balancer name (${registry.balancerNames().join(', ')})`, balancer.strategy)
  }
  try {
    // Build it once to validate the options now, with the key path, rather than at first request.
    registry.createBalancer(balancer.strategy, balancer.options)
  } catch (err) {
    // Factories name the option first (`key must have exactly one of …`): point at it.
    const message = (err as Error).message
    const named = /^([A-Za-z][\w.[\]]*) (?:must|is|should|has|needs|expected)/.exec(message)?.[1]
    v.fail(`${at}.balancer.options${named ? `.${named}` : ''}`, `valid options for ${balancer.strategy} (${message})`, named ? undefined : balancer.options)
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
  const seenUrls = new Set<string>()
  targets.forEach((t, i) => {
    if (seenUrls.has(t.url)) v.fail(`${at}.targets[${i}].url`, 'a URL no other target of this upstream uses', t.url)
    seenUrls.add(t.url)
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
          : v.number(o.failureRate, `${oat}.failureRate`, { min: Number.MIN_VALUE, max: 1 }),
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
    v.fail(`${at}.outlierDetection.maxEjectionTime`, 'a duration at least as long as baseEjectionTime', u.outlierDetection && (u.outlierDetection as ConfigObject).maxEjectionTime)
  }
  const retries = v.optInteger(u.retries, `${at}.retries`, 0) ?? 1
  return {
    name,
    balancer,
    targets,
    timeouts,
    healthCheck,
    outlierDetection,
    slowStartMs: v.duration(u.slowStart, `${at}.slowStart`, 0),
    retries,
    pool: parsePool(v, u.pool, `${at}.pool`),
    retry: u.retry === undefined ? shorthandRetry(retries) : parseRetry(v, u.retry, `${at}.retry`),
    circuitBreaker: u.circuitBreaker === undefined || u.circuitBreaker === false ? undefined : parseBreaker(v, u.circuitBreaker, `${at}.circuitBreaker`),
    host: u.host === undefined ? 'preserve' : parseHostMode(v, u.host, `${at}.host`),
    defaultHeaders: u.defaultHeaders === undefined ? undefined : parseHeaderMap(v, u.defaultHeaders, `${at}.defaultHeaders`),
    tls: parseUpstreamTls(v, u.tls, `${at}.tls`, baseDir),
    ...(u.engineStats === undefined || u.engineStats === false ? undefined : { engineStats: parseEngineStats(v, u.engineStats, `${at}.engineStats`) }),
  }
}

/** `engineStats: true` or `{ path: /metrics, interval: 1s, timeout, format: auto }`. */
function parseEngineStats(v: ConfigValidator, raw: unknown, at: string): EngineStatsConfig {
  const e = raw === true ? {} : v.object(raw, at)
  v.keys(e, at, ['path', 'interval', 'timeout', 'format'])
  const path = v.optString(e.path, `${at}.path`) ?? '/metrics'
  if (!path.startsWith('/')) v.fail(`${at}.path`, 'a path starting with /', path)
  const format = e.format ?? 'auto'
  if (format !== 'vllm' && format !== 'sglang' && format !== 'tgi' && format !== 'auto') v.fail(`${at}.format`, 'vllm, sglang, tgi or auto', format)
  const intervalMs = v.duration(e.interval, `${at}.interval`, 1_000, 1)
  return { path, intervalMs, timeoutMs: v.duration(e.timeout, `${at}.timeout`, Math.min(intervalMs, 2_000), 1), format: format as EngineStatsConfig['format'] }
}

export const DEFAULT_RETRY_ON: RetryOn[] = ['connect', 'reset', 'timeout', 502, 503, 504, 429]

/** What `retries: N` means: N + 1 attempts on connect/reset/timeout only, no backoff, no budget. */
export function shorthandRetry(retries: number): RetryConfig {
  return { attempts: retries + 1, on: ['connect', 'reset', 'timeout'], backoff: { baseMs: 0, maxMs: 0 }, budget: undefined, retryAfterCapMs: 0, reuseEndpoints: false }
}

export function parseRetry(v: ConfigValidator, raw: unknown, at: string): RetryConfig {
  const r = v.object(raw, at)
  v.keys(r, at, ['attempts', 'on', 'backoff', 'budget', 'retryAfterCap'])
  let on = DEFAULT_RETRY_ON
  if (r.on !== undefined) {
    on = v.list(r.on, `${at}.on`).map((x, i) => {
      if (x === 'connect' || x === 'reset' || x === 'timeout') return x
      const n = typeof x === 'string' && /^\d{3}$/.test(x) ? Number(x) : x
      if (typeof n === 'number' && Number.isInteger(n) && n >= 400 && n <= 599) return n
      return v.fail(`${at}.on[${i}]`, 'connect, reset, timeout or a 4xx/5xx status', x)
    })
  }
  const b = r.backoff === undefined ? {} : v.object(r.backoff, `${at}.backoff`)
  v.keys(b, `${at}.backoff`, ['base', 'max'])
  const backoff = { baseMs: v.duration(b.base, `${at}.backoff.base`, 50, 0), maxMs: v.duration(b.max, `${at}.backoff.max`, 2_000, 0) }
  if (backoff.maxMs < backoff.baseMs) v.fail(`${at}.backoff.max`, 'a duration at least as long as backoff.base', b.max)
  let budget: RetryConfig['budget']
  if (r.budget !== false) {
    const g = r.budget === undefined || r.budget === true ? {} : v.object(r.budget, `${at}.budget`)
    v.keys(g, `${at}.budget`, ['ratio', 'minPerSecond', 'window'])
    budget = {
      ratio: g.ratio === undefined ? 0.2 : v.number(g.ratio, `${at}.budget.ratio`, { min: 0 }),
      minPerSecond: g.minPerSecond === undefined ? 5 : v.number(g.minPerSecond, `${at}.budget.minPerSecond`, { min: 0 }),
      windowMs: v.duration(g.window, `${at}.budget.window`, 10_000, 1_000),
    }
  }
  return {
    attempts: v.optInteger(r.attempts, `${at}.attempts`, 1) ?? 3,
    on,
    backoff,
    budget,
    retryAfterCapMs: v.duration(r.retryAfterCap, `${at}.retryAfterCap`, 10_000, 0),
    reuseEndpoints: true,
  }
}

function parseBreaker(v: ConfigValidator, raw: unknown, at: string): CircuitBreakerConfig {
  const c = raw === true ? {} : v.object(raw, at)
  v.keys(c, at, ['consecutiveFailures', 'failureRatio', 'window', 'minRequests', 'openFor', 'halfOpenRequests'])
  return {
    consecutiveFailures: v.optInteger(c.consecutiveFailures, `${at}.consecutiveFailures`, 1) ?? 5,
    failureRatio: c.failureRatio === undefined ? 0.5 : v.number(c.failureRatio, `${at}.failureRatio`, { min: Number.MIN_VALUE, max: 1 }),
    windowMs: v.duration(c.window, `${at}.window`, 10_000, 1),
    minRequests: v.optInteger(c.minRequests, `${at}.minRequests`, 1) ?? 20,
    openForMs: v.duration(c.openFor, `${at}.openFor`, 5_000, 1),
    halfOpenRequests: v.optInteger(c.halfOpenRequests, `${at}.halfOpenRequests`, 1) ?? 1,
  }
}

/** `pool:` defaults: 128 connections per endpoint, 1 s in the queue. */
export const DEFAULT_POOL: PoolConfig = Object.freeze({ connections: 128, queueTimeoutMs: 1_000 })

function parsePool(v: ConfigValidator, raw: unknown, at: string): PoolConfig {
  const p = raw === undefined ? {} : v.object(raw, at)
  v.keys(p, at, ['connections', 'queueTimeout'])
  return {
    connections: v.optInteger(p.connections, `${at}.connections`, 1) ?? DEFAULT_POOL.connections,
    queueTimeoutMs: v.duration(p.queueTimeout, `${at}.queueTimeout`, DEFAULT_POOL.queueTimeoutMs, 1),
  }
}
