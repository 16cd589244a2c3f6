import ipaddr from 'ipaddr.js'

/**
 * Parses an IPv4 or IPv6 address into 16 bytes (IPv4 as IPv4-mapped IPv6, `::ffff:a.b.c.d`), or
 * undefined when it is not one. Zone ids (`fe80::1%eth0`) and `[brackets]` are dropped. IPv4 must be
 * four plain decimal parts (`10.0.0.1`): the shorthand, octal and hex forms `inet_aton` accepts
 * (`10.1`, `010.0.0.1`, `0x0a.0.0.1`) are refused, so a config entry means what it looks like.
 * Parsing is ipaddr.js's (the parser behind express's proxy-addr).
 * @example parseIp('10.0.0.1')?.length // 16
 */
export function parseIp(text: string): Uint8Array | undefined {
  const address = toAddress(text)
  return address === undefined ? undefined : Uint8Array.from(address.toByteArray())
}

/**
 * A predicate over client addresses from CIDR ranges (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
 * IPv4 ranges also match IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`), as Node reports them on
 * dual-stack sockets, and `::ffff:0:0/96`-style ranges match plain IPv4 clients. Throws a RangeError
 * naming the bad entry.
 * @example
 * const trusted = createIpMatcher(['10.0.0.0/8', '::1'])
 * trusted('::ffff:10.1.2.3') // true
 */
export function createIpMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const ranges = cidrs.map((cidr, i): [ipaddr.IPv6, number] => {
    const slash = cidr.indexOf('/')
    const host = slash === -1 ? cidr : cidr.slice(0, slash)
    const base = toAddress(host)
    if (!base) throw new RangeError(`[${i}]: not an IP address or CIDR range: ${JSON.stringify(cidr)}`)
    const isV4 = ipaddr.IPv4.isValidFourPartDecimal(unwrap(host))
    const max = isV4 ? 32 : 128
    const prefix = slash === -1 ? String(max) : cidr.slice(slash + 1)
    const bits = Number(prefix)
    if (!/^\d+$/.test(prefix) || bits > max) throw new RangeError(`[${i}]: prefix length must be 0-${max}: ${JSON.stringify(cidr)}`)
    // IPv4 ranges are compared as IPv4-mapped IPv6 (::ffff:0:0/96 + the IPv4 prefix).
    return [base, isV4 ? bits + 96 : bits]
  })
  if (ranges.length === 0) return () => false
  const cache = new Map<string, boolean>()
  return (ip) => {
    const hit = cache.get(ip)
    if (hit !== undefined) return hit
    const address = toAddress(ip)
    const result = address !== undefined && ranges.some((range) => address.match(range))
    if (cache.size > 10_000) cache.clear()
    cache.set(ip, result)
    return result
  }
}

/** `text` as an IPv6 address (IPv4 mapped), or undefined. */
function toAddress(text: string): ipaddr.IPv6 | undefined {
  const ip = unwrap(text)
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return ipaddr.IPv4.parse(ip).toIPv4MappedAddress()
  if (!ipaddr.IPv6.isValid(ip)) return undefined
  // ipaddr.js reads the dotted tail of `::ffff:a.b.c.d` with the lenient IPv4 rules; hold it to four decimal parts too.
  const dot = ip.lastIndexOf(':')
  if (ip.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(ip.slice(dot + 1))) return undefined
  return ipaddr.IPv6.parse(ip)
}

/** Drops `[brackets]` and a zone id (`%eth0`), which are not part of the address. */
function unwrap(text: string): string {
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  const zone = s.indexOf('%')
  return zone === -1 ? s : s.slice(0, zone)
}
