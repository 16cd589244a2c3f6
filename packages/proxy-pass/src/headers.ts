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
  /**
   * Whether the client's own forwarding headers are believed (it is a trusted proxy): then its
   * `X-Forwarded-For`/`Forwarded` are appended to and its proto/host/port/prefix kept; otherwise
   * all of them (and `X-Real-IP`) are dropped and ours set.
   */
  trusted: boolean
  /** Value for `X-Forwarded-Port`: the local port the client connected to. */
  port: string | undefined
  /** Also emit an RFC 7239 `Forwarded` element. */
  forwardedHeader: boolean
}

/**
 * Whether `trustForwarded` trusts `clientIp` (no IP, no trust).
 * @example isTrusted(undefined, '10.0.0.1') // false
 */
export function isTrusted(trust: ((clientIp: string) => boolean) | undefined, clientIp: string | undefined): boolean {
  return trust !== undefined && clientIp !== undefined && clientIp !== '' && trust(clientIp) === true
}

// RFC 9110 §7.6.1: fields that only concern one connection, never forwarded in either direction.
// Proxy-Authorization / Proxy-Authenticate are credentials for the proxy itself (RFC 9110 §11.7):
// a reverse proxy consumes them, forwarding them would leak the client's proxy credentials.
// Expect is answered by the gateway (100-continue) and undici refuses to send it.
const HOP_BY_HOP_REQUEST = new Set([
  ...HOP_BY_HOP_FIELDS,
  'expect',
])

// Forwarding fields the gateway owns. From an untrusted client all are dropped (not spoofable);
// from a trusted proxy XFF/Forwarded are appended to and the rest kept.
const XFF = 1
const FORWARDED = 2
const KEEP_IF_TRUSTED = 3
const PROTO = 4
const HOST = 5
const PORT = 6
const FORWARDING = new Map<string, number>([
  ['x-forwarded-for', XFF],
  ['forwarded', FORWARDED],
  ['x-forwarded-proto', PROTO],
  ['x-forwarded-host', HOST],
  ['x-forwarded-port', PORT],
  ['x-forwarded-prefix', KEEP_IF_TRUSTED],
  ['x-real-ip', KEEP_IF_TRUSTED],
])

const HOP_BY_HOP_RESPONSE = HOP_BY_HOP_FIELDS

// `Connection` values that list no field beyond the hop-by-hop ones, as peers usually spell them.
const NO_TOKENS = new Set(['keep-alive', 'Keep-Alive', 'close', 'Close'])

// Listing these in `Connection` must not break framing or routing (hop-by-hop header abuse).
const PROTECTED = new Set(['host', 'content-length'])

/** Lowercased field names listed in `Connection` values, minus the protected ones. */
function connectionTokens(values: string[] | undefined): Set<string> | undefined {
  if (values === undefined) return undefined
  let tokens: Set<string> | undefined
  for (const value of values) {
    // Nearly every peer sends just `keep-alive` or `close`: both are hop-by-hop already.
    if (value.length <= 10 && NO_TOKENS.has(value)) continue
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
 * @example upstreamHeaders(['Host', 'a.test', 'Connection', 'keep-alive'], { clientIp: '10.0.0.1', proto: 'http', host: 'a.test', via: false, overrides: undefined, bodyLength: undefined, trusted: false, port: undefined, forwardedHeader: false }) // ['Host', 'a.test', 'x-forwarded-for', '10.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'a.test']
 */
export function upstreamHeaders(raw: readonly string[], info: ForwardingInfo): string[] {
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') (connection ??= []).push(raw[i + 1])
  }
  const listed = connectionTokens(connection)
  const overrides = info.overrides
  const trusted = info.trusted
  const out: string[] = []
  let xff: string | undefined
  let forwarded: string | undefined
  let via: string | undefined
  // Bit set of PROTO/HOST/PORT values kept from a trusted proxy.
  let kept = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const lower = name.toLowerCase()
    if (HOP_BY_HOP_REQUEST.has(lower)) continue
    const kind = FORWARDING.get(lower)
    if (kind !== undefined) {
      if (!trusted) continue
      if (kind === XFF) {
        xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`
        continue
      }
      if (kind === FORWARDED) {
        forwarded = forwarded === undefined ? raw[i + 1] : `${forwarded}, ${raw[i + 1]}`
        continue
      }
      if (kind !== KEEP_IF_TRUSTED) kept |= 1 << kind
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
  if ((kept & (1 << PROTO)) === 0 && !overrides?.has('x-forwarded-proto')) out.push('x-forwarded-proto', info.proto)
  if (info.host && (kept & (1 << HOST)) === 0 && !overrides?.has('x-forwarded-host')) out.push('x-forwarded-host', info.host)
  if (info.port && (kept & (1 << PORT)) === 0 && !overrides?.has('x-forwarded-port')) out.push('x-forwarded-port', info.port)
  if (info.forwardedHeader) {
    const element = forwardedElement(info.clientIp, info.host, info.proto)
    forwarded = forwarded === undefined ? element : `${forwarded}, ${element}`
  }
  if (forwarded !== undefined && !overrides?.has('forwarded')) out.push('forwarded', forwarded)
  if (info.via !== false) via = via === undefined ? info.via : `${via}, ${info.via}`
  if (via !== undefined && !overrides?.has('via')) out.push('via', via)
  if (overrides) {
    for (const [name, value] of overrides) {
      if (value !== undefined) out.push(name, value)
    }
  }
  return out
}

// RFC 7230 §3.2.6 token characters; anything else in a Forwarded value needs a quoted-string.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** One RFC 7239 §4 `Forwarded` element: `for=…;host=…;proto=…`. */
function forwardedElement(clientIp: string | undefined, host: string | undefined, proto: string): string {
  // RFC 7239 §6: an IPv6 node is bracketed and therefore quoted; no address is `unknown`.
  let node = clientIp === undefined || clientIp === '' ? 'unknown' : clientIp
  if (node.includes(':')) node = `"[${node}]"`
  let element = `for=${node}`
  if (host) element += `;host=${TOKEN.test(host) ? host : `"${host.replace(/["\\]/g, '\\$&')}"`}`
  return `${element};proto=${proto}`
}

/**
 * Lowercases the keys of user-supplied header overrides once.
 * @example lowerOverrides({ 'X-Env': 'prod' }) // Map { 'x-env' => 'prod' }
 */
export function lowerOverrides(
  headers: Record<string, string | undefined> | undefined,
): Map<string, string | undefined> | undefined {
  if (headers === undefined) return undefined
  const map = new Map<string, string | undefined>()
  for (const name of Object.keys(headers)) map.set(name.toLowerCase(), headers[name])
  return map
}

const HOP_BY_HOP_RESPONSE_SET: ReadonlySet<string> = new Set(HOP_BY_HOP_RESPONSE)

/**
 * Cleans an upstream response head: hop-by-hop fields (and those listed in `Connection`) removed,
 * our `Via` appended, then `extra` set over the upstream's fields. Returns a new record (copying the
 * kept fields costs less than `delete`, which turns the parser's record into a slow dictionary);
 * `headers` itself is left as it was.
 * @example cleanResponseHeaders({ connection: 'keep-alive', 'content-type': 'text/plain' }, '1.1 switchboard', undefined) // { 'content-type': 'text/plain', via: '1.1 switchboard' }
 */
export function cleanResponseHeaders(
  headers: HeaderRecord,
  via: string | false,
  extra: Record<string, string | string[]> | undefined,
): HeaderRecord {
  const connection = headers.connection
  const listed = connection === undefined ? undefined : connectionTokens(typeof connection === 'string' ? [connection] : connection)
  const out: HeaderRecord = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP_RESPONSE_SET.has(name) || listed?.has(name)) continue
    out[name] = value
  }
  // Identical duplicates passed the parser; Node wants one value.
  const length = out['content-length']
  if (Array.isArray(length)) out['content-length'] = length[0]
  if (via !== false) {
    const prior = out.via
    out.via = prior === undefined ? via : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${via}`
  }
  if (extra) {
    for (const name of Object.keys(extra)) out[name.toLowerCase()] = extra[name]
  }
  return out
}
