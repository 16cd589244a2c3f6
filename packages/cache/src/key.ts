/**
 * The URL part of a cache key, built from parsed parts: `scheme://authority` + the origin-form
 * target. The authority is the `Host` value lowercased with the scheme's default port removed
 * (RFC 3986 §6.2.2.1, §6.2.3); the target must start with `/`. Because a valid authority can
 * contain no `/`, the first `/` after `scheme://` always separates the two parts, so
 * `Host: a:8080/cache` + `/x` can never collide with `Host: a:8080` + `/cache/x`: a `Host` with any
 * character outside an RFC 3986 authority (no userinfo) gives `undefined`, and the caller bypasses
 * the cache for that request.
 * @example cacheUrl('http', 'API.Example:80', '/a?b=1') // 'http://api.example/a?b=1'
 */
export function cacheUrl(protocol: string, host: string, target: string): string | undefined {
  const authority = normaliseAuthority(protocol, host)
  if (authority === undefined || !ORIGIN_FORM.test(target)) return undefined
  return `${protocol}://${authority}${target}`
}

/**
 * Maps a user-supplied URL (or URL prefix) for `purge` / `purgePrefix` onto the key layout of
 * {@link cacheUrl}; strings that are not `scheme://authority…` are returned unchanged.
 * @example purgeUrl('http://API.local:80/users/', false) // 'http://api.local/users/'
 */
export function purgeUrl(url: string, prefix: boolean): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(url)
  if (!m) return url
  const protocol = m[1].toLowerCase()
  const authority = normaliseAuthority(protocol, m[2])
  if (authority === undefined) return url
  const rest = m[3] === '' && !prefix ? '/' : m[3]
  return `${protocol}://${authority}${rest}`
}

/** Origin-form target: starts with `/`, no whitespace, controls or fragment (RFC 9112 §3.2.1). */
const ORIGIN_FORM = /^\/[^\s\x00-\x1f\x7f#]*$/
/** RFC 3986 §3.2.2 reg-name (lowercased): unreserved / pct-encoded / sub-delims. */
const REG_NAME = /^(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*$/
/** RFC 3986 §3.2.2 IP-literal: IPv6address or IPvFuture inside brackets. */
const IP_LITERAL = /^\[(?:[0-9a-f:.]+|v[0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]$/
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443', ws: '80', wss: '443' }

function normaliseAuthority(protocol: string, host: string): string | undefined {
  const h = host.toLowerCase()
  let name = h
  let port: string | undefined
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    if (end === -1) return undefined
    name = h.slice(0, end + 1)
    const rest = h.slice(end + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined
      port = rest.slice(1)
    }
    if (!IP_LITERAL.test(name)) return undefined
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) {
      name = h.slice(0, colon)
      port = h.slice(colon + 1)
    }
    if (!REG_NAME.test(name)) return undefined
  }
  if (port === undefined || port === '') return name // RFC 3986 §6.2.3: an empty port is the default
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined
  const canonical = String(Number(port))
  return canonical === DEFAULT_PORTS[protocol] ? name : `${name}:${canonical}`
}
