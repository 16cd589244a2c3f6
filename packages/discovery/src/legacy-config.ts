import { ConfigError } from '@switchboard/core'
import { stringify } from 'yaml'
import { canonicalJson } from './payload-hash.ts'

/** Methods a legacy payload list applies to (SingleEndpointRouter matched payloads on these only). */
const PAYLOAD_METHODS = ['POST', 'PUT', 'PATCH']
const BACKEND_KEYS = ['cache_timeout', 'endpoints']
const ENDPOINT_KEYS = ['payload']

/**
 * Options of {@link importLegacyConfig}.
 * @example importLegacyConfig(YAML.parse(text), { file: 'config.yaml', fallbackEndpoints: ['http://127.0.0.1:3200'] })
 */
export interface ImportLegacyOptions {
  /** File name for error messages. @default none */
  file?: string
  /** Endpoints probed after the config's backends (the legacy `Server(endpoints, conf)` list). @default [] */
  fallbackEndpoints?: string[]
}

/** One upstream of an imported config. @example { targets: ['http://127.0.0.1:3000'] } */
export interface ImportedUpstream {
  targets: string[]
}

/** One route of an imported config. @example { name: 'backend-127-0-0-1-3000-load-log-file', match: { path: '/load_log_file' }, upstream: 'backend-127-0-0-1-3000' } */
export interface ImportedRoute {
  name: string
  match: {
    path?: string
    pathRegex?: string
    methods?: string[]
    payload?: Record<string, unknown>[]
  }
  upstream: string
}

/**
 * A config in the gateway's format (`upstreams`, `routes`) plus the `discovery:` section.
 * @example const { discovery } = importLegacyConfig(raw) // { endpoints: [...], remember: { ttl: '5000s' } }
 */
export interface ImportedConfig {
  upstreams: Record<string, ImportedUpstream>
  routes: ImportedRoute[]
  discovery: {
    endpoints: string[]
    /** Present when a backend set `cache_timeout`: the smallest one, in seconds (`'5000s'`). */
    remember?: { ttl: string }
    /** `all`: the tool tried every backend in order for any method, POSTs included. */
    replay: 'all'
    /** `[200]`: the tool's rule, "the first backend that answers 200". */
    successStatuses: number[]
    /** The tool remembered method + path + query + payload. */
    keyQuery: true
  }
}

/**
 * True when `raw` looks like a SingleEndpointRouter config: a non-empty mapping whose every
 * top-level key is an http(s) URL.
 * @example isLegacyConfig({ 'http://127.0.0.1:3000': { endpoints: {} } }) // true
 */
export function isLegacyConfig(raw: unknown): boolean {
  if (!isMapping(raw)) return false
  const keys = Object.keys(raw)
  return keys.length > 0 && keys.every((key) => normalizeUrl(key) !== undefined)
}

/**
 * Converts a parsed SingleEndpointRouter config into the gateway's format: one upstream per backend
 * URL (named after host and port, `backend-127-0-0-1-3000`), one route per backend and endpoint
 * path (with a payload list: `methods: [POST, PUT, PATCH]` and `payload`; without one: path only, any
 * method), and a `discovery:` section probing the backends in file order, then `fallbackEndpoints`.
 * The smallest `cache_timeout` (seconds) becomes `discovery.remember.ttl`. Invalid input throws a
 * `ConfigError` naming the key path.
 * @example
 * const config = importLegacyConfig(YAML.parse(readFileSync('config.yaml', 'utf8')), { file: 'config.yaml' })
 */
export function importLegacyConfig(raw: unknown, options: ImportLegacyOptions = {}): ImportedConfig {
  const file = options.file
  const fail = (path: string, expected: string, got: unknown): never => {
    throw new ConfigError(path, expected, { file, got })
  }
  if (!isMapping(raw) || Object.keys(raw).length === 0) {
    return fail('', 'a mapping whose keys are backend URLs ("http://host:port")', raw)
  }
  const upstreams: Record<string, ImportedUpstream> = {}
  const routes: ImportedRoute[] = []
  const endpoints: string[] = []
  const routeNames = new Set<string>()
  let ttlSeconds: number | undefined
  for (const [backendKey, backendRaw] of Object.entries(raw)) {
    const at = JSON.stringify(backendKey)
    const url = normalizeUrl(backendKey)
    if (url === undefined) fail(at, 'an http:// or https:// URL without query, fragment or credentials as the key', backendKey)
    if (endpoints.includes(url!)) fail(at, 'a backend URL that is listed once', backendKey)
    endpoints.push(url!)
    const upstream = uniqueName(`backend-${slug(urlLabel(url!))}`, (n) => n in upstreams)
    upstreams[upstream] = { targets: [url!] }
    if (backendRaw === null || backendRaw === undefined) continue
    if (!isMapping(backendRaw)) fail(at, 'a mapping with cache_timeout and endpoints', backendRaw)
    const backend = backendRaw as Record<string, unknown>
    for (const key of Object.keys(backend)) {
      if (!BACKEND_KEYS.includes(key)) fail(`${at}.${key}`, `one of the known keys (${BACKEND_KEYS.join(', ')})`, key)
    }
    if (backend.cache_timeout !== undefined && backend.cache_timeout !== null) {
      const seconds = typeof backend.cache_timeout === 'string' ? Number(backend.cache_timeout.trim() || Number.NaN) : backend.cache_timeout
      if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
        fail(`${at}.cache_timeout`, 'a positive number of seconds', backend.cache_timeout)
      }
      ttlSeconds = ttlSeconds === undefined ? (seconds as number) : Math.min(ttlSeconds, seconds as number)
    }
    if (backend.endpoints === undefined || backend.endpoints === null) continue
    if (!isMapping(backend.endpoints)) fail(`${at}.endpoints`, 'a mapping of paths', backend.endpoints)
    for (const [path, endpointRaw] of Object.entries(backend.endpoints as Record<string, unknown>)) {
      const eat = `${at}.endpoints.${path}`
      if (!path.startsWith('/')) fail(eat, 'a path starting with / as the key', path)
      if (/[?#\s]/.test(path)) fail(eat, 'a path without query, fragment or spaces as the key', path)
      let payload: Record<string, unknown>[] | undefined
      if (endpointRaw !== null && endpointRaw !== undefined) {
        if (!isMapping(endpointRaw)) fail(eat, 'a mapping with payload', endpointRaw)
        const endpoint = endpointRaw as Record<string, unknown>
        for (const key of Object.keys(endpoint)) {
          if (!ENDPOINT_KEYS.includes(key)) fail(`${eat}.${key}`, `one of the known keys (${ENDPOINT_KEYS.join(', ')})`, key)
        }
        if (endpoint.payload !== undefined && endpoint.payload !== null) {
          if (!Array.isArray(endpoint.payload) || !endpoint.payload.every(isMapping)) {
            fail(`${eat}.payload`, 'a list of mappings', endpoint.payload)
          }
          const list = endpoint.payload as Record<string, unknown>[]
          list.forEach((item, i) => {
            if (canonicalJson(item) === undefined) fail(`${eat}.payload[${i}]`, 'a mapping of plain JSON values', item)
          })
          // An empty list was falsy in the legacy router, i.e. "no payload condition".
          if (list.length > 0) payload = list
        }
      }
      const name = uniqueName(`${upstream}-${slug(path) || 'root'}`, (n) => routeNames.has(n))
      routeNames.add(name)
      // `:` and `*` are pattern syntax in our paths; a literal legacy path with them needs a regex.
      const match: ImportedRoute['match'] = /[:*]/.test(path) ? { pathRegex: `^${escapeRegex(path)}$` } : { path }
      if (payload) {
        match.methods = [...PAYLOAD_METHODS]
        match.payload = payload
      }
      routes.push({ name, match, upstream })
    }
  }
  const fallback = options.fallbackEndpoints ?? []
  if (!Array.isArray(fallback)) fail('fallbackEndpoints', 'a list of URLs', fallback)
  fallback.forEach((value, i) => {
    const url = typeof value === 'string' ? normalizeUrl(value) : undefined
    if (url === undefined) fail(`fallbackEndpoints[${i}]`, 'an http:// or https:// URL', value)
    if (!endpoints.includes(url!)) endpoints.push(url!)
  })
  // Faithful to the tool: every method is tried on every backend in order until one answers 200,
  // and the query is part of the remembered key. Our own format's safer defaults (any 2xx ends the
  // search, POST/PATCH go to one endpoint, path-only keys) apply to configs written for Switchboard.
  const discovery: ImportedConfig['discovery'] = { endpoints, replay: 'all', successStatuses: [200], keyQuery: true }
  if (ttlSeconds !== undefined) discovery.remember = { ttl: `${ttlSeconds}s` }
  return { upstreams, routes, discovery }
}

/**
 * {@link importLegacyConfig} rendered as YAML in the gateway's format (for `switchboard import`).
 * @example writeFileSync('switchboard.yaml', legacyToYaml(YAML.parse(readFileSync('config.yaml', 'utf8'))))
 */
export function legacyToYaml(raw: unknown, options: ImportLegacyOptions = {}): string {
  const config = importLegacyConfig(raw, options)
  const source = options.file ? ` from ${options.file}` : ''
  return `# Imported${source} (SingleEndpointRouter format) by @switchboard/discovery.\n${stringify(config, { lineWidth: 0 })}`
}

function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** `scheme://host[:port][/path]` without a trailing slash, as the gateway's config normalises targets. */
function normalizeUrl(value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  if (url.search || url.hash || url.username || url.password) return undefined
  return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`
}

/** `127.0.0.1:3000` (with the default port spelled out) plus any base path. */
function urlLabel(normalized: string): string {
  const url = new URL(normalized)
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  return `${url.hostname}-${port}${url.pathname === '/' ? '' : url.pathname}`
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
}

function uniqueName(base: string, taken: (name: string) => boolean): string {
  if (!taken(base)) return base
  for (let i = 2; ; i++) if (!taken(`${base}-${i}`)) return `${base}-${i}`
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
