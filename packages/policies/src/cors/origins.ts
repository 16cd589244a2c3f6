/**
 * Origin allow-lists for the `cors` policy, without regular expressions built from config (no
 * ReDoS): an entry is `*`, the literal `null`, an exact origin (`https://app.example.com`,
 * `http://127.0.0.1:5173`), or a pattern whose host may start with `*.` (one or more subdomain
 * labels, never the bare domain) and whose port may be `*` (any port):
 * `https://*.example.com`, `http://localhost:*`, `https://*.example.com:*`.
 */

/** Tests one serialized `Origin` header value against the compiled list. */
export interface OriginMatcher {
  /** True when the list is `*`: the answer does not depend on the origin. */
  readonly any: boolean
  matches(origin: string): boolean
}

/** Reports a bad entry: index in the list, what was expected, what was given. */
export type OriginFail = (index: number, expected: string, got: string) => never

interface Pattern {
  scheme: string
  /** Host after `*.`, lowercase, or the exact host when `subdomains` is false. */
  host: string
  subdomains: boolean
  /** Port digits, `''` for the scheme's default port, `*` for any. */
  port: string
}

const EXPECTED = 'an origin such as https://app.example.com, a pattern such as https://*.example.com or http://localhost:*, null, or *'
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' }
// A serialized origin as browsers send it (RFC 6454 §6.2): lowercase scheme and host, no default
// port. Linear: no nested or overlapping quantifiers.
const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$/
const MAX_ORIGIN_LENGTH = 2048

/** Compiles an origin list; `fail` is called for the first bad entry. */
export function compileOrigins(list: readonly string[], fail: OriginFail): OriginMatcher {
  const exact = new Set<string>()
  const patterns: Pattern[] = []
  let any = false
  list.forEach((entry, i) => {
    if (entry === '*') {
      if (list.length > 1) fail(i, '* alone (it already allows every origin)', entry)
      any = true
    } else if (entry === 'null') exact.add('null')
    else if (entry.includes('*')) patterns.push(parsePattern(entry, i, fail))
    else exact.add(parseExact(entry, i, fail))
  })
  return {
    any,
    matches(origin) {
      if (any) return true
      if (exact.has(origin)) return true
      if (patterns.length === 0 || origin.length > MAX_ORIGIN_LENGTH) return false
      const m = ORIGIN.exec(origin)
      if (!m) return false
      const [, scheme, host, port = ''] = m
      for (const p of patterns) if (matchPattern(p, scheme, host, port)) return true
      return false
    },
  }
}

function parseExact(entry: string, i: number, fail: OriginFail): string {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return fail(i, EXPECTED, entry)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(i, 'an http:// or https:// origin', entry)
  // An origin has no path, query, fragment or credentials; `https://a.com/` is tolerated.
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/' || entry.endsWith('?') || entry.endsWith('#')) {
    fail(i, 'an origin without path, query, fragment or credentials (scheme://host[:port])', entry)
  }
  return url.origin
}

function parsePattern(entry: string, i: number, fail: OriginFail): Pattern {
  const sep = entry.indexOf('://')
  if (sep <= 0) fail(i, EXPECTED, entry)
  const scheme = entry.slice(0, sep).toLowerCase()
  if (scheme !== 'http' && scheme !== 'https') fail(i, 'an http:// or https:// origin pattern', entry)
  let rest = entry.slice(sep + 3)
  if (rest.endsWith('/')) rest = rest.slice(0, -1)
  let port = ''
  const colon = rest.lastIndexOf(':')
  if (colon !== -1 && !rest.endsWith(']')) {
    port = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (port !== '*' && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535)) fail(i, 'a port number or * after the host', entry)
  }
  const subdomains = rest.startsWith('*.')
  const host = (subdomains ? rest.slice(2) : rest).toLowerCase()
  if (host.includes('*')) fail(i, '* only as the first host label (https://*.example.com) or as the port (http://localhost:*)', entry)
  // Check the host part with the URL parser (IDNA, IPv6) and keep its canonical spelling.
  let url: URL
  try {
    url = new URL(`${scheme}://${host}`)
  } catch {
    return fail(i, EXPECTED, entry)
  }
  // Anything but a plain host (a path, credentials, a non-ASCII name) comes back changed.
  if (url.hostname !== host || url.port !== '' || url.pathname !== '/') fail(i, 'a plain ASCII host name in the pattern (write IDN hosts in punycode)', entry)
  if (subdomains && host.startsWith('[')) fail(i, 'a DNS name after *.', entry)
  if (port === DEFAULT_PORTS[`${scheme}:`]) port = ''
  return { scheme, host: url.hostname, subdomains, port }
}

function matchPattern(p: Pattern, scheme: string, host: string, port: string): boolean {
  if (scheme !== p.scheme) return false
  if (p.port !== '*' && port !== p.port) return false
  if (!p.subdomains) return host === p.host
  // `*.example.com` needs at least one whole label in front: `a.example.com`, `a.b.example.com`,
  // never `example.com` or `badexample.com`.
  return host.length > p.host.length + 1 && host.endsWith(p.host) && host.charCodeAt(host.length - p.host.length - 1) === 46 /* . */ && !host.startsWith('.') && !host.startsWith('[')
}
