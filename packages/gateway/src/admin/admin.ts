import { timingSafeEqual } from 'node:crypto'
import { ForbiddenError, GatewayError, NoRouteError, UnauthorizedError, JSON_RESPONSE_HEADERS } from '@switchboard/core'
import type { AdminConfig } from '../config/types.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'

/** What the admin API can see and do. */
export interface AdminActions {
  upstreams(): Record<string, unknown>
  /** Circuit breakers per upstream (state, reason, reopen time) and retry-budget counters. */
  breakers?: () => Record<string, unknown>
  cache(): Record<string, number>
  purgeCache(prefix: string): Promise<number>
  /** Forgets remembered routes (discovery); undefined when discovery is not configured. */
  forgetRoutes?: (prefix: string) => Promise<number>
  /** Routes in matching order with their policies and upstream. */
  routes(): unknown[]
  /** The config in force, secrets redacted. */
  config(): unknown
  /** Reloads the config from its source; resolves with the change summary, rejects with the reason. */
  reload?: () => Promise<string>
  /** Maintenance switches: every `maintenance` policy instance and whether it answers 503 now. */
  maintenance(): unknown[]
  /** Turns maintenance on (true), off (false) or back to config (null), for one instance or all; the names changed. */
  setMaintenance(on: boolean | undefined, policy: string | undefined): string[]
  /** Live figures for the dashboard: totals, per route and upstream counts and latency buckets, recent errors. */
  stats(): unknown
  /** Which route, policies, upstream and candidate endpoints a request would get, and why. */
  explain(input: ExplainInput): unknown
  /** Discovery counters and remembered routes; undefined when discovery is not configured. */
  discovery?: () => Promise<unknown>
  /** The Prometheus text of every metric. */
  metrics(): { contentType: string; text: string }
  /** Token usage of metered routes per client, route and model (`GET usage`). */
  usage?: () => unknown[]
  /** Serves the dashboard for `sub` (below its root); false when `sub` is not the dashboard's. */
  dashboard(ex: NodeExchange, sub: string): Promise<boolean>
}

/** A request to explain: `GET explain?method=GET&path=/x&host=h&header.x-tenant=a`, or the same as a JSON body to POST. */
export interface ExplainInput {
  readonly method: string
  readonly path: string
  readonly host: string | undefined
  readonly headers: Record<string, string>
}

const JSON_HEADERS = JSON_RESPONSE_HEADERS
const MAX_ADMIN_BODY = 16 * 1024

/**
 * Serves `/admin/*` (or the configured prefix): JSON only, bearer token or loopback-only.
 * `GET upstreams`, `GET breakers`, `GET routes`, `GET config`, `GET cache`, `GET usage`, `POST cache/purge {prefix}`,
 * `POST routes/forget {prefix}`, `POST reload`. Answers go through the exchange, so server policies
 * (a request id, CORS) decorate them like any other response.
 */
export async function handleAdmin(ex: NodeExchange, sub: string, config: AdminConfig, actions: AdminActions): Promise<void> {
  authorize(ex, config)
  const method = ex.method
  if ((method === 'GET' || method === 'HEAD') && (sub === '/dashboard' || sub.startsWith('/dashboard/'))) {
    if (await actions.dashboard(ex, sub.slice('/dashboard'.length))) return
  }
  if (method === 'GET' && sub === '/stats') return send(ex, 200, actions.stats())
  if (method === 'GET' && sub === '/metrics') return sendMetrics(ex, actions)
  if ((method === 'GET' || method === 'POST') && sub === '/explain') return send(ex, 200, actions.explain(await explainInput(ex)))
  if (method === 'GET' && sub === '/discovery' && actions.discovery) return send(ex, 200, { discovery: await actions.discovery() })
  if (method === 'GET' && sub === '/upstreams') return send(ex, 200, { upstreams: actions.upstreams() })
  if (method === 'GET' && sub === '/breakers' && actions.breakers) return send(ex, 200, { breakers: actions.breakers() })
  if (method === 'GET' && sub === '/routes') return send(ex, 200, { routes: actions.routes() })
  if (method === 'GET' && sub === '/config') return send(ex, 200, { config: actions.config() })
  if (method === 'GET' && sub === '/cache') return send(ex, 200, { cache: actions.cache() })
  if (method === 'GET' && sub === '/usage' && actions.usage) return send(ex, 200, { usage: actions.usage() })
  if (method === 'POST' && sub === '/cache/purge') {
    const prefix = await readPrefix(ex)
    return send(ex, 200, { purged: await actions.purgeCache(prefix) })
  }
  if (method === 'POST' && sub === '/routes/forget' && actions.forgetRoutes) {
    const prefix = await readPrefix(ex)
    return send(ex, 200, { forgotten: await actions.forgetRoutes(prefix) })
  }
  if (method === 'GET' && sub === '/maintenance') return send(ex, 200, { maintenance: actions.maintenance() })
  if (method === 'POST' && sub === '/maintenance') {
    const body = await readJson(ex)
    const on = body.on
    if (on !== true && on !== false && on !== null) throw new GatewayError(400, 'ERR_BAD_REQUEST', 'Expected {"on": true | false | null, "policy"?: "NAME"}')
    const policy = typeof body.policy === 'string' ? body.policy : undefined
    const changed = actions.setMaintenance(on === null ? undefined : on, policy)
    if (changed.length === 0) throw new NoRouteError({ message: policy ? `No maintenance policy named ${policy}` : 'No maintenance policy is configured' })
    return send(ex, 200, { changed, maintenance: actions.maintenance() })
  }
  if (method === 'POST' && sub === '/reload') {
    if (!actions.reload) throw new GatewayError(501, 'ERR_NOT_IMPLEMENTED', 'This gateway has no config source to reload from')
    try {
      return send(ex, 200, { reloaded: true, summary: await actions.reload() })
    } catch (err) {
      return send(ex, 422, { reloaded: false, error: { code: 'ERR_RELOAD_REFUSED', message: (err as Error).message } })
    }
  }
  throw new NoRouteError({ message: 'Unknown admin endpoint' })
}

/** Prometheus text exposition of every metric. */
export function sendMetrics(ex: NodeExchange, actions: Pick<AdminActions, 'metrics'>): Promise<void> {
  const { contentType, text } = actions.metrics()
  return ex.respond(200, { 'content-type': contentType, 'cache-control': 'no-store' }, ex.method === 'HEAD' ? undefined : text)
}

async function explainInput(ex: NodeExchange): Promise<ExplainInput> {
  let raw: Record<string, unknown>
  if (ex.method === 'POST') raw = await readJson(ex)
  else {
    const q = new URLSearchParams(ex.request.query)
    const headers: Record<string, string> = {}
    for (const [k, v] of q) if (k.startsWith('header.')) headers[k.slice(7).toLowerCase()] = v
    raw = { method: q.get('method') ?? 'GET', path: q.get('path') ?? undefined, host: q.get('host') ?? undefined, headers }
  }
  const path = raw.path
  if (typeof path !== 'string' || !path.startsWith('/')) throw new GatewayError(400, 'ERR_BAD_REQUEST', 'Expected a path starting with / (explain?method=GET&path=/x, or {"method","path","headers"})')
  const headers: Record<string, string> = {}
  if (typeof raw.headers === 'object' && raw.headers !== null) for (const [k, v] of Object.entries(raw.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v
  return {
    method: typeof raw.method === 'string' ? raw.method.toUpperCase() : 'GET',
    path,
    host: typeof raw.host === 'string' ? raw.host : headers.host,
    headers,
  }
}

/**
 * Admin access: with `admin.token`, a bearer token (or, on a GET such as the dashboard's first load
 * in a browser, `?token=`); without one, loopback clients only.
 */
export function authorize(ex: NodeExchange, config: AdminConfig): void {
  if (config.token === undefined) {
    // Without a token only the machine itself may call the admin API.
    const ip = ex.clientIp
    if (ip !== '127.0.0.1' && ip !== '::1' && ip !== '::ffff:127.0.0.1') {
      throw new ForbiddenError({ message: 'Admin API is loopback-only without admin.token' })
    }
    return
  }
  const header = ex.request.headers.authorization
  const read = ex.method === 'GET' || ex.method === 'HEAD'
  const fromQuery = read && ex.request.query.includes('token=') ? new URLSearchParams(ex.request.query).get('token') : null
  // The session cookie set below counts for reads only (with SameSite=Strict), so it cannot drive a POST.
  const fromCookie = read ? sessionCookie(ex.request.headers.cookie) : undefined
  const value = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : (fromQuery ?? fromCookie ?? '')
  const given = Buffer.from(value)
  const expected = Buffer.from(config.token)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new UnauthorizedError()
  // A browser's first load with ?token=: keep it for the session, so a reload of the page (whose
  // address no longer has the token) is still let in.
  if (fromQuery !== null && value === fromQuery) ex.responseHeaders['set-cookie'] = `${SESSION_COOKIE}=${encodeURIComponent(fromQuery)}; HttpOnly; SameSite=Strict; Path=/`
}

const SESSION_COOKIE = 'switchboard_admin'

function sessionCookie(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || !header.includes(SESSION_COOKIE)) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim())
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

async function readPrefix(ex: NodeExchange): Promise<string> {
  const fromQuery = ex.request.query ? new URLSearchParams(ex.request.query).get('prefix') : null
  const bytes = ex.hasBody ? await ex.readBody(MAX_ADMIN_BODY) : new Uint8Array(0)
  if (fromQuery !== null) return fromQuery
  if (bytes.byteLength === 0) return ''
  try {
    const body = JSON.parse(new TextDecoder().decode(bytes)) as { prefix?: unknown }
    return typeof body.prefix === 'string' ? body.prefix : ''
  } catch {
    throw new GatewayError(400, 'ERR_BAD_REQUEST', 'Expected a JSON body like {"prefix": "..."}')
  }
}

async function readJson(ex: NodeExchange): Promise<Record<string, unknown>> {
  const bytes = ex.hasBody ? await ex.readBody(MAX_ADMIN_BODY) : new Uint8Array(0)
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // answered below
  }
  throw new GatewayError(400, 'ERR_BAD_REQUEST', 'Expected a JSON object body')
}

function send(ex: NodeExchange, status: number, body: unknown): Promise<void> {
  return ex.respond(status, { ...JSON_HEADERS }, JSON.stringify(body))
}
