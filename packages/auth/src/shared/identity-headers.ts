import { type ConfigValidator, DEFAULT_IDENTITY_HEADERS, HOP_BY_HOP_FIELDS, type IdentityHeaders } from '@switchboard/core'

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Framing, routing and credential fields: an identity header with one of these names would
// rewrite the request itself rather than describe who sent it.
const RESERVED: ReadonlySet<string> = new Set([...HOP_BY_HOP_FIELDS, 'host', 'content-length', 'content-type', 'authorization', 'cookie'])

/** Reports a bad option: `path` is relative to the `identityHeaders` key. */
export type Fail = (path: string, expected: string, got: unknown) => never

/**
 * Checks and normalises an `identityHeaders` value (lowercased names, no duplicates, no framing
 * or credential fields). `undefined` gives {@link DEFAULT_IDENTITY_HEADERS}.
 */
export function normalizeIdentityHeaders(value: unknown, fail: Fail): IdentityHeaders | false {
  if (value === undefined) return DEFAULT_IDENTITY_HEADERS
  if (value === false) return false
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('', 'false or a mapping of subject, method, client, claims', value)
  const raw = value as Record<string, unknown>
  for (const key of Object.keys(raw)) {
    if (!['subject', 'method', 'client', 'claims'].includes(key)) fail(key, 'one of the known keys (subject, method, client, claims)', key)
  }
  const seen = new Map<string, string>()
  const name = (v: unknown, path: string): string | undefined => {
    if (v === undefined) return undefined
    if (typeof v !== 'string' || !TOKEN.test(v)) return fail(path, 'a valid header name', v)
    const lower = v.toLowerCase()
    if (RESERVED.has(lower)) fail(path, 'a header name other than framing or credential fields', v)
    const other = seen.get(lower)
    if (other !== undefined) fail(path, `a header name not already used by ${other}`, v)
    seen.set(lower, path)
    return lower
  }
  const out: { subject?: string; method?: string; client?: string; claims?: Record<string, string> } = {}
  const subject = name(raw.subject, 'subject')
  const method = name(raw.method, 'method')
  const client = name(raw.client, 'client')
  if (subject !== undefined) out.subject = subject
  if (method !== undefined) out.method = method
  if (client !== undefined) out.client = client
  if (raw.claims !== undefined) {
    const claims = raw.claims
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) fail('claims', 'a mapping of claim name to header name', claims)
    const map = Object.create(null) as Record<string, string>
    for (const [claim, header] of Object.entries(claims as Record<string, unknown>)) map[claim] = name(header, `claims.${claim}`)!
    out.claims = Object.freeze(map)
  }
  return Object.freeze(out)
}

/** Parses `identityHeaders` from config; errors name `${at}.identityHeaders…`. */
export function parseIdentityHeaders(value: unknown, at: string, v: ConfigValidator): IdentityHeaders | false {
  return normalizeIdentityHeaders(value, (path, expected, got) => v.fail(path === '' ? at : `${at}.${path}`, expected, got))
}

/** The same check for options given in code: a `RangeError` naming `${where}.identityHeaders…`. */
export function checkIdentityHeaders(value: IdentityHeaders | false | undefined, where: string): IdentityHeaders | false {
  return normalizeIdentityHeaders(value, (path, expected) => {
    throw new RangeError(`${where}: identityHeaders${path === '' ? '' : `.${path}`} must be ${expected}`)
  })
}

/** Every header name an identity-headers setting may write (and so always removes from the client's request). */
export function identityHeaderNames(headers: IdentityHeaders | false): string[] {
  if (headers === false) return []
  const names = [headers.subject, headers.method, headers.client, ...Object.values(headers.claims ?? {})]
  return names.filter((n): n is string => typeof n === 'string').map((n) => n.toLowerCase())
}
