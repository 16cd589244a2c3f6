/**
 * Parses an IPv4 or IPv6 address into 16 bytes (IPv4 as IPv4-mapped IPv6, `::ffff:a.b.c.d`), or
 * undefined when it is not one. Zone ids (`fe80::1%eth0`) are dropped.
 * @example parseIp('10.0.0.1')?.length // 16
 */
export function parseIp(text: string): Uint8Array | undefined {
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  const zone = s.indexOf('%')
  const ip = zone === -1 ? s : s.slice(0, zone)
  const v4 = parseV4(ip)
  if (v4) {
    const out = new Uint8Array(16)
    out[10] = 0xff
    out[11] = 0xff
    out.set(v4, 12)
    return out
  }
  return parseV6(ip)
}

/**
 * A predicate over client addresses from CIDR ranges (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
 * IPv4 ranges also match IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`), as Node reports them on
 * dual-stack sockets. Throws a RangeError naming the bad entry.
 * @example
 * const trusted = createIpMatcher(['10.0.0.0/8', '::1'])
 * trusted('::ffff:10.1.2.3') // true
 */
export function createIpMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const ranges = cidrs.map((cidr, i) => {
    const slash = cidr.indexOf('/')
    const base = parseIp(slash === -1 ? cidr : cidr.slice(0, slash))
    if (!base) throw new RangeError(`[${i}]: not an IP address or CIDR range: ${JSON.stringify(cidr)}`)
    const isV4 = parseV4(slash === -1 ? cidr : cidr.slice(0, slash)) !== undefined
    const max = isV4 ? 32 : 128
    const bits = slash === -1 ? max : Number(cidr.slice(slash + 1))
    if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash !== -1 && !/^\d+$/.test(cidr.slice(slash + 1)))) {
      throw new RangeError(`[${i}]: prefix length must be 0-${max}: ${JSON.stringify(cidr)}`)
    }
    return { base, bits: isV4 ? bits + 96 : bits }
  })
  if (ranges.length === 0) return () => false
  const cache = new Map<string, boolean>()
  return (ip) => {
    const hit = cache.get(ip)
    if (hit !== undefined) return hit
    const bytes = parseIp(ip)
    const result = bytes !== undefined && ranges.some((r) => inRange(bytes, r.base, r.bits))
    if (cache.size > 10_000) cache.clear()
    cache.set(ip, result)
    return result
  }
}

function inRange(ip: Uint8Array, base: Uint8Array, bits: number): boolean {
  let i = 0
  for (; bits >= 8; bits -= 8, i++) if (ip[i] !== base[i]) return false
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return (ip[i] & mask) === (base[i] & mask)
}

function parseV4(s: string): Uint8Array | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i])) return undefined
    const n = Number(parts[i])
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

function parseV6(s: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length < 2) return undefined
  const double = s.indexOf('::')
  if (double !== -1 && s.indexOf('::', double + 1) !== -1) return undefined
  const head = double === -1 ? s : s.slice(0, double)
  const tail = double === -1 ? '' : s.slice(double + 2)
  const groups = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    const items = part.split(':')
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseV4(item)
        if (!v4) return undefined
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return undefined
        out.push(Number.parseInt(item, 16))
      }
    }
    return out
  }
  const h = groups(head)
  const t = groups(tail)
  if (!h || !t) return undefined
  const fill = 8 - h.length - t.length
  if ((double === -1 && fill !== 0) || (double !== -1 && fill < 1)) return undefined
  const all = [...h, ...new Array<number>(double === -1 ? 0 : fill).fill(0), ...t]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}
