import { HOP_BY_HOP_FIELDS, type HeaderRecord } from '@switchboard/core'

/** Forwarding facts added to the upstream request. */
export interface ForwardingInfo {
  clientIp: string | undefined
  proto: string
  /** Value for `X-Forwarded-Host`: the client's `Host`, if any. */
  host: string | undefined
  via: string | false
  /** Lowercased overrides (`undefined` removes), applied last. */
  overrides: Map<string, string | undefined> | undefined
  /** Length of a replayed body: replaces the client's framing headers. */
  bodyLength: number | undefined
}

// RFC 9110 §7.6.1: fields that only concern one connection, never forwarded in either direction.
// Proxy-Authorization / Proxy-Authenticate are credentials for the proxy itself (RFC 9110 §11.7):
// a reverse proxy consumes them, forwarding them would leak the client's proxy credentials.
// Expect is answered by the gateway (100-continue) and undici refuses to send it.
const HOP_BY_HOP_REQUEST = new Set([
  ...HOP_BY_HOP_FIELDS,
  'expect',
  // Set by us below; a client-sent value must not survive (not spoofable).
  'x-forwarded-proto',
  'x-forwarded-host',
])

const HOP_BY_HOP_RESPONSE = HOP_BY_HOP_FIELDS

// Listing these in `Connection` must not break framing or routing (hop-by-hop header abuse).
const PROTECTED = new Set(['host', 'content-length'])

/** Lowercased field names listed in `Connection` values, minus the protected ones. */
function connectionTokens(values: string[] | undefined): Set<string> | undefined {
  if (values === undefined) return undefined
  let tokens: Set<string> | undefined
  for (const value of values) {
    for (const raw of value.split(',')) {
      const token = raw.trim().toLowerCase()
      if (token === '' || PROTECTED.has(token)) continue
      ;(tokens ??= new Set()).add(token)
    }
  }
  return tokens
}

/**
 * Builds the flat `[name, value, …]` upstream header list from the client's raw headers:
 * duplicates and case kept, hop-by-hop fields dropped, forwarding headers added, overrides last.
 */
export function upstreamHeaders(raw: readonly string[], info: ForwardingInfo): string[] {
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') (connection ??= []).push(raw[i + 1])
  }
  const listed = connectionTokens(connection)
  const overrides = info.overrides
  const out: string[] = []
  let xff: string | undefined
  let via: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const lower = name.toLowerCase()
    if (HOP_BY_HOP_REQUEST.has(lower)) continue
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`
      continue
    }
    if (lower === 'via') {
      via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`
      continue
    }
    if (listed?.has(lower)) continue
    if (overrides?.has(lower)) continue
    if (info.bodyLength !== undefined && lower === 'content-length') continue
    out.push(name, raw[i + 1])
  }
  if (info.bodyLength !== undefined) out.push('content-length', String(info.bodyLength))
  // A client listing X-Forwarded-For in Connection only drops the earlier hops, never its own IP.
  if (listed?.has('x-forwarded-for')) xff = undefined
  if (info.clientIp) xff = xff === undefined ? info.clientIp : `${xff}, ${info.clientIp}`
  if (xff !== undefined && !overrides?.has('x-forwarded-for')) out.push('x-forwarded-for', xff)
  if (!overrides?.has('x-forwarded-proto')) out.push('x-forwarded-proto', info.proto)
  if (info.host && !overrides?.has('x-forwarded-host')) out.push('x-forwarded-host', info.host)
  if (info.via !== false) via = via === undefined ? info.via : `${via}, ${info.via}`
  if (via !== undefined && !overrides?.has('via')) out.push('via', via)
  if (overrides) {
    for (const [name, value] of overrides) {
      if (value !== undefined) out.push(name, value)
    }
  }
  return out
}

/** Lowercases the keys of user-supplied header overrides once. */
export function lowerOverrides(
  headers: Record<string, string | undefined> | undefined,
): Map<string, string | undefined> | undefined {
  if (headers === undefined) return undefined
  const map = new Map<string, string | undefined>()
  for (const name of Object.keys(headers)) map.set(name.toLowerCase(), headers[name])
  return map
}

/**
 * Cleans an upstream response head in place: hop-by-hop fields (and those listed in
 * `Connection`) removed, our `Via` appended, then `extra` set over the upstream's fields.
 */
export function cleanResponseHeaders(
  headers: HeaderRecord,
  via: string | false,
  extra: Record<string, string | string[]> | undefined,
): HeaderRecord {
  const connection = headers.connection
  if (connection !== undefined) {
    const listed = connectionTokens(typeof connection === 'string' ? [connection] : connection)
    if (listed) for (const name of listed) delete headers[name]
  }
  for (const name of HOP_BY_HOP_RESPONSE) {
    if (headers[name] !== undefined) delete headers[name]
  }
  // Identical duplicates passed the parser; Node wants one value.
  const length = headers['content-length']
  if (Array.isArray(length)) headers['content-length'] = length[0]
  if (via !== false) {
    const prior = headers.via
    headers.via = prior === undefined ? via : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${via}`
  }
  if (extra) {
    for (const name of Object.keys(extra)) headers[name.toLowerCase()] = extra[name]
  }
  return headers
}
