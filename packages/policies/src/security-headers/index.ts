import { definePolicy, type HeaderRecord, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'

/** `Strict-Transport-Security` settings of {@link securityHeaders}. */
export interface HstsOptions {
  /** `max-age` in seconds. @default 31536000 (one year) */
  maxAge?: number
  /** Adds `includeSubDomains`. @default true */
  includeSubDomains?: boolean
  /** Adds `preload` (needs `includeSubDomains` and a `maxAge` of at least one year). @default false */
  preload?: boolean
}

/** Options of {@link securityHeaders}; `false` turns a header off. */
export interface SecurityHeadersOptions {
  /** `Strict-Transport-Security`, sent on every response (the gateway may sit behind TLS termination; browsers ignore it over plain http). @default { maxAge: 31536000, includeSubDomains: true } */
  hsts?: HstsOptions | false
  /** `X-Content-Type-Options`. @default 'nosniff' */
  contentTypeOptions?: 'nosniff' | false
  /** `X-Frame-Options`. @default 'DENY' */
  frameOptions?: 'DENY' | 'SAMEORIGIN' | false
  /** `Referrer-Policy`. @default 'strict-origin-when-cross-origin' */
  referrerPolicy?: ReferrerPolicyValue | false
  /** `Content-Security-Policy`, for example `"default-src 'self'; frame-ancestors 'none'"`. @default off */
  contentSecurityPolicy?: string | false
  /** `Cross-Origin-Opener-Policy`. @default off */
  crossOriginOpenerPolicy?: 'same-origin' | 'same-origin-allow-popups' | 'unsafe-none' | false
  /** Replace values the upstream (or an inner layer) already set; else those are kept. @default false */
  override?: boolean
}

/** Values `Referrer-Policy` accepts (W3C Referrer Policy §3). */
export type ReferrerPolicyValue =
  | 'no-referrer'
  | 'no-referrer-when-downgrade'
  | 'origin'
  | 'origin-when-cross-origin'
  | 'same-origin'
  | 'strict-origin'
  | 'strict-origin-when-cross-origin'
  | 'unsafe-url'

const REFERRER: readonly ReferrerPolicyValue[] = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'origin',
  'origin-when-cross-origin',
  'same-origin',
  'strict-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
]
const COOP = ['same-origin', 'same-origin-allow-popups', 'unsafe-none'] as const
const ONE_YEAR_S = 31_536_000

/**
 * A preset of browser security headers on every response, the gateway's own errors included.
 * A header the upstream already sent is kept unless `override` is true.
 * @example const layer = securityHeaders({ hsts: { preload: true }, contentSecurityPolicy: "default-src 'self'" })
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): Middleware {
  const fields = securityHeaderFields(options)
  const override = options.override ?? false
  const onHead = (_status: number, out: HeaderRecord): void => {
    for (const [name, value] of fields) if (override || out[name] === undefined) out[name] = value
  }
  return async function securityHeadersPolicy(ex, next) {
    if (fields.length > 0) ex.onResponseHead(onHead)
    await next()
  }
}

/**
 * The `[name, value]` pairs {@link securityHeaders} writes for these options (lowercase names).
 * Throws a `RangeError` for an inconsistent `hsts`.
 * @example securityHeaderFields({ frameOptions: false }).map(([n]) => n) // ['strict-transport-security', 'x-content-type-options', 'referrer-policy']
 */
export function securityHeaderFields(options: SecurityHeadersOptions = {}): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  const hsts = options.hsts ?? {}
  if (hsts !== false) {
    const maxAge = hsts.maxAge ?? ONE_YEAR_S
    const sub = hsts.includeSubDomains ?? true
    if (!Number.isInteger(maxAge) || maxAge < 0) throw new RangeError('securityHeaders: hsts.maxAge must be a whole number of seconds ≥ 0')
    // hstspreload.org requirements: includeSubDomains and max-age of at least a year.
    if (hsts.preload && (!sub || maxAge < ONE_YEAR_S)) throw new RangeError('securityHeaders: hsts.preload needs includeSubDomains and maxAge ≥ 31536000')
    out.push(['strict-transport-security', `max-age=${maxAge}${sub ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`])
  }
  const cto = options.contentTypeOptions ?? 'nosniff'
  if (cto !== false) out.push(['x-content-type-options', cto])
  const frame = options.frameOptions ?? 'DENY'
  if (frame !== false) out.push(['x-frame-options', frame])
  const referrer = options.referrerPolicy ?? 'strict-origin-when-cross-origin'
  if (referrer !== false) out.push(['referrer-policy', referrer])
  const csp = options.contentSecurityPolicy ?? false
  if (csp !== false) {
    if (/[\r\n\0]/.test(csp) || csp.trim() === '') throw new RangeError('securityHeaders: contentSecurityPolicy must be a non-empty value without CR, LF or NUL')
    out.push(['content-security-policy', csp])
  }
  const coop = options.crossOriginOpenerPolicy ?? false
  if (coop !== false) out.push(['cross-origin-opener-policy', coop])
  return out
}

/**
 * The `security-headers` policy type: `{ use: security-headers, hsts: { preload: true }, frameOptions: SAMEORIGIN, contentSecurityPolicy: "default-src 'self'" }`.
 * @example registry.policies.set(securityHeadersPolicy.name, securityHeadersPolicy)
 */
export const securityHeadersPolicy: PolicyDefinition<SecurityHeadersOptions> = definePolicy({
  name: 'security-headers',
  parse: (raw, at) => parseSecurityHeadersOptions(raw, at),
  create: (options) => securityHeaders(options),
})

/** Parses the options of `security-headers` (key paths in errors). */
export function parseSecurityHeadersOptions(raw: Record<string, unknown>, at: string): SecurityHeadersOptions {
  const r = new OptionReader(raw, at)
  const out: SecurityHeadersOptions = {}
  const hsts = r.get('hsts')
  if (hsts === false) out.hsts = false
  else if (hsts !== undefined) {
    const h = new OptionReader(hsts, r.path('hsts'), r.v)
    const maxAge = h.integer('maxAge', ONE_YEAR_S, 0)
    const includeSubDomains = h.boolean('includeSubDomains', true)
    const preload = h.boolean('preload', false)
    h.done()
    if (preload && (!includeSubDomains || maxAge < ONE_YEAR_S)) r.v.fail(r.path('hsts.preload'), 'preload only with includeSubDomains: true and maxAge ≥ 31536000', preload)
    out.hsts = { maxAge, includeSubDomains, preload }
  }
  const off = <T extends string>(key: string, choices: readonly T[], fallback: T): T | false => {
    const value = r.get(key)
    if (value === false) return false
    if (value === undefined) return fallback
    const s = typeof value === 'string' ? choices.find((c) => c.toLowerCase() === value.toLowerCase()) : undefined
    if (s === undefined) return r.v.fail(r.path(key), `false or one of ${choices.join(', ')}`, value)
    return s
  }
  out.contentTypeOptions = off('contentTypeOptions', ['nosniff'] as const, 'nosniff')
  out.frameOptions = off('frameOptions', ['DENY', 'SAMEORIGIN'] as const, 'DENY')
  out.referrerPolicy = off('referrerPolicy', REFERRER, 'strict-origin-when-cross-origin')
  const csp = r.get('contentSecurityPolicy')
  if (csp !== undefined && csp !== false) {
    const s = r.v.string(csp, r.path('contentSecurityPolicy'))
    if (/[\r\n\0]/.test(s)) r.v.fail(r.path('contentSecurityPolicy'), 'a header value without CR, LF or NUL', s)
    out.contentSecurityPolicy = s
  } else out.contentSecurityPolicy = false
  const coop = r.get('crossOriginOpenerPolicy')
  if (coop === undefined || coop === false) out.crossOriginOpenerPolicy = false
  else {
    if (typeof coop !== 'string' || !(COOP as readonly string[]).includes(coop)) r.v.fail(r.path('crossOriginOpenerPolicy'), `false or one of ${COOP.join(', ')}`, coop)
    out.crossOriginOpenerPolicy = coop as (typeof COOP)[number]
  }
  out.override = r.boolean('override', false)
  r.done()
  return out
}
