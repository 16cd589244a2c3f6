import { createHash, timingSafeEqual } from 'node:crypto'
import {
  BadRequestError,
  CLIENT_STATE,
  compose,
  type Exchange,
  ForbiddenError,
  GatewayError,
  IDENTITY_STATE,
  type Identity,
  MethodNotAllowedError,
  type Middleware,
  NoRouteError,
  SUBJECT_STATE,
  UnauthorizedError,
} from '@switchboard/core'
import { normalizePath } from '@switchboard/matcher'
import type { ClientConfig, GatewayConfig, RouteConfig } from '../config/types.ts'
import { METHOD_OVERRIDE_HEADERS } from '../runtime/access.ts'
import type { GatewayLogger, RouteRuntime } from '../runtime/runtime.ts'
import type { UpstreamRuntime } from '../runtime/upstream.ts'
import type { GatewayExchange } from '../transport/exchange.ts'
import { proxyToUpstream } from './terminals.ts'

/** The `WWW-Authenticate` challenge of tenant requests. */
export const TENANT_CHALLENGE = 'Bearer realm="proxy"'

/** Headers a `/proxy` envelope may not set: framing, routing, credentials, forwarding, identity. */
const ENVELOPE_DENIED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
  'host', 'content-length', 'authorization', 'proxy-authorization', 'cookie',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip', 'via',
  ...METHOD_OVERRIDE_HEADERS,
])
/**
 * Of the client's own headers, only these go upstream with an envelope (the rest described the
 * envelope, not the call); `host` and `content-length` are the upstream step's to set.
 */
const ENVELOPE_KEPT = new Set(['accept', 'accept-encoding', 'accept-language', 'user-agent', 'x-request-id', 'host', 'content-length'])
const ENVELOPE_KEYS = new Set(['method', 'path', 'body', 'headers', 'query'])
const ENVELOPE_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const ENCODED_SEPARATOR = /%2F|%5C/i
const TENANT_KEY = 'switchboard.tenant'

/**
 * `clients:` at run time (seed 004): finds the client from its bearer key, checks its method and
 * path allow-lists against the normalised path, and sends the request to its target with the
 * client's secret as `Authorization` and its timeout. Serves the `POST /proxy` envelope and the
 * passthrough (the client calling its target's paths on the gateway directly).
 */
export class Tenants {
  readonly envelopePath: string | undefined
  readonly passthrough: boolean
  readonly #byHash = new Map<string, ClientConfig>()
  readonly #secrets: Record<string, string>
  readonly #routes = new Map<string, RouteRuntime>()
  readonly #allowed = new Map<ClientConfig, (path: string) => boolean>()
  readonly #chain: (ex: Exchange) => Promise<void>
  readonly #maxEnvelopeBytes: number

  constructor(
    config: GatewayConfig,
    upstreams: ReadonlyMap<string, UpstreamRuntime>,
    logger: GatewayLogger,
    layers: readonly Middleware[],
    onError: (error: unknown, ex: Exchange) => Promise<void>,
  ) {
    const proxy = config.proxy
    this.envelopePath = proxy?.path
    this.passthrough = proxy?.passthrough ?? true
    this.#maxEnvelopeBytes = proxy?.maxBodyBytes ?? config.server.limits.maxBodyBytes
    this.#secrets = config.secrets
    for (const client of Object.values(config.clients)) {
      this.#byHash.set(client.keyHash.slice('sha256:'.length), client)
      this.#allowed.set(client, pathAllowList(client.allowedPaths))
      if (client.nameIsKey) logger('warn', `clients.${client.name}: no key or keyHash, so the client's name is its bearer key (set key: or keyHash:)`, { client: client.name })
      if (!this.#routes.has(client.target)) this.#routes.set(client.target, tenantRoute(client.target, upstreams.get(client.target)!))
    }
    const limits = config.server.limits
    this.#chain = compose(layers, {
      onError,
      terminal: (exchange) => {
        const ex = exchange as GatewayExchange
        const client = ex.state.get(TENANT_KEY) as ClientConfig
        return proxyToUpstream(ex, this.#routes.get(client.target)!, limits)
      },
    })
  }

  /** `POST {proxy.path}` with `{ method, path, body?, headers?, query? }`. */
  async envelope(ex: GatewayExchange): Promise<void> {
    const client = this.#authenticate(ex)
    if (ex.method !== 'POST') {
      ex.responseHeaders.allow = 'POST'
      throw new MethodNotAllowedError({ message: 'The envelope endpoint takes POST' })
    }
    const call = parseEnvelope(await ex.readBody(this.#maxEnvelopeBytes))
    this.#authorize(client, call.method, call.normalizedPath)
    // Nothing of the envelope's own head goes upstream but a few content-negotiation fields.
    const edits = ex.upstreamHeaders
    for (const name in ex.headers) if (!ENVELOPE_KEPT.has(name)) edits[name] = undefined
    for (const name in call.headers) edits[name] = call.headers[name]
    // The target's defaultHeaders apply to what the envelope did not set (the client's own head was
    // dropped above, so they are set here rather than left to the upstream step).
    const defaults = this.#routes.get(client.target)!.upstream.config.defaultHeaders
    if (defaults) for (const name in defaults) if (edits[name] === undefined) edits[name] = defaults[name]
    if (call.body !== undefined && edits['content-type'] === undefined) edits['content-type'] = call.bodyIsJson ? 'application/json' : 'text/plain; charset=utf-8'
    ex.upstreamMethod = call.method
    ex.upstreamTarget = call.normalizedPath + call.query
    ex.replaceBody(call.body)
    ex.route = { name: 'proxy', params: {} }
    await this.#forward(ex, client)
  }

  /** A request no route claims, from a client calling its target's path on the gateway. */
  async passthroughRequest(ex: GatewayExchange): Promise<void> {
    if (ex.upgrade) throw new NoRouteError()
    const client = this.#authenticate(ex)
    const path = ex.normalizedPath
    if (ENCODED_SEPARATOR.test(path)) throw new BadRequestError({ message: 'Encoded slashes are not allowed in tenant paths' })
    this.#authorize(client, ex.method, path)
    for (const name of METHOD_OVERRIDE_HEADERS) if (ex.headers[name] !== undefined) ex.upstreamHeaders[name] = undefined
    // The decision was made on the normalised path, so that is the path the target gets.
    ex.upstreamTarget = path + ex.request.query
    ex.route = { name: 'passthrough', params: {} }
    await this.#forward(ex, client)
  }

  #forward(ex: GatewayExchange, client: ClientConfig): Promise<void> {
    const secret = client.authHeaderRef === undefined ? undefined : this.#secrets[client.authHeaderRef]
    // The client's own key never goes upstream; the secret only does.
    ex.upstreamHeaders.authorization = secret
    if (client.timeoutMs !== undefined) ex.upstreamTimeouts = { responseMs: client.timeoutMs, idleMs: client.timeoutMs }
    const h = client.identityHeaders
    if (h) {
      if (h.subject) ex.upstreamHeaders[h.subject] = client.name
      if (h.client) ex.upstreamHeaders[h.client] = client.name
      if (h.method) ex.upstreamHeaders[h.method] = 'client'
    }
    ex.state.set(TENANT_KEY, client)
    ex.upstreamName = client.target
    return this.#chain(ex)
  }

  #authenticate(ex: GatewayExchange): ClientConfig {
    const header = ex.headers.authorization
    const token = typeof header === 'string' ? bearer(header) : undefined
    const client = token === undefined ? undefined : this.#lookup(token)
    if (!client) {
      ex.responseHeaders['www-authenticate'] = TENANT_CHALLENGE
      throw new UnauthorizedError({ message: token === undefined ? 'A bearer key is required' : 'Invalid key' })
    }
    const identity: Identity = { method: 'client', subject: client.name, client: client.name }
    ex.state.set(IDENTITY_STATE, identity)
    ex.state.set(SUBJECT_STATE, client.name)
    ex.state.set(CLIENT_STATE, client.name)
    return client
  }

  #lookup(token: string): ClientConfig | undefined {
    const digest = createHash('sha256').update(token, 'utf8').digest()
    const client = this.#byHash.get(digest.toString('hex'))
    // The map is keyed by a digest the caller cannot steer; compare the bytes once more in constant time.
    if (!client || !timingSafeEqual(digest, Buffer.from(client.keyHash.slice('sha256:'.length), 'hex'))) return undefined
    return client
  }

  #authorize(client: ClientConfig, method: string, path: string): void {
    if (client.allowedMethods.length > 0 && !client.allowedMethods.includes(method)) throw new ForbiddenError({ message: 'This method is not allowed for this client' })
    if (!this.#allowed.get(client)!(path)) throw new ForbiddenError({ message: 'This path is not allowed for this client' })
  }
}

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), or undefined. */
function bearer(value: string | undefined): string | undefined {
  if (value === undefined || value.length < 8 || value.charCodeAt(6) !== 0x20 || value.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const token = value.slice(7).trim()
  return token === '' ? undefined : token
}

/** A validated envelope. */
interface EnvelopeCall {
  method: string
  normalizedPath: string
  query: string
  headers: Record<string, string>
  body: Uint8Array | undefined
  bodyIsJson: boolean
}

/** Parses and checks `{ method, path, body?, headers?, query? }`; anything off is a 400 naming the field. */
export function parseEnvelope(bytes: Uint8Array): EnvelopeCall {
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw bad('The envelope must be a JSON object: { "method", "path", "body"?, "headers"?, "query"? }')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('The envelope must be a JSON object: { "method", "path", "body"?, "headers"?, "query"? }')
  const e = raw as Record<string, unknown>
  for (const key of Object.keys(e)) if (!ENVELOPE_KEYS.has(key)) throw bad(`Unknown envelope field "${key.slice(0, 40)}"`)
  if (typeof e.method !== 'string' || !ENVELOPE_METHODS.has(e.method.toUpperCase())) throw bad(`"method" must be one of ${[...ENVELOPE_METHODS].join(', ')}`)
  const method = e.method.toUpperCase()
  if (typeof e.path !== 'string' || !e.path.startsWith('/') || e.path.length > 8192) throw bad('"path" must be a path starting with /')
  const q = e.path.indexOf('?')
  const rawPath = q === -1 ? e.path : e.path.slice(0, q)
  const normalizedPath = normalizePath(rawPath)
  if (normalizedPath === undefined || /[\s#]/.test(rawPath)) throw bad('"path" is not a valid path')
  if (ENCODED_SEPARATOR.test(normalizedPath)) throw bad('"path" may not contain encoded slashes')
  const params = new URLSearchParams(q === -1 ? '' : e.path.slice(q + 1))
  if (e.query !== undefined) {
    if (typeof e.query !== 'object' || e.query === null || Array.isArray(e.query)) throw bad('"query" must be an object of strings, numbers or booleans')
    for (const [k, v] of Object.entries(e.query as Record<string, unknown>)) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') throw bad(`"query.${k.slice(0, 40)}" must be a string, number or boolean`)
        params.append(k, String(item))
      }
    }
  }
  const search = params.toString()
  const headers: Record<string, string> = {}
  if (e.headers !== undefined) {
    if (typeof e.headers !== 'object' || e.headers === null || Array.isArray(e.headers)) throw bad('"headers" must be an object of strings')
    for (const [name, value] of Object.entries(e.headers as Record<string, unknown>)) {
      const lower = name.toLowerCase()
      if (!TOKEN.test(name)) throw bad('"headers" has an invalid header name')
      if (ENVELOPE_DENIED.has(lower) || lower.startsWith('proxy-') || lower.startsWith('x-auth-')) throw bad(`"headers.${lower}" may not be set through the envelope`)
      if (typeof value !== 'string' || /[\r\n\0]/.test(value)) throw bad(`"headers.${lower}" must be a string without CR, LF or NUL`)
      headers[lower] = value
    }
  }
  let body: Uint8Array | undefined
  let bodyIsJson = false
  if (e.body !== undefined && e.body !== null) {
    if (typeof e.body === 'string') body = new TextEncoder().encode(e.body)
    else {
      body = new TextEncoder().encode(JSON.stringify(e.body))
      bodyIsJson = true
    }
  }
  if (body !== undefined && (method === 'GET' || method === 'OPTIONS') && body.byteLength > 0) throw bad(`A ${method} envelope cannot carry a body`)
  return { method, normalizedPath, query: search === '' ? '' : `?${search}`, headers, body, bodyIsJson }
}

function bad(message: string): GatewayError {
  return new BadRequestError({ message })
}

/**
 * `allowedPaths` as one predicate over normalised paths: an exact path, or a glob where `*`
 * matches within one segment, `**` across segments, and a trailing `/*` the rest of the path (as
 * in route patterns). Empty allows every path.
 */
export function pathAllowList(patterns: readonly string[]): (path: string) => boolean {
  if (patterns.length === 0) return () => true
  const exact = new Set(patterns.filter((p) => !p.includes('*')))
  const globs = patterns.filter((p) => p.includes('*')).map(globToRegExp)
  return (path) => exact.has(path) || globs.some((re) => re.test(path))
}

function globToRegExp(glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*') {
      if (glob[i + 1] === '*') {
        source += '.*'
        i++
      } else if (i === glob.length - 1 && glob[i - 1] === '/') source += '.+'
      else source += '[^/]*'
    } else source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`)
}

/** The route a tenant's request is proxied by: the client's target, no route-level extras. */
function tenantRoute(target: string, upstream: UpstreamRuntime): RouteRuntime {
  const config: RouteConfig = {
    name: `(tenant ${target})`,
    match: { path: '/*' },
    upstream: target,
    priority: undefined,
    rewrite: undefined,
    requestHeaders: undefined,
    responseHeaders: undefined,
    cache: undefined,
    websocket: undefined,
    policies: [],
  }
  return { config, upstream, layers: [], protected: true }
}
