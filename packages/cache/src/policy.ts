import type { HeaderRecord } from '@switchboard/core'
import { deltaSeconds, parseCacheControl, type CacheDirectives } from './cache-control.ts'

/**
 * RFC 9110 §15.1: statuses a cache may store with heuristic freshness (206 deliberately left out).
 * @example HEURISTICALLY_CACHEABLE.has(404) // true
 */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
])

/**
 * Final statuses whose caching semantics this cache implements (RFC 9110 §15, minus 206 and 304,
 * which need range-aware storage or only refresh stored responses). RFC 9111 §5.2.2.3: a response
 * with `must-understand` is stored only when its status is in this set, and then its `no-store` is
 * ignored.
 * @example UNDERSTOOD_STATUSES.has(299) // false
 */
export const UNDERSTOOD_STATUSES: ReadonlySet<number> = new Set([
  200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410,
  411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
])

/** Upper bound of heuristic freshness (10% of the time since `Last-Modified`): 24 h. @example freshnessLifetime(response, { heuristicCapMs: DEFAULT_HEURISTIC_CAP_MS / 24 }) */
export const DEFAULT_HEURISTIC_CAP_MS: number = 24 * 60 * 60 * 1000

/** The parts of a request the policy looks at. @example const request: PolicyRequest = { method: 'GET', headers: {} } */
export interface PolicyRequest {
  /** Upper-case method. */
  readonly method: string
  /** Lowercase header record. */
  readonly headers: HeaderRecord
}

/**
 * A stored (or about to be stored) response and when it was fetched.
 * @example const response: PolicyResponse = { status: 200, headers: {}, requestTime: t0, responseTime: t1 }
 */
export interface PolicyResponse {
  readonly status: number
  /** Lowercase header record. */
  readonly headers: HeaderRecord
  /** When the request that produced it was sent (ms since epoch). */
  readonly requestTime: number
  /** When its head arrived (ms since epoch). */
  readonly responseTime: number
}

/** Tuning of the freshness computation. @example freshnessLifetime(response, { defaultTtlMs: 60_000 }) */
export interface FreshnessOptions {
  /**
   * Freshness used when the upstream gives none (no `s-maxage`, `max-age` or `Expires`) and the
   * response is storable; replaces the `Last-Modified` heuristic. @default undefined (heuristic)
   */
  defaultTtlMs?: number
  /** Cap of the heuristic lifetime. @default DEFAULT_HEURISTIC_CAP_MS (24 h) */
  heuristicCapMs?: number
}

/**
 * Whether a *shared* cache may store `response` to `request` (RFC 9111 §3, §3.5). Only `GET` is
 * stored; `HEAD` is answered from stored `GET` responses; statuses outside 200–599, 206 and 304
 * never are, nor `must-understand` responses with a status outside {@link UNDERSTOOD_STATUSES}.
 * Beyond the RFC, responses carrying `Set-Cookie` or `Vary: *` are never stored (the first would
 * leak a session, the second can never be reused); the middleware's `storeSetCookie: 'strip'`
 * removes the cookie before asking.
 * @example isStorable({ method: 'GET', headers: {} }, { status: 200, headers: { 'cache-control': 'max-age=60' }, requestTime: 0, responseTime: 0 }) // true
 */
export function isStorable(request: PolicyRequest, response: PolicyResponse): boolean {
  if (request.method !== 'GET') return false
  const { status, headers } = response
  // RFC 9111 §3: only final statuses; anything outside 200–599 is garbage, never stored.
  if (!Number.isInteger(status) || status < 200 || status > 599) return false
  // RFC 9111 §3.3/§3.4: 206 needs range-aware storage and combining, which this cache does not do;
  // 304 is only a refresh of something already stored (§4.3.4).
  if (status === 206 || status === 304) return false
  const reqCc = parseCacheControl(request.headers['cache-control'])
  if (reqCc['no-store']) return false
  const cc = parseCacheControl(response.headers['cache-control'])
  // RFC 9111 §3, §5.2.2.3: with must-understand, store only statuses we implement, and then
  // ignore no-store (it is there for caches that do not understand must-understand).
  const mustUnderstand = cc['must-understand'] !== undefined
  if (mustUnderstand && !UNDERSTOOD_STATUSES.has(status)) return false
  // RFC 9111 §5.2.2.5 / §5.2.2.7: shared caches store neither no-store nor private responses.
  if ((cc['no-store'] && !mustUnderstand) || cc.private) return false
  if (request.headers.authorization !== undefined && !authorizationAllowed(cc)) return false
  if (headers['set-cookie'] !== undefined) return false
  if (varyNames(headers) === '*') return false
  // RFC 9111 §3: something must make the response reusable.
  return (
    cc.public === true ||
    cc['max-age'] !== undefined ||
    cc['s-maxage'] !== undefined ||
    headers.expires !== undefined ||
    HEURISTICALLY_CACHEABLE.has(status)
  )
}

/**
 * RFC 9111 §3.5: a shared cache may store and reuse a response to a request carrying
 * `Authorization` only when `public`, `s-maxage` or `must-revalidate` allows it.
 * @example authorizationAllowed(parseCacheControl('public, max-age=60')) // true
 */
export function authorizationAllowed(directives: CacheDirectives): boolean {
  return directives.public === true || directives['s-maxage'] !== undefined || directives['must-revalidate'] !== undefined
}

/**
 * Freshness lifetime in ms for a shared cache (RFC 9111 §4.2.1): `s-maxage`, then `max-age`, then
 * `Expires − Date`, then `defaultTtlMs`, then 10% of `Date − Last-Modified` (capped) for
 * heuristically cacheable statuses or `public` responses; otherwise 0.
 * @example freshnessLifetime({ status: 200, headers: { 'cache-control': 's-maxage=5, max-age=60' }, requestTime: 0, responseTime: 0 }) // 5000
 */
export function freshnessLifetime(response: PolicyResponse, options: FreshnessOptions = {}): number {
  const cc = parseCacheControl(response.headers['cache-control'])
  const sMaxAge = deltaSeconds(cc, 's-maxage')
  if (sMaxAge !== undefined) return sMaxAge
  const maxAge = deltaSeconds(cc, 'max-age')
  if (maxAge !== undefined) return maxAge
  const date = parseDate(first(response.headers.date)) ?? response.responseTime
  const expiresField = response.headers.expires
  if (expiresField !== undefined) {
    const expires = parseDate(first(expiresField))
    // RFC 9111 §5.3: an invalid Expires (such as "0") means "already expired".
    return expires === undefined ? 0 : Math.max(0, expires - date)
  }
  if (!HEURISTICALLY_CACHEABLE.has(response.status) && cc.public !== true) return 0
  if (options.defaultTtlMs !== undefined) return options.defaultTtlMs
  const lastModified = parseDate(first(response.headers['last-modified']))
  if (lastModified === undefined) return 0
  // RFC 9111 §4.2.2: a typical heuristic is 10% of the time since the last modification.
  return Math.min(options.heuristicCapMs ?? DEFAULT_HEURISTIC_CAP_MS, Math.max(0, (date - lastModified) / 10))
}

/**
 * Current age in ms (RFC 9111 §4.2.3), including the upstream's `Age` header and the time the
 * response spent in transit and in the cache.
 * @example currentAge({ status: 200, headers: { age: '10' }, requestTime: 0, responseTime: 0 }, 5000) // 15000
 */
export function currentAge(response: PolicyResponse, now: number): number {
  const ageValue = ageSeconds(response.headers.age) * 1000
  const dateValue = parseDate(first(response.headers.date)) ?? response.responseTime
  const apparentAge = Math.max(0, response.responseTime - dateValue)
  const responseDelay = Math.max(0, response.responseTime - response.requestTime)
  const correctedAgeValue = ageValue + responseDelay
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue)
  const residentTime = Math.max(0, now - response.responseTime)
  return correctedInitialAge + residentTime
}

/** How long a stale response may still be served (RFC 5861), in ms. @example staleWindows(headers).ifErrorMs */
export interface StaleWindows {
  /** `stale-while-revalidate`: serve stale while refreshing in the background. */
  readonly whileRevalidateMs: number
  /** `stale-if-error`: serve stale when the upstream fails. */
  readonly ifErrorMs: number
}

/**
 * The `stale-while-revalidate` / `stale-if-error` windows of a response; both are 0 when
 * `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache` forbid serving stale (RFC 9111
 * §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10).
 * @example staleWindows({ 'cache-control': 'max-age=1, stale-while-revalidate=30' }) // { whileRevalidateMs: 30000, ifErrorMs: 0 }
 */
export function staleWindows(headers: HeaderRecord): StaleWindows {
  const cc = parseCacheControl(headers['cache-control'])
  if (mustRevalidate(cc) || cc['no-cache'] !== undefined) return { whileRevalidateMs: 0, ifErrorMs: 0 }
  return {
    whileRevalidateMs: deltaSeconds(cc, 'stale-while-revalidate') ?? 0,
    ifErrorMs: deltaSeconds(cc, 'stale-if-error') ?? 0,
  }
}

/** What a cache may do with a stored response for a given request. @example const serveAsIs = assessStored(request, stored, Date.now()).usability === 'fresh' */
export type Usability =
  /** Fresh: serve it. */
  | 'fresh'
  /** Stale inside `stale-while-revalidate`: serve it and refresh in the background. */
  | 'stale-while-revalidate'
  /** Stale but the client accepts it (`max-stale`): serve it. */
  | 'stale'
  /** Must be validated with the upstream before use (stale, `no-cache`, client `no-cache` …). */
  | 'revalidate'
  /** Must not be used for this request at all (RFC 9111 §3.5 `Authorization`). */
  | 'unusable'

/** The verdict of {@link assessStored}. @example const { usability, ageMs } = assessStored(req, res, now) */
export interface Assessment {
  readonly usability: Usability
  /** Current age in ms. */
  readonly ageMs: number
  /** Freshness lifetime in ms. */
  readonly lifetimeMs: number
  /** True when a failed revalidation may fall back to this response (`stale-if-error`). */
  readonly staleIfError: boolean
}

/**
 * Decides whether a stored response can answer `request` at `now` (RFC 9111 §4, §5.2.1).
 * Request directives: `no-cache` (and `Pragma: no-cache` without `Cache-Control`) and
 * `max-age=0` force revalidation; `max-age=N` and `min-fresh=N` tighten freshness; `max-stale[=N]`
 * accepts stale responses unless the response says `must-revalidate`. `no-store` and
 * `only-if-cached` are the caller's business (they change storing and forwarding, not reuse).
 * @example assessStored(request, stored, Date.now()).usability // 'fresh'
 */
export function assessStored(
  request: PolicyRequest,
  stored: PolicyResponse,
  now: number,
  options: FreshnessOptions = {},
): Assessment {
  const cc = parseCacheControl(stored.headers['cache-control'])
  const ageMs = currentAge(stored, now)
  const lifetimeMs = freshnessLifetime(stored, options)
  const windows = staleWindows(stored.headers)
  const staleness = ageMs - lifetimeMs
  const staleIfError = windows.ifErrorMs > 0 && staleness <= windows.ifErrorMs
  const verdict = (usability: Usability): Assessment => ({ usability, ageMs, lifetimeMs, staleIfError })
  if (request.headers.authorization !== undefined && !authorizationAllowed(cc)) return verdict('unusable')
  // RFC 9111 §5.2.2.4: no-cache (qualified or not, we stay conservative) means validate every time.
  if (cc['no-cache'] !== undefined) return verdict('revalidate')
  const reqCc = parseCacheControl(request.headers['cache-control'])
  if (reqCc['no-cache'] !== undefined) return verdict('revalidate')
  if (request.headers['cache-control'] === undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(first(request.headers.pragma) ?? '')) {
    return verdict('revalidate') // RFC 9111 §5.4: Pragma only counts without Cache-Control
  }
  const reqMaxAge = deltaSeconds(reqCc, 'max-age')
  // Decision: max-age=0 is the common "validate before use" signal, so treat it like no-cache.
  if (reqMaxAge !== undefined && (reqMaxAge === 0 || Math.floor(ageMs / 1000) * 1000 > reqMaxAge)) {
    return verdict('revalidate')
  }
  const minFresh = deltaSeconds(reqCc, 'min-fresh')
  if (minFresh !== undefined && lifetimeMs - ageMs < minFresh) return verdict('revalidate')
  if (lifetimeMs > ageMs) return verdict('fresh')
  if (mustRevalidate(cc)) return verdict('revalidate')
  const maxStale = reqCc['max-stale']
  if (maxStale === true || (maxStale !== undefined && staleness <= (deltaSeconds(reqCc, 'max-stale') ?? 0))) {
    return verdict('stale')
  }
  if (windows.whileRevalidateMs > 0 && staleness <= windows.whileRevalidateMs) return verdict('stale-while-revalidate')
  return verdict('revalidate')
}

/**
 * The request header names a response varies on, lowercased; `'*'` for `Vary: *`.
 * @example varyNames({ vary: 'Accept-Encoding, Accept-Language' }) // ['accept-encoding', 'accept-language']
 */
export function varyNames(headers: HeaderRecord): string[] | '*' {
  const field = headers.vary
  if (field === undefined) return []
  const names = (typeof field === 'string' ? field : field.join(','))
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean)
  if (names.includes('*')) return '*'
  return [...new Set(names)].sort()
}

/**
 * The secondary cache key of `requestHeaders` for the given `Vary` names (RFC 9111 §4.1): each
 * listed header's value, normalised (whitespace around commas collapsed; `Accept*` values
 * lowercased, `Accept-Encoding` tokens sorted). Returns `undefined` for `Vary: *`, which never
 * matches.
 * @example varyKey(['accept-encoding'], { 'accept-encoding': 'br, GZIP' }) === varyKey(['accept-encoding'], { 'accept-encoding': 'gzip,br' })
 */
export function varyKey(names: readonly string[] | '*', requestHeaders: HeaderRecord): string | undefined {
  if (names === '*') return undefined
  return names.map((name) => normaliseHeader(name, requestHeaders[name])).join('&')
}

/**
 * True when a client's conditional request (`If-None-Match`, else `If-Modified-Since`) is
 * satisfied by the stored response, so the cache may answer 304 (RFC 9110 §13.1, §13.2.2; RFC 9111
 * §4.3.2). `If-None-Match` uses weak comparison and accepts `*` and lists.
 * @example notModified({ 'if-none-match': 'W/"a", "b"' }, { etag: '"a"' }) // true
 */
export function notModified(requestHeaders: HeaderRecord, storedHeaders: HeaderRecord): boolean {
  const inm = first(requestHeaders['if-none-match'])
  if (inm !== undefined) {
    if (inm.trim() === '*') return true
    const etag = first(storedHeaders.etag)
    if (etag === undefined) return false
    const own = opaqueTag(etag)
    return entityTags(inm).some((tag) => opaqueTag(tag) === own)
  }
  const ims = parseDate(first(requestHeaders['if-modified-since']))
  if (ims === undefined) return false
  const modified = parseDate(first(storedHeaders['last-modified'])) ?? parseDate(first(storedHeaders.date))
  return modified !== undefined && modified <= ims
}

/**
 * Parses an HTTP date (IMF-fixdate and the obsolete forms `Date.parse` understands), in ms.
 * @example parseDate('Sun, 06 Nov 1994 08:49:37 GMT') // 784111777000
 */
export function parseDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * RFC 9111 §5.1: a list-based `Age` (`10, 20`, or repeated fields) counts by its first member; a
 * first member that is not a non-negative integer (`-1`, `1.5`, `abc`, empty) makes the cache
 * ignore the field (age 0 from it). §1.2.2: values past 2^31 are capped at 2^31.
 */
function ageSeconds(field: string | string[] | undefined): number {
  if (field === undefined) return 0
  const text = Array.isArray(field) ? (field[0] ?? '') : field
  const member = text.split(',')[0].trim()
  if (!/^\d+$/.test(member)) return 0
  return Math.min(Number(member), MAX_AGE_SECONDS)
}

const MAX_AGE_SECONDS = 2 ** 31

/**
 * True when a shared cache must never serve the response stale, not even with `stale-if-error` or
 * a client's `max-stale`, and must answer 504 when it cannot revalidate: `must-revalidate`
 * (RFC 9111 §5.2.2.2), `proxy-revalidate` (§5.2.2.8) or `s-maxage` (§5.2.2.10, which implies
 * `proxy-revalidate` for shared caches).
 * @example mustRevalidate(parseCacheControl('s-maxage=60')) // true
 */
export function mustRevalidate(cc: CacheDirectives): boolean {
  // RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate for shared caches.
  return cc['must-revalidate'] !== undefined || cc['proxy-revalidate'] !== undefined || cc['s-maxage'] !== undefined
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

const CASE_INSENSITIVE = new Set(['accept', 'accept-encoding', 'accept-language', 'accept-charset'])

function normaliseHeader(name: string, value: string | string[] | undefined): string {
  // Absent and empty must differ: "-" for absent, "=" + value otherwise.
  if (value === undefined) return `${encodeURIComponent(name)}-`
  let text = (typeof value === 'string' ? value : value.join(',')).trim().replace(/\s*,\s*/g, ',').replace(/\s+/g, ' ')
  if (CASE_INSENSITIVE.has(name)) text = text.toLowerCase()
  if (name === 'accept-encoding') text = text.split(',').filter(Boolean).sort().join(',')
  return `${encodeURIComponent(name)}=${encodeURIComponent(text)}`
}

function entityTags(list: string): string[] {
  return list.match(/(?:W\/)?"[^"]*"/g) ?? []
}

function opaqueTag(tag: string): string {
  const t = tag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}
