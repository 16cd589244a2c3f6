import type { Balancer, Endpoint, HeaderRecord } from '@switchboard/core'
import { shortHash } from './internal/hash.ts'
import { ListState } from './internal/list-state.ts'
import { checkOptions, optBoolean, optDuration, optEnum, optString } from './internal/options.ts'
import { cookieEnd, cookieStart, findCookie } from './internal/request-key.ts'
import { roundRobin } from './round-robin.ts'

/** Options of {@link stickyCookie}. */
export interface StickyCookieOptions {
  /** Cookie name. @default 'sb_upstream' */
  name?: string
  /** Strategy used when the cookie is missing or names no current candidate. @default roundRobin() */
  fallback?: Balancer
  /** Cookie lifetime (`Max-Age`), as milliseconds or a duration such as `'1h'`; absent: a session cookie. @default undefined */
  ttlMs?: number | string
  /** Cookie `Path`. @default '/' */
  path?: string
  /** Cookie `Domain`; absent: host-only. @default undefined */
  domain?: string
  /** Adds `HttpOnly`. @default true */
  httpOnly?: boolean
  /** Adds `Secure`. @default false */
  secure?: boolean
  /** `SameSite` attribute; `None` needs `secure: true`. @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None'
}

/**
 * Default name of the sticky cookie.
 * @example request.headers.cookie?.includes(`${DEFAULT_STICKY_COOKIE}=`)
 */
export const DEFAULT_STICKY_COOKIE = 'sb_upstream'

// RFC 6265 §4.1.1: cookie-name is a token; cookie attribute values must not contain ';' or CTLs.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const ATTRIBUTE = /^[\x20-\x3a\x3c-\x7e]+$/

/**
 * Session affinity by cookie: the gateway sets a cookie naming the endpoint that served the first
 * request (an 8-hex-digit hash of the endpoint id, never the URL), and later requests carrying it
 * go back there. Without the cookie, or when its endpoint left the candidates, the `fallback`
 * strategy picks and the cookie is re-issued.
 * @example stickyCookie({ name: 'route', fallback: leastConnections(), ttlMs: '1h', secure: true })
 */
export const stickyCookie = (options: StickyCookieOptions = {}): Balancer => {
  const o = checkOptions(options, ['name', 'fallback', 'ttlMs', 'path', 'domain', 'httpOnly', 'secure', 'sameSite'])
  const name = optString(o.name, 'name', DEFAULT_STICKY_COOKIE)
  if (!TOKEN.test(name)) throw new RangeError('name must be a cookie token (letters, digits, !#$%&\'*+-.^_`|~)')
  if (o.fallback !== undefined && (typeof o.fallback !== 'object' || o.fallback === null || typeof (o.fallback as Balancer).pick !== 'function')) {
    throw new TypeError('fallback must be a balancer (an object with pick())')
  }
  const fallback = (o.fallback as Balancer | undefined) ?? roundRobin()
  const ttlMs = optDuration(o.ttlMs, 'ttlMs')
  const path = optString(o.path, 'path', '/')
  if (!ATTRIBUTE.test(path)) throw new RangeError('path must be printable ASCII without ";"')
  const domain = o.domain === undefined ? undefined : optString(o.domain, 'domain', '')
  if (domain !== undefined && !ATTRIBUTE.test(domain)) throw new RangeError('domain must be printable ASCII without ";"')
  const httpOnly = optBoolean(o.httpOnly, 'httpOnly', true)
  const secure = optBoolean(o.secure, 'secure', false)
  const sameSite = optEnum(o.sameSite, 'sameSite', ['Strict', 'Lax', 'None'], 'Lax')
  if (sameSite === 'None' && !secure) throw new RangeError('sameSite "None" requires secure: true')

  let attributes = `; Path=${path}`
  if (domain !== undefined) attributes += `; Domain=${domain}`
  if (ttlMs !== undefined) attributes += `; Max-Age=${Math.floor(ttlMs / 1000)}`
  if (httpOnly) attributes += '; HttpOnly'
  if (secure) attributes += '; Secure'
  attributes += `; SameSite=${sameSite}`

  // Per endpoint: its cookie value (hash of the id) and the full Set-Cookie line, computed once.
  const values = new WeakMap<Endpoint, number>()
  const valueOf = (endpoint: Endpoint): number => {
    let value = values.get(endpoint)
    if (value === undefined) {
      value = Number.parseInt(shortHash(endpoint.id), 16)
      values.set(endpoint, value)
    }
    return value
  }
  const lists = new ListState((candidates) => {
    const byValue = new Map<number, number>()
    for (let i = candidates.length - 1; i >= 0; i--) byValue.set(valueOf(candidates[i]), i)
    return byValue
  })

  return {
    name: 'sticky-cookie',
    pick(candidates, request) {
      if (candidates.length === 0) return undefined
      const value = cookieValue(request.headers, name)
      if (value >= 0) {
        const index = lists.get(candidates).get(value)
        if (index !== undefined) return candidates[index]
      }
      return fallback.pick(candidates, request)
    },
    responseHeaders(endpoint, request) {
      const own = valueOf(endpoint)
      // Re-issue when missing or pointing elsewhere; with a TTL, refresh it on every response.
      if (ttlMs === undefined && cookieValue(request.headers, name) === own) return fallback.responseHeaders?.(endpoint, request)
      const extra = fallback.responseHeaders?.(endpoint, request)
      const line = `${name}=${own.toString(16).padStart(8, '0')}${attributes}`
      return extra === undefined ? { 'set-cookie': line } : { ...extra, 'set-cookie': line }
    },
  }
}

/** The cookie's 8 hex digits as a number, -1 when absent or malformed. Allocates nothing. */
function cookieValue(headers: HeaderRecord, name: string): number {
  const header = headers.cookie
  if (typeof header === 'string') return findCookie(header, name) ? parseHex(header) : -1
  if (header !== undefined) {
    for (let i = 0; i < header.length; i++) if (findCookie(header[i], name)) return parseHex(header[i])
  }
  return -1
}

function parseHex(header: string): number {
  const start = cookieStart()
  if (cookieEnd() - start !== 8) return -1
  let value = 0
  for (let i = start; i < start + 8; i++) {
    const c = header.charCodeAt(i)
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (digit < 0) return -1
    value = value * 16 + digit
  }
  return value
}
