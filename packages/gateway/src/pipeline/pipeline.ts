import type { Socket } from 'node:net'
import { noop } from '../transport/socket.ts'
import {
  BadRequestError,
  compose,
  type Exchange,
  isGatewayError,
  JSON_RESPONSE_HEADERS,
  type Middleware,
  NoRouteError,
  toGatewayError,
} from '@switchboard/core'
import { type MatchInput, type MatchResult, normalizePath } from '@switchboard/matcher'
import type { TunnelGroup } from '@switchboard/websocket-tunnel'
import type { LifecycleHooks } from '../registry.ts'
import { DISCOVERY_UPSTREAM, type GatewayLogger, type RouteRuntime, type Runtime } from '../runtime/runtime.ts'
import type { GatewayExchange, UpstreamFetcher } from '../transport/exchange.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'
import { nativeSaturated } from '../transport/native-exchange.ts'
import { looseVariant, METHOD_OVERRIDE_HEADERS } from '../runtime/access.ts'
import { parseJson } from './json-body.ts'
import { ModelList } from './models.ts'
import { Tenants } from './tenants.ts'
import { fetchFromUpstream, proxyToUpstream, tunnelToUpstream } from './terminals.ts'

/** What the pipeline needs from the gateway that holds it. */
export interface PipelineContext {
  readonly logger: GatewayLogger
  /** True while the gateway drains (health answers 503). */
  closing(): boolean
  /** Serves the admin API for `sub` (the path below the admin prefix). */
  admin(ex: GatewayExchange, sub: string): Promise<void>
  /** A client socket was handed to a tunnel (tracked for shutdown). */
  onTunnel(socket: Socket): void
  /** Frame-mode tunnels join it, so shutdown can close them with 1001. */
  readonly tunnels?: TunnelGroup
  /** Answers with the Prometheus text of every metric (`metrics.path` on the main listener). */
  metrics?(ex: GatewayExchange): Promise<void>
}

/** One request's way through a runtime: server policies → route → route policies → terminal. */
export type Pipeline = (ex: GatewayExchange) => Promise<void>

const JSON_HEADERS = JSON_RESPONSE_HEADERS

/**
 * Builds the pipeline of a runtime. Server policies run for every request (health, admin, 404s and
 * discovery included); route policies run once a route matched; the terminal proxies or tunnels.
 * An error anywhere becomes a JSON response inside the chain, so every outer layer still decorates it.
 */
export function buildPipeline(runtime: Runtime, ctx: PipelineContext): Pipeline {
  const { config } = runtime
  const limits = config.server.limits
  const onError = (error: unknown, ex: Exchange): Promise<void> => respondWithGatewayError(error, ex as GatewayExchange, ctx.logger)
  // Per route, built once: its chain and how `fetchUpstream()` reaches its upstream (no closure per request).
  const routeChains = new Map<RouteRuntime, { chain: (ex: Exchange) => Promise<void>; fetcher: UpstreamFetcher }>()
  for (const route of runtime.routes.values()) {
    routeChains.set(route, {
      fetcher: (e, init) => fetchFromUpstream(e, route, init),
      chain: compose(route.layers, {
        onError,
        terminal: (exchange) => {
          const ex = exchange as GatewayExchange
          return ex.upgrade ? tunnelToUpstream(ex, route, ctx.onTunnel, ctx.tunnels).then(noop) : proxyToUpstream(ex, route, limits)
        },
      }),
    })
  }
  // `models:`: the gateway answers the model list itself, behind the policies of the route claiming its path (if any).
  const models = config.models && new ModelList(config.models, runtime.upstreams)
  const modelChains = new Map<RouteRuntime, (ex: Exchange) => Promise<void>>()
  if (models) for (const route of runtime.routes.values()) modelChains.set(route, compose(route.layers, { onError, terminal: (e) => models.serve(e as GatewayExchange) }))
  const discovery = runtime.discovery ? compose([runtime.discovery.discovery.middleware()], { onError }) : undefined
  const admin = config.admin
  const trusted = runtime.trusted
  const docs = runtime.docs
  const tenants = Object.keys(config.clients).length > 0 ? new Tenants(config, runtime.upstreams, ctx.logger, runtime.tenantLayers, onError) : undefined
  const identityHeaders = runtime.access.identityHeaders
  const unmatchedAuth = runtime.unmatchedAuth
  const notFound = (): Promise<void> => Promise.reject(new NoRouteError())

  const metricsPath = config.metrics?.path
  const tracing = config.tracing.traceparent

  // Not async: a request that needs no body for routing reaches its chain without an extra promise
  // (compose() turns a synchronous throw into the error response as it does a rejection).
  function router(exchange: Exchange): Promise<void> {
    const ex = exchange as GatewayExchange
    ex.trustForwarded = trusted
    const path = ex.normalizedPath
    if (tracing) propagateTrace(ex)
    if (path === config.server.healthPath && (ex.method === 'GET' || ex.method === 'HEAD') && !ex.upgrade) return health(ex)
    if (path === metricsPath && ctx.metrics && (ex.method === 'GET' || ex.method === 'HEAD') && !ex.upgrade) return ctx.metrics(ex)
    if (admin && !admin.listen && !ex.upgrade && (path === admin.path || path.startsWith(`${admin.path}/`))) return ctx.admin(ex, path.slice(admin.path.length))
    // The docs handler only reads Exchange members (respond, method, paths); its type still names NodeExchange.
    if (docs && !ex.upgrade && docs.matches(path)) return docs.serve(ex as NodeExchange)
    // Identity headers come from the gateway only: whatever a client sent under those names is dropped.
    for (const name of identityHeaders) if (ex.headers[name] !== undefined) ex.upstreamHeaders[name] = undefined
    if (tenants !== undefined && path === tenants.envelopePath && !ex.upgrade) return tenants.envelope(ex)
    const input: MatchInput = { method: ex.method, path, query: ex.request.query, host: ex.headers.host as string | undefined, headers: ex.headers, body: undefined }
    if (!ex.upgrade && runtime.matcher.needsBody(input)) return routeOnBody(ex, input)
    return routeTo(ex, input, runtime.matcher.match(input))
  }

  /** A route table with JSON-payload conditions: the body is read (within the limit) and matched again. */
  async function routeOnBody(ex: GatewayExchange, input: MatchInput): Promise<void> {
    const bytes = await ex.readBody(limits.maxBodyBytes)
    input.body = ex.body = parseJson(bytes)
    return routeTo(ex, input, runtime.matcher.match(input))
  }

  function routeTo(ex: GatewayExchange, input: MatchInput, match: MatchResult<RouteRuntime> | undefined): Promise<void> {
    const path = input.path
    const listModels = models !== undefined && path === models.path && (ex.method === 'GET' || ex.method === 'HEAD') && !ex.upgrade
    const route = match?.route.data
    // An origin that decodes `%2F` (or `%5C`) would see another path than the one routed here:
    // refuse when decoding it would pick another route (or none).
    if (path.includes('%2F') || path.includes('%5C')) {
      const decoded = normalizePath(path.replace(/%2F|%5C/g, '/'))
      if (decoded === undefined || runtime.matcher.match({ ...input, path: decoded })?.route.data !== route) {
        throw new BadRequestError({ message: 'An encoded slash in this path would change how it is routed' })
      }
    }
    // `/PRIVATE/x`, `/private./x`, `/private;x/y` may be `/private/x` to the origin: when such a
    // variant reaches a route (or discovery) without authentication while the plain path would need
    // it, nothing answers.
    if (runtime.mixedAccess && !route?.protected) {
      const loose = looseVariant(path)
      if (loose !== path && runtime.matcher.match({ ...input, path: loose })?.route.data.protected) throw new NoRouteError()
    }
    if (!match || !route) {
      if (listModels) return unmatchedAuth ? unmatchedAuth(ex, () => models.serve(ex)) : models.serve(ex)
      // Seed 000: nothing claims it, so try the endpoints in order and remember the winner.
      if (discovery && !ex.upgrade) return discovery(ex)
      // Seed 004: a client calling its target's path on the gateway directly.
      if (tenants?.passthrough) return tenants.passthroughRequest(ex)
      // With server-wide authentication, an unknown path asks for credentials first (no route map for strangers).
      if (unmatchedAuth) return unmatchedAuth(ex, notFound)
      throw new NoRouteError()
    }
    if (route.protected) for (const name of METHOD_OVERRIDE_HEADERS) if (ex.headers[name] !== undefined) ex.upstreamHeaders[name] = undefined
    ex.upstreamName = route.upstream.name
    ex.route = { name: route.config.name, params: match.params }
    const entry = routeChains.get(route)!
    ex.fetcher = entry.fetcher
    return (listModels ? modelChains.get(route)! : entry.chain)(ex)
  }

  function health(ex: GatewayExchange): Promise<void> {
    const body: Record<string, { healthy: number; total: number; saturated: number }> = {}
    let ok = true
    let saturated = false
    for (const [name, u] of runtime.upstreams) {
      if (name === DISCOVERY_UPSTREAM) continue
      const healthy = u.candidates().length
      // Native exchanges bound concurrency themselves (undici's pool is not used there).
      const full = ex.transport === 'native' ? u.endpoints.filter((ep) => nativeSaturated(u.pool(ep))).length : u.saturatedCount()
      body[name] = { healthy, total: u.endpoints.length, saturated: full }
      if (healthy === 0) ok = false
      if (full > 0 && full >= healthy) saturated = true
    }
    const closing = ctx.closing()
    // Saturated pools are reported but keep the status 200: a load balancer pulling a busy gateway
    // out of rotation would only move the load; `status: saturated` says what is going on.
    const status = closing ? 'draining' : !ok ? 'degraded' : saturated ? 'saturated' : 'ok'
    const text = JSON.stringify({ status, upstreams: body })
    return ex.respond(ok && !closing ? 200 : 503, { ...JSON_HEADERS }, ex.method === 'HEAD' ? undefined : text)
  }

  const layers: Middleware[] = [...runtime.serverPolicies]
  const hooks = runtime.hooks.filter((h) => h.request || h.response || h.error)
  if (hooks.length > 0) layers.unshift(lifecycleLayer(hooks, ctx.logger))
  return compose(layers, { terminal: router, onError })
}

/**
 * Turns an error into the client's answer: the GatewayError's status and short JSON body (500
 * `ERR_INTERNAL` for anything else, logged with its stack). Once the head was written the response
 * is cut instead, so a truncated body never looks complete.
 */
async function respondWithGatewayError(error: unknown, ex: GatewayExchange, logger: GatewayLogger): Promise<void> {
  const err = toGatewayError(error)
  ex.error = err
  if (!isGatewayError(error)) logger('error', 'request failed', { error: String((error as Error)?.stack ?? error) })
  if (ex.responded || ex.clientGone) {
    ex.abortResponse()
    return
  }
  // A malformed request says nothing good about the rest of this connection's bytes, and a body
  // left partly unread cannot be skipped safely.
  if (err.status === 400 || err.status === 408 || err.status === 413 || (ex.hasBody && !ex.bodyComplete)) ex.closeAfterResponse()
  await ex.respond(err.status, { ...JSON_HEADERS }, err.toBody())
}

function lifecycleLayer(hooks: LifecycleHooks[], logger: GatewayLogger): Middleware {
  const safely = async (what: string, fn: () => void | Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      logger('error', `${what} hook failed`, { error: String((err as Error)?.stack ?? err) })
    }
  }
  return async function lifecycleHooks(ex, next) {
    for (const h of hooks) if (h.request) await safely('request', () => h.request!(ex))
    await next()
    if (ex.error !== undefined) for (const h of hooks) if (h.error) await safely('error', () => h.error!(ex.error, ex))
    for (const h of hooks) if (h.response) await safely('response', () => h.response!(ex))
  }
}


// W3C Trace Context: version-traceid-parentid-flags, lower-case hex; version ff and all-zero ids are invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
// Random bytes are drawn in blocks and turned into hex once per block: one getRandomValues call
// and one string per 170 requests; each id is then a slice of it, not 8 to 16 string joins.
const RANDOM = new Uint8Array(4080)
let randomHexBlock = ''
let randomAt = RANDOM.length

/** `bytes` random bytes as lower-case hex. */
function randomHex(bytes: number): string {
  if (randomAt + bytes > RANDOM.length) {
    crypto.getRandomValues(RANDOM)
    const pairs = new Array<string>(RANDOM.length)
    for (let i = 0; i < RANDOM.length; i++) pairs[i] = HEX[RANDOM[i]]
    randomHexBlock = pairs.join('')
    randomAt = 0
  }
  const hex = randomHexBlock.slice(2 * randomAt, 2 * (randomAt + bytes))
  randomAt += bytes
  return hex
}

/**
 * Continues the client's trace (or starts one): the upstream gets `traceparent` with the same trace
 * id and a span id of the gateway's own; an invalid one is replaced, and its `tracestate` dropped.
 */
function propagateTrace(ex: GatewayExchange): void {
  const incoming = ex.headers.traceparent
  const m = typeof incoming === 'string' ? TRACEPARENT.exec(incoming) : null
  const valid = m !== null && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN && (m[1] !== '00' || m[5] === undefined)
  const traceId = valid ? m[2] : randomHex(16)
  const flags = valid ? m[4] : '00'
  ex.traceId = traceId
  ex.upstreamHeaders.traceparent = `00-${traceId}-${randomHex(8)}-${flags}`
  if (!valid && ex.headers.tracestate !== undefined) ex.upstreamHeaders.tracestate = undefined
}
