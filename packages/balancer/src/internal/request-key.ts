// Internal: extracts and hashes the affinity key of a request without allocating.
import type { HeaderRecord, RequestInfo } from '@switchboard/core'
import { hashRange, hashString } from './hash.ts'

/**
 * Where a hash-based strategy finds its key.
 * @example const key: HashKey = { bodyField: 'user.id' }
 */
export type HashKey =
  | { header: string }
  | { cookie: string }
  | { query: string }
  | { clientIp: true }
  | { bodyField: string }

/** Hash of the request's key, or -1 when the request has none. */
export type KeyHasher = (request: RequestInfo) => number

const KINDS = ['header', 'cookie', 'query', 'clientIp', 'bodyField'] as const

/** Validates a {@link HashKey} and compiles it into a hasher. */
export function compileKey(key: unknown, name: string): KeyHasher {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) {
    throw new TypeError(`${name} must be one of { header }, { cookie }, { query }, { clientIp: true }, { bodyField }`)
  }
  const kinds = Object.keys(key)
  if (kinds.length !== 1 || !(KINDS as readonly string[]).includes(kinds[0])) {
    throw new TypeError(`${name} must have exactly one of ${KINDS.join(', ')}`)
  }
  const kind = kinds[0] as (typeof KINDS)[number]
  const value = (key as Record<string, unknown>)[kind]
  if (kind === 'clientIp') {
    if (value !== true) throw new TypeError(`${name}.clientIp must be true`)
    return hashClientIp
  }
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name}.${kind} must be a non-empty string`)
  switch (kind) {
    case 'header': {
      const header = value.toLowerCase()
      return (request) => hashHeader(request.headers, header)
    }
    case 'cookie':
      return (request) => hashCookie(request.headers, value)
    case 'query':
      return (request) => hashQuery(request.target, value)
    case 'bodyField': {
      const path = value.split('.')
      if (path.some((part) => part.length === 0)) throw new TypeError(`${name}.bodyField must be a dotted path such as "user.id"`)
      return (request) => hashBodyField(request.body, path)
    }
  }
}

/** Hash of the client address, -1 when it is empty. */
export function hashClientIp(request: RequestInfo): number {
  const ip = request.clientIp
  return ip ? hashString(ip) : -1
}

function hashHeader(headers: HeaderRecord, name: string): number {
  const value = headers[name]
  if (typeof value === 'string') return value.length === 0 ? -1 : hashString(value)
  if (value !== undefined && value.length > 0) return hashString(value[0])
  return -1
}

function hashCookie(headers: HeaderRecord, name: string): number {
  const value = headers.cookie
  if (typeof value === 'string') return findCookie(value, name) ? hashRange(value, foundStart, foundEnd) : -1
  if (value !== undefined) {
    for (let i = 0; i < value.length; i++) {
      if (findCookie(value[i], name)) return hashRange(value[i], foundStart, foundEnd)
    }
  }
  return -1
}

function hashQuery(target: string, name: string): number {
  const q = target.indexOf('?')
  if (q === -1) return -1
  let pos = q + 1
  const end = target.indexOf('#', pos) === -1 ? target.length : target.indexOf('#', pos)
  while (pos < end) {
    let next = target.indexOf('&', pos)
    if (next === -1 || next > end) next = end
    if (target.startsWith(name, pos)) {
      const after = pos + name.length
      if (after === next) return hashRange(target, next, next) // `?key` with no value
      if (target.charCodeAt(after) === 61 /* = */) return hashRange(target, after + 1, next)
    }
    pos = next + 1
  }
  return -1
}

function hashBodyField(body: unknown, path: readonly string[]): number {
  let value = body
  for (let i = 0; i < path.length; i++) {
    if (typeof value !== 'object' || value === null) return -1
    value = (value as Record<string, unknown>)[path[i]]
  }
  if (typeof value === 'string') return hashString(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return hashString(String(value))
  return -1
}

// Scratch results of findCookie, so the lookup returns two positions without allocating.
let foundStart = 0
let foundEnd = 0

/** Finds cookie `name` in a `Cookie` header (RFC 6265 §4.2.1: `a=1; b=2`); sets foundStart/foundEnd. */
export function findCookie(header: string, name: string): boolean {
  let pos = 0
  const length = header.length
  while (pos < length) {
    while (pos < length && (header.charCodeAt(pos) === 32 || header.charCodeAt(pos) === 9)) pos++
    let next = header.indexOf(';', pos)
    if (next === -1) next = length
    if (header.startsWith(name, pos) && header.charCodeAt(pos + name.length) === 61 /* = */) {
      let start = pos + name.length + 1
      let end = next
      while (end > start && header.charCodeAt(end - 1) === 32) end--
      if (end - start >= 2 && header.charCodeAt(start) === 34 && header.charCodeAt(end - 1) === 34) {
        start++
        end--
      }
      foundStart = start
      foundEnd = end
      return true
    }
    pos = next + 1
  }
  return false
}

/** Start of the value found by the last successful {@link findCookie}. */
export function cookieStart(): number {
  return foundStart
}

/** End of the value found by the last successful {@link findCookie}. */
export function cookieEnd(): number {
  return foundEnd
}
