import type { ConfigValidator } from '@switchboard/core'
import { parseBodyMatch } from './models.ts'
import { policyNames } from './server.ts'
import { parseRetry } from './upstreams.ts'
import type { RouteCacheConfig, RouteHedgeConfig, RouteConfig, RouteMatchConfig, RouteUsageConfig, RouteWebSocketConfig, UpstreamConfig } from './types.ts'

export function parseRoute(v: ConfigValidator, at: string, raw: unknown, upstreams: Record<string, UpstreamConfig>): RouteConfig {
  const r = v.object(raw, at)
  v.keys(r, at, ['name', 'match', 'upstream', 'priority', 'policies', 'rewrite', 'requestHeaders', 'responseHeaders', 'cache', 'websocket', 'deadline', 'deadlineHeader', 'retryNonIdempotent', 'hedge', 'retry', 'public', 'usage'])
  const name = v.string(r.name, `${at}.name`)
  const m = v.object(r.match, `${at}.match`)
  v.keys(m, `${at}.match`, ['path', 'pathRegex', 'methods', 'method', 'host', 'headers', 'query', 'payload', 'body'])
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
  if (m.query !== undefined) match.query = v.conditions(m.query, `${at}.match.query`, { lowercase: false })
  if (m.payload !== undefined) {
    const list = v.list(m.payload, `${at}.match.payload`)
    if (list.length === 0) v.fail(`${at}.match.payload`, 'a non-empty list of JSON payloads', list)
    match.payload = list
  }
  if (m.body !== undefined) match.body = parseBodyMatch(v, m.body, `${at}.match.body`)
  const upstream = v.string(r.upstream, `${at}.upstream`)
  if (!Object.hasOwn(upstreams, upstream)) {
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
    policies: policyNames(v, r.policies, `${at}.policies`),
    retry: r.retry === undefined ? undefined : parseRetry(v, r.retry, `${at}.retry`),
    deadlineMs: r.deadline === undefined ? undefined : v.duration(r.deadline, `${at}.deadline`, 0, 1),
    deadlineHeader: r.deadlineHeader === undefined ? false : flag(v, r.deadlineHeader, `${at}.deadlineHeader`),
    retryNonIdempotent: r.retryNonIdempotent === undefined ? false : flag(v, r.retryNonIdempotent, `${at}.retryNonIdempotent`),
    hedge: r.hedge === undefined || r.hedge === false ? undefined : parseHedge(v, r.hedge, `${at}.hedge`),
    public: r.public === undefined ? false : flag(v, r.public, `${at}.public`),
    usage: r.usage === undefined ? undefined : parseUsage(v, r.usage, `${at}.usage`, { cache, websocket, hedge: r.hedge !== undefined && r.hedge !== false }),
  }
}

/** `routes[].usage`; metering reads the response itself, so it cannot share it with a tunnel, the cache or a hedge. */
function parseUsage(v: ConfigValidator, raw: unknown, at: string, route: { cache: unknown; websocket: unknown; hedge: boolean }): RouteUsageConfig {
  const u = v.object(raw, at)
  v.keys(u, at, ['format', 'continuousUsage'])
  if (u.format !== 'openai' && u.format !== 'anthropic') v.fail(`${at}.format`, 'openai or anthropic', u.format)
  if (route.websocket !== undefined) v.fail(at, 'no usage on a websocket route (a tunnel carries no token usage)', raw)
  if (route.cache !== undefined) v.fail(at, 'no usage on a cached route (a cache hit would bill tokens nobody generated)', raw)
  if (route.hedge) v.fail(at, 'no usage on a hedged route (a hedge generates tokens twice)', raw)
  return { format: u.format as RouteUsageConfig['format'], continuousUsage: u.continuousUsage === undefined ? false : flag(v, u.continuousUsage, `${at}.continuousUsage`) }
}

function flag(v: ConfigValidator, value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') v.fail(path, 'true or false', value)
  return value as boolean
}

function parseHedge(v: ConfigValidator, raw: unknown, at: string): RouteHedgeConfig {
  const h = v.object(raw, at)
  v.keys(h, at, ['after', 'fallback'])
  const after = h.after === 'p95' ? 'p95' : v.duration(h.after, `${at}.after`, 100, 1)
  return { after, fallbackMs: v.duration(h.fallback, `${at}.fallback`, 100, 1) }
}
