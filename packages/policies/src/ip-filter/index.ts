import { ConfigValidator, createIpMatcher, definePolicy, ForbiddenError, type Middleware, OptionReader, parseIp, type PolicyDefinition } from '@switchboard/core'

/** Options of {@link ipFilter}. At least one list must be non-empty. */
export interface IpFilterOptions {
  /**
   * Only clients in these addresses or CIDR ranges (IPv4 or IPv6) get through; IPv4 ranges also
   * match IPv4-mapped clients (`::ffff:10.1.2.3`). Empty means every client not denied.
   * @default []
   */
  allow?: readonly string[]
  /** Clients in these addresses or CIDR ranges never get through, even when allowed. @default [] */
  deny?: readonly string[]
}

/**
 * Lets a request through only when its client address is allowed and not denied (deny wins).
 * Decides on `ex.request.clientIp`, which the gateway has already resolved through
 * `server.trustedProxies`, so an `X-Forwarded-For` header counts only when a trusted proxy sent it.
 * A refused client gets 403 `ERR_FORBIDDEN` and nothing is forwarded; so does a client address that
 * does not parse (fail closed). Throws a RangeError naming the bad entry (`allow[2]: …`).
 * @example const office = ipFilter({ allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.9.0.0/16'] })
 */
export function ipFilter(options: IpFilterOptions): Middleware {
  const allow = options.allow ?? []
  const deny = options.deny ?? []
  if (allow.length === 0 && deny.length === 0) throw new RangeError('ipFilter needs a non-empty allow or deny list')
  const allowed = allow.length === 0 ? undefined : matcher(allow, 'allow')
  const denied = deny.length === 0 ? undefined : matcher(deny, 'deny')
  return async function ipFilterPolicy(ex, next) {
    const ip = ex.request.clientIp
    // Deny is checked first and wins; an address that does not parse matches nothing, so it is refused below.
    if (denied?.(ip) || !(allowed ? allowed(ip) : parseIp(ip) !== undefined)) throw new ForbiddenError({ message: 'Your address is not allowed' })
    await next()
  }
}

/**
 * Parses `{ allow: [CIDR…], deny: [CIDR…] }` (a single string is a one-item list); a bad entry is a
 * `ConfigError` naming `${at}.allow[i]`.
 * @example parseIpFilterOptions({ allow: ['127.0.0.0/8', '::1/128'] }, 'policies.office')
 */
export function parseIpFilterOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): IpFilterOptions {
  const r = new OptionReader(raw, at, validator)
  const allow = cidrs(r, 'allow')
  const deny = cidrs(r, 'deny')
  r.done()
  if (allow.length === 0 && deny.length === 0) validator.fail(at, 'a non-empty allow or deny list of IP addresses or CIDR ranges', raw)
  return { allow, deny }
}

/**
 * The `ip-filter` policy type: `{ use: ip-filter, allow: [127.0.0.0/8, "::1/128"], deny: [] }`.
 * @example registry.registerPolicy(ipFilterPolicy)
 */
export const ipFilterPolicy: PolicyDefinition<IpFilterOptions> = definePolicy({
  name: 'ip-filter',
  parse: (raw, at) => parseIpFilterOptions(raw, at),
  create: (options) => ipFilter(options),
})

function cidrs(r: OptionReader, key: 'allow' | 'deny'): string[] {
  return r.strings(key).map((s, i) => {
    try {
      createIpMatcher([s])
    } catch {
      r.v.fail(`${r.path(key)}[${i}]`, 'an IP address or CIDR range such as 10.0.0.0/8 or ::1/128', s)
    }
    return s
  })
}

function matcher(list: readonly string[], key: string): (ip: string) => boolean {
  try {
    return createIpMatcher(list)
  } catch (err) {
    throw new RangeError(`${key}${(err as Error).message}`)
  }
}
