import { HOP_BY_HOP_FIELDS, type GatewayError } from '@switchboard/core'

/** Where the tunnel connects: parsed once per tunnel from `TunnelOptions.target`. */
export interface UpstreamTarget {
  /** True for `https:` / `wss:` targets. */
  readonly secure: boolean
  /** Host name without brackets, for `net.connect` / `tls.connect`. */
  readonly hostname: string
  /** Port number, defaulted from the scheme. */
  readonly port: number
  /** `host[:port]` as it goes into the upstream `Host` header. */
  readonly host: string
  /** Path prefix without a trailing slash (`''` for none). */
  readonly prefix: string
}

/**
 * Parses an endpoint base URL (`http(s)://` or `ws(s)://`, optional path prefix).
 * @example parseTarget('http://127.0.0.1:3000/api').prefix // '/api'
 */
export function parseTarget(target: string | URL): UpstreamTarget {
  let url: URL
  try {
    url = typeof target === 'string' ? new URL(target) : target
  } catch (cause) {
    throw new TypeError(`target must be an absolute http(s) or ws(s) URL, got ${JSON.stringify(String(target))}`, { cause })
  }
  const scheme = url.protocol
  if (scheme !== 'http:' && scheme !== 'https:' && scheme !== 'ws:' && scheme !== 'wss:') {
    throw new TypeError(`target must be an http(s) or ws(s) URL, got ${JSON.stringify(url.href)}`)
  }
  const secure = scheme === 'https:' || scheme === 'wss:'
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { secure, hostname, port, host: url.host, prefix: url.pathname.replace(/\/+$/, '') }
}

/** What forwarding headers need to know about the client side. */
export interface ForwardContext {
  /** The client's address; appended to `X-Forwarded-For`. */
  readonly clientIp: string | undefined
  /** The scheme the client used; sets `X-Forwarded-Proto`. */
  readonly proto: 'http' | 'https'
  /** `Via` entry appended, `false` for none. */
  readonly via: string | false
}

/** Default `Via` entry, the same as proxy-pass. */
export const DEFAULT_VIA: string = '1.1 switchboard'

// RFC 9110 §7.6.1: hop-by-hop fields never cross the proxy (Connection/Upgrade are re-added).
const HOP_BY_HOP: ReadonlySet<string> = new Set([...HOP_BY_HOP_FIELDS, 'content-length', 'http2-settings'])

/**
 * Builds the upstream handshake header list from the client's raw headers the way proxy-pass
 * does: hop-by-hop fields dropped (and any named in `Connection`, except `Host`), the client's
 * `Host` kept (the target's when it sent none), `X-Forwarded-*` and `Via` added, `overrides`
 * applied last. Header case and order of the remaining fields are kept.
 * `keepWebSocketFields` false drops the `Sec-WebSocket-*` fields (frame mode: `ws` makes its own).
 * @example buildUpstreamHeaders(req.rawHeaders, target, { clientIp, proto: 'http', via: DEFAULT_VIA }, {}, true)
 */
export function buildUpstreamHeaders(
  rawHeaders: readonly string[],
  target: UpstreamTarget,
  ctx: ForwardContext,
  overrides: Record<string, string | undefined> | undefined,
  keepWebSocketFields: boolean,
): Array<[string, string]> {
  const named = new Set<string>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() !== 'connection') continue
    for (const token of rawHeaders[i + 1].split(',')) named.add(token.trim().toLowerCase())
  }
  // Listing these in `Connection` must not break routing (hop-by-hop header abuse).
  named.delete('upgrade')
  named.delete('host')
  const out: Array<[string, string]> = []
  let originalHost: string | undefined
  let forwardedFor: string | undefined
  let via: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    const lower = name.toLowerCase()
    const value = rawHeaders[i + 1]
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue
    if (lower === 'host') {
      if (originalHost !== undefined) continue // RFC 9112 §3.2: one Host only
      originalHost = value
    }
    if (lower === 'via') {
      via = via === undefined ? value : `${via}, ${value}`
      continue
    }
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`
      continue
    }
    if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host') continue
    if (!keepWebSocketFields && lower.startsWith('sec-websocket-')) continue
    out.push([name, value])
  }
  if (originalHost === undefined) out.unshift(['Host', target.host])
  if (ctx.clientIp !== undefined && ctx.clientIp !== '') {
    forwardedFor = forwardedFor === undefined ? ctx.clientIp : `${forwardedFor}, ${ctx.clientIp}`
  }
  if (forwardedFor !== undefined) out.push(['X-Forwarded-For', forwardedFor])
  out.push(['X-Forwarded-Proto', ctx.proto])
  if (originalHost !== undefined) out.push(['X-Forwarded-Host', originalHost])
  if (ctx.via !== false) via = via === undefined ? ctx.via : `${via}, ${ctx.via}`
  if (via !== undefined) out.push(['Via', via])
  if (overrides) {
    for (const [name, value] of Object.entries(overrides)) {
      const lower = name.toLowerCase()
      for (let i = out.length - 1; i >= 0; i--) if (out[i][0].toLowerCase() === lower) out.splice(i, 1)
      if (value !== undefined) out.push([name, value])
    }
  }
  return out
}

/**
 * Joins the target prefix and the client's path+query without touching its bytes.
 * @example joinPath('/api', '/chat?room=1') // '/api/chat?room=1'
 */
export function joinPath(prefix: string, path: string): string {
  if (prefix === '') return path === '' ? '/' : path
  return path === '' || path === '/' ? `${prefix}/` : path.startsWith('/') ? prefix + path : `${prefix}/${path}`
}

/**
 * Writes a gateway error as a raw HTTP/1.1 response with `connection: close`, then ends the socket.
 * @example writeErrorResponse(socket, new BadGatewayError({ cause }))
 */
export function writeErrorResponse(
  socket: { writable: boolean; end(chunk: string): unknown; destroyed: boolean },
  error: GatewayError,
): void {
  if (socket.destroyed || !socket.writable) return
  const body = error.toBody()
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? 'Error'}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      'cache-control: no-store\r\n' +
      `content-length: ${byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  )
}

/**
 * True when `req` asks for a WebSocket upgrade (RFC 6455 §4.2.1): `GET`, `Upgrade` naming
 * `websocket` and `Connection` naming `upgrade`. `h2c` and other upgrades give false.
 * @example if (!isWebSocketUpgrade(req)) return socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')
 */
export function isWebSocketUpgrade(req: { method?: string; headers: Record<string, string | string[] | undefined> }): boolean {
  if (req.method !== 'GET') return false
  return hasToken(req.headers.upgrade, 'websocket') && hasToken(req.headers.connection, 'upgrade')
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false
  const joined = Array.isArray(value) ? value.join(',') : value
  for (const part of joined.split(',')) if (part.trim().toLowerCase() === token) return true
  return false
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength
}
