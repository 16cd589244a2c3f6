import { normalizePath } from '@switchboard/matcher'
import type { MetricSnapshot } from '@switchboard/metrics'
import { looseVariant } from '../runtime/access.ts'
import { DISCOVERY_UPSTREAM, type Runtime } from '../runtime/runtime.ts'
import type { Observer } from '../observe/observer.ts'
import type { ExplainInput } from './admin.ts'
import type { DashboardStats } from './dashboard/index.ts'

/** Cumulative latency histogram as the dashboard reads it: `[le, count ≤ le]` pairs, `+Inf` last. */
export interface LatencyBuckets {
  count: number
  sum: number
  buckets: Array<[number | '+Inf', number]>
}

interface Aggregate {
  requests: number
  byClass: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'aborted', number>
  latency: LatencyBuckets
}

/**
 * `GET /admin/stats`: cumulative counts and latency buckets per route and per upstream (the
 * dashboard differences two polls for rates and windowed percentiles), upstream health with every
 * endpoint, and the last errors.
 */
export function buildStats(observer: Observer, runtime: Runtime): DashboardStats {
  const snapshot = observer.registry.snapshot()
  const requests = find(snapshot, 'switchboard_requests_total')
  const duration = find(snapshot, 'switchboard_request_duration_seconds')
  const byRoute = new Map<string, Aggregate & { upstream: string }>()
  const byUpstream = new Map<string, Aggregate>()
  const empty = (): Aggregate => ({ requests: 0, byClass: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, aborted: 0 }, latency: { count: 0, sum: 0, buckets: [] } })
  for (const s of requests?.series ?? []) {
    const { route, upstream, code } = s.labels
    const value = (s as { value: number }).value
    const r = byRoute.get(route) ?? { ...empty(), upstream }
    byRoute.set(route, r)
    r.requests += value
    const cls = code as keyof Aggregate['byClass']
    r.byClass[cls] = (r.byClass[cls] ?? 0) + value
    const u = byUpstream.get(upstream) ?? empty()
    byUpstream.set(upstream, u)
    u.requests += value
    u.byClass[cls] = (u.byClass[cls] ?? 0) + value
  }
  for (const s of duration?.series ?? []) {
    const h = s as unknown as { labels: Record<string, string>; count: number; sum: number; buckets: Array<[number, number]> }
    addLatency(byRoute.get(h.labels.route)?.latency, h)
    addLatency(byUpstream.get(h.labels.upstream)?.latency, h)
  }
  const ms = (l: LatencyBuckets, q: number): number | null => {
    const v = quantile(l, q)
    return Number.isFinite(v) ? Math.round(v * 1e6) / 1e3 : null
  }
  const upstreams = []
  for (const u of runtime.allUpstreams()) {
    const agg = byUpstream.get(u.name) ?? empty()
    const candidates = new Set(u.candidates())
    upstreams.push({
      name: u.name,
      healthy: candidates.size,
      total: u.endpoints.length,
      saturated: u.saturatedCount(),
      requests: agg.requests,
      errors5xx: agg.byClass['5xx'] ?? 0,
      latency: agg.latency,
      p50Ms: ms(agg.latency, 0.5),
      p99Ms: ms(agg.latency, 0.99),
      endpoints: u.endpoints.map((ep) => ({
        url: ep.url,
        healthy: candidates.has(ep),
        circuit: u.breakers ? u.breakers.snapshot(ep).state : null,
        inFlight: ep.inFlight,
        latencyEwmaMs: Number.isFinite(ep.latencyEwmaMs) ? Math.round(ep.latencyEwmaMs * 1000) / 1000 : null,
      })),
    })
  }
  return {
    time: Date.now(),
    uptimeS: (Date.now() - observer.started) / 1000,
    totals: observer.totals(),
    routes: [...byRoute].map(([name, r]) => ({ name, upstream: r.upstream, requests: r.requests, byClass: r.byClass, latency: r.latency, p50Ms: ms(r.latency, 0.5), p99Ms: ms(r.latency, 0.99) })),
    upstreams,
    recentErrors: [...observer.recentErrors].reverse(),
  }
}

function find(snapshot: readonly MetricSnapshot[], name: string): MetricSnapshot | undefined {
  return snapshot.find((m) => m.name === name)
}

function addLatency(into: LatencyBuckets | undefined, h: { count: number; sum: number; buckets: Array<[number, number]> }): void {
  if (!into) return
  into.count += h.count
  into.sum += h.sum
  // The snapshot lists finite bounds only; the dashboard's shape ends with `+Inf` (= count).
  const pairs: Array<[number | '+Inf', number]> = [...h.buckets.map(([le, n]): [number | '+Inf', number] => [le, n]), ['+Inf', h.count]]
  if (into.buckets.length === 0) into.buckets = pairs
  else for (let i = 0; i < into.buckets.length && i < pairs.length; i++) into.buckets[i][1] += pairs[i][1]
}

/** A quantile (seconds) from cumulative buckets, interpolating inside the bucket; NaN when empty. */
export function quantile(l: LatencyBuckets, q: number): number {
  if (l.count === 0) return Number.NaN
  const rank = q * l.count
  let prevLe = 0
  let prevCount = 0
  for (const [le, count] of l.buckets) {
    if (count >= rank) {
      if (le === '+Inf') return prevLe
      const inBucket = count - prevCount
      return inBucket === 0 ? le : prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket
    }
    if (le !== '+Inf') prevLe = le
    prevCount = count
  }
  return prevLe
}

/**
 * `GET /admin/explain?method=GET&path=/x&header.NAME=v`: which route a request would match (with
 * its params), which policies run in which order (and where authentication is placed), which
 * upstream, and for each of its endpoints whether the balancer would consider it and why not.
 */
export function explain(runtime: Runtime, input: ExplainInput): unknown {
  const q = input.path.indexOf('?')
  const rawPath = q === -1 ? input.path : input.path.slice(0, q)
  const query = q === -1 ? '' : input.path.slice(q)
  const path = normalizePath(rawPath)
  if (path === undefined) return { path: input.path, outcome: 'refused', status: 400, reason: 'the path is invalid (above the root, %00, malformed escapes or a hidden dot segment)' }
  const config = runtime.config
  const base = { method: input.method, path: input.path, normalizedPath: path }
  if (path === config.server.healthPath) return { ...base, outcome: 'gateway', answeredBy: 'health' }
  if (config.admin && !config.admin.listen && (path === config.admin.path || path.startsWith(`${config.admin.path}/`))) return { ...base, outcome: 'gateway', answeredBy: 'admin' }
  if (config.docs && (path === config.docs.path || path.startsWith(`${config.docs.path}/`) || path === config.docs.openapiPath)) return { ...base, outcome: 'gateway', answeredBy: 'docs' }
  if (config.metrics && path === config.metrics.path) return { ...base, outcome: 'gateway', answeredBy: 'metrics' }
  if (config.proxy && path === config.proxy.path) return { ...base, outcome: 'tenants', answeredBy: 'proxy envelope', note: 'the client is found from its bearer key; its allowedMethods/allowedPaths are checked against the envelope' }
  const headers = { ...input.headers, ...(input.host ? { host: input.host } : {}) }
  const match = runtime.matcher.match({ method: input.method, path, query, host: input.host, headers })
  const serverPolicies = config.server.policies.filter((n) => !runtime.access.isAuth(n))
  if (!match) {
    const loose = looseVariant(path)
    const variant = loose !== path ? runtime.matcher.match({ method: input.method, path: loose, query, host: input.host, headers }) : undefined
    return {
      ...base,
      outcome: runtime.discovery ? 'discovery' : config.proxy?.passthrough ? 'tenants' : 'no route',
      status: runtime.discovery || config.proxy?.passthrough ? undefined : runtime.unmatchedAuth ? 401 : 404,
      serverPolicies,
      note: variant ? `a variant of this path matches route ${variant.route.data.config.name}` : undefined,
    }
  }
  const route = match.route.data
  const order = runtime.access.order(route.config).map((n) => n ?? `(authentication: ${runtime.access.routeAuthenticators(route.config).map((a) => a.method).join(' | ')})`)
  const upstream = route.upstream
  const candidates = new Set(upstream.candidates())
  return {
    ...base,
    outcome: 'route',
    route: route.config.name,
    params: match.params,
    public: route.config.public === true,
    authenticated: route.protected,
    serverPolicies,
    routePolicies: order,
    shorthand: [route.config.requestHeaders || route.config.responseHeaders ? 'headers' : undefined, route.config.rewrite ? 'rewrite' : undefined, route.config.cache ? 'cache' : undefined].filter(Boolean),
    upstream: upstream.name === DISCOVERY_UPSTREAM ? undefined : upstream.name,
    balancer: upstream.config.balancer.strategy,
    endpoints: upstream.endpoints.map((ep) => {
      const circuit = upstream.breakers?.snapshot(ep).state
      const healthy = candidates.has(ep)
      const reason = !healthy ? 'unhealthy (health checks or outlier ejection)' : circuit === 'open' ? 'circuit open' : upstream.saturatedCount() > 0 && upstream.pool(ep).saturated ? 'pool saturated (queued up to pool.queueTimeout)' : 'candidate'
      return { url: ep.url, candidate: healthy && circuit !== 'open', reason, weight: ep.weight, inFlight: ep.inFlight, circuit: circuit ?? null }
    }),
  }
}
