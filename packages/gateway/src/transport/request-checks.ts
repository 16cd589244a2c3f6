import type { IncomingMessage } from 'node:http'
import { normalizePath } from '@switchboard/matcher'

/** The request target split for routing. */
export interface ParsedTarget {
  /** Origin-form target (absolute-form converted). */
  readonly target: string
  /** Raw path part. */
  readonly path: string
  /** Query including `?`, or `''`. */
  readonly query: string
  /** Normalised path (dot segments, escapes, `;params` resolved) used for routing and auth. */
  readonly normalized: string
}

/** The request target split for routing, or the reason it must be refused with 400. */
export function parseTarget(raw: string): ParsedTarget | string {
  let target = raw
  if (raw.charCodeAt(0) !== 47 /* / */) {
    // RFC 9112 §3.2.2: accept absolute-form, but never connect to the host it names.
    const origin = absoluteFormPath(raw)
    if (origin === undefined) return 'Invalid request target'
    target = origin
  }
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const normalized = normalizePath(path)
  if (normalized === undefined) return 'Invalid request path'
  return { target, path, query: q === -1 ? '' : target.slice(q), normalized }
}

// RFC 3986 §3.2.2 authority as RFC 9110 §7.2 uses it for Host: an IP-literal or a reg-name
// (unreserved, pct-encoded, sub-delims), then an optional port. No "/", "?", "#", "@" or spaces, so
// a Host can never smuggle path bytes into a cache or discovery key.
const HOST_SIMPLE = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]{1,5})?$/

/**
 * Request-head checks the runtime's parser may not do (Bun and Deno are more lenient than Node):
 * one valid Host (RFC 9112 §3.2), no Transfer-Encoding on HTTP/1.0 (§6.1), no more than
 * `maxHeaderCount` fields. Returns `[status, reason]` to refuse with, or undefined.
 */
export function checkRequestHead(req: IncomingMessage, maxHeaderCount: number): [400 | 431, string] | undefined {
  const raw = req.rawHeaders
  if (raw.length / 2 > maxHeaderCount) return [431, `More than ${maxHeaderCount} header fields`]
  let hosts = 0
  let host: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts++
      host = raw[i + 1]
    }
  }
  if (hosts > 1) return [400, 'Duplicate Host header']
  if (host === undefined) {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) return [400, 'Missing Host header']
  } else if (host !== lastGoodHost) {
    if (!HOST_SIMPLE.test(host) || !validPort(host)) return [400, 'Invalid Host header']
    // Clients send the same Host over and over: remember the last valid one.
    lastGoodHost = host
  }
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
    return [400, 'Transfer-Encoding is not allowed in HTTP/1.0']
  }
  return undefined
}


let lastGoodHost = ''

function validPort(host: string): boolean {
  const colon = host.lastIndexOf(':')
  if (colon === -1 || host.endsWith(']')) return true
  const port = Number(host.slice(colon + 1))
  return Number.isInteger(port) && port >= 1 && port <= 65535
}

/** Origin-form path of an absolute-form target (`http://h/p?q` → `/p?q`), or undefined when invalid. */
function absoluteFormPath(raw: string): string | undefined {
  const m = /^https?:\/\/[^/?#\s]+([/?][^#\s]*)?$/i.exec(raw)
  if (!m) return undefined
  const rest = m[1] ?? '/'
  return rest.startsWith('?') ? `/${rest}` : rest
}
