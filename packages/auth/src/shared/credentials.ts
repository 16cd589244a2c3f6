import type { Exchange } from '@switchboard/core'

const encoder = new TextEncoder()

/** One request header as a single string (`undefined` when absent or empty). */
export function headerValue(ex: Exchange, name: string): string | undefined {
  const value = ex.request.headers[name]
  const text = Array.isArray(value) ? value.join(', ') : value
  if (text === undefined) return undefined
  const trimmed = text.trim()
  return trimmed === '' ? undefined : trimmed
}

/**
 * The credential of an `Authorization: <scheme> <credentials>` header (RFC 9110 §11.4), scheme
 * compared case-insensitively. `undefined` when the header uses another scheme (another
 * authenticator may own it); `''` when the scheme matches but nothing follows.
 */
export function schemeCredential(value: string | undefined, scheme: string): string | undefined {
  if (value === undefined) return undefined
  const space = value.search(/[ \t]/)
  const name = space === -1 ? value : value.slice(0, space)
  if (name.toLowerCase() !== scheme) return undefined
  return space === -1 ? '' : value.slice(space + 1).trim()
}

/** Decodes one query-string component the way forms encode it (`+` is a space); malformed escapes stay as written. */
export function decodeQueryComponent(text: string): string {
  const spaced = text.includes('+') ? text.replace(/\+/g, ' ') : text
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

/** The first value of query parameter `name` in `query` (with or without the leading `?`). */
export function queryValue(query: string, name: string): string | undefined {
  if (query === '' || query === '?') return undefined
  const text = query.startsWith('?') ? query.slice(1) : query
  for (const pair of text.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const key = decodeQueryComponent(eq === -1 ? pair : pair.slice(0, eq))
    if (key === name) return eq === -1 ? '' : decodeQueryComponent(pair.slice(eq + 1))
  }
  return undefined
}

/**
 * `target` without any query parameter named in `names` (every occurrence, names decoded as
 * {@link queryValue} decodes them, so `api%5Fkey` is `api_key`); other parameters stay byte for byte.
 */
export function removeQueryParams(target: string, names: ReadonlySet<string>): string {
  const q = target.indexOf('?')
  if (q === -1 || names.size === 0) return target
  const hash = target.indexOf('#', q)
  const query = target.slice(q + 1, hash === -1 ? undefined : hash)
  const kept = query.split('&').filter((pair) => {
    if (pair === '') return false
    const eq = pair.indexOf('=')
    return !names.has(decodeQueryComponent(eq === -1 ? pair : pair.slice(0, eq)))
  })
  const rest = hash === -1 ? '' : target.slice(hash)
  return `${target.slice(0, q)}${kept.length === 0 ? '' : `?${kept.join('&')}`}${rest}`
}

/** The value of cookie `name` in a `Cookie` header (RFC 6265 §5.4), quotes removed. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue
    const value = part.slice(eq + 1).trim()
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  }
  return undefined
}

/** A `Cookie` header without the cookies in `names`; `undefined` when nothing is left. */
export function removeCookies(header: string, names: ReadonlySet<string>): string | undefined {
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => {
      if (part === '') return false
      const eq = part.indexOf('=')
      return !names.has((eq === -1 ? part : part.slice(0, eq)).trim())
    })
  return kept.length === 0 ? undefined : kept.join('; ')
}

/**
 * True when `a` and `b` hold the same bytes. Every byte is looked at, with no early exit on the
 * first difference, so the time taken says nothing about how much of a secret matched. Lengths are
 * not secret here (digests and hash outputs have a fixed size).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/** SHA-256 of the UTF-8 bytes of `text`, through Web Crypto. */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** Bytes of a hex string (even length, validated by the caller). */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** An RFC 9110 §5.6.4 quoted-string. */
export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`
}

/** A realm must be printable text: it is echoed in `WWW-Authenticate`. */
export const REALM_PATTERN: RegExp = /^[\x20-\x7e]{1,200}$/
