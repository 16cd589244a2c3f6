import {
  type AuthResult,
  ConfigValidator,
  definePolicy,
  type Exchange,
  type IdentityHeaders,
  type Middleware,
  OptionReader,
  type PolicyContext,
  type PolicyDefinition,
} from '@switchboard/core'
import { importSPKI, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, jwtVerify } from 'jose'
import { LRUCache } from 'lru-cache'
import { authenticate, type CookieCredentialAuthenticator } from '../combine.ts'
import { cookieValue, headerValue, queryValue, quoted, REALM_PATTERN, schemeCredential } from '../shared/credentials.ts'
import { checkIdentityHeaders, parseIdentityHeaders } from '../shared/identity-headers.ts'
import { JwksSource } from './jwks.ts'
import { type PublicKeyFamily, publicKeyFamily } from './spki.ts'

/** A JWS algorithm the `jwt` scheme can be told to accept. `none` is not one. */
export type JwtAlgorithm =
  | 'HS256'
  | 'HS384'
  | 'HS512'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'

/**
 * Every algorithm {@link createJwtAuthenticator} supports.
 * @example JWT_ALGORITHMS.includes('RS256') // true
 */
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = Object.freeze([
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
])

/**
 * A required claim's accepted value(s): `null` = the claim must exist with any value; a value or
 * a list = the claim equals one of them or, for an array claim (or a space-separated `scope` /
 * `scp` string), contains one of them.
 */
export type RequiredClaimValue = null | string | number | boolean | readonly (string | number | boolean)[]

/** Options of {@link jwt} and {@link createJwtAuthenticator}. Exactly one of `secret`, `publicKey`, `jwks`. */
export interface JwtOptions {
  /** HMAC key (its UTF-8 bytes) for HS256/384/512: at least 32/48/64 bytes (RFC 7518 §3.2). */
  secret?: string
  /** PEM text of an SPKI public key (`-----BEGIN PUBLIC KEY-----`) for RS*, PS*, ES* or EdDSA. */
  publicKey?: string
  /** URL of a JSON Web Key Set (http or https). */
  jwks?: string
  /** The allow-list of `alg` values; required, never `none`, HS* only with `secret` and never with it otherwise. */
  algorithms: readonly JwtAlgorithm[]
  /** Accepted `iss` value(s). @default any */
  issuer?: string | readonly string[]
  /** Accepted `aud` value(s) (the token must name one). @default any */
  audience?: string | readonly string[]
  /** Leeway for `exp` and `nbf`. @default 30_000 */
  clockToleranceMs?: number
  /** Claims the token must carry (see {@link RequiredClaimValue}); a missing or different one is `forbidden` (403). @default none */
  requiredClaims?: Readonly<Record<string, RequiredClaimValue>>
  /** Longer tokens are `invalid` without being parsed. @default 8192 */
  maxTokenBytes?: number
  /** Header carrying the token: `authorization` means `Bearer <token>`, another name that header's whole value. @default 'authorization' */
  header?: string
  /** Query parameter that may carry the token. @default none */
  query?: string
  /** Cookie that may carry the token (only that cookie is removed upstream). @default none */
  cookie?: string
  /** Bounds one JWKS fetch, body included. @default 5_000 */
  jwksTimeoutMs?: number
  /** How long a fetched JWKS is used before it is fetched again. @default 600_000 */
  jwksCacheTtlMs?: number
  /** Least time between two JWKS fetches (an unknown `kid` refetches at most this often). @default 30_000 */
  jwksCooldownMs?: number
  /** Largest JWKS body read. @default 65_536 */
  jwksMaxBytes?: number
  /** Where the identity goes upstream; `false` sends none. @default DEFAULT_IDENTITY_HEADERS */
  identityHeaders?: IdentityHeaders | false
  /** Realm of the `Bearer` challenge. @default 'api' */
  realm?: string
  /** Verified tokens remembered (until `exp`, at most 5 minutes). @default 4096 */
  cacheSize?: number
  /** Clock in epoch ms (token times, caches, the JWKS cooldown); inject one in tests. @default Date.now */
  now?: () => number
  /** Fetches the JWKS. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Receives JWKS fetch failures. @default none */
  log?: PolicyContext['log']
}

/**
 * Defaults of {@link JwtOptions} (`cacheMaxAgeMs`: the longest a verified token is remembered).
 * @example const toleranceSeconds = JWT_DEFAULTS.clockToleranceMs / 1000 // 30
 */
export const JWT_DEFAULTS: {
  readonly clockToleranceMs: number
  readonly maxTokenBytes: number
  readonly jwksTimeoutMs: number
  readonly jwksCacheTtlMs: number
  readonly jwksCooldownMs: number
  readonly jwksMaxBytes: number
  readonly cacheSize: number
  readonly cacheMaxAgeMs: number
} = Object.freeze({
  clockToleranceMs: 30_000,
  maxTokenBytes: 8192,
  jwksTimeoutMs: 5_000,
  jwksCacheTtlMs: 600_000,
  jwksCooldownMs: 30_000,
  jwksMaxBytes: 65_536,
  cacheSize: 4096,
  cacheMaxAgeMs: 300_000,
})

/**
 * The JWT scheme as an {@link Authenticator}, verified by `jose`: signature with the configured key
 * (HMAC secret, PEM public key, or a remote JWKS), `alg` from the allow-list only, `exp`/`nbf`
 * with the tolerance, `iss` and `aud` when configured; the identity's subject is `sub` (a token
 * without one is refused) and its claims the payload. Verified tokens are remembered in a bounded
 * LRU until `exp` (at most 5 minutes). A remote JWKS is cached, refetched once for an unknown
 * `kid` (at most once per cooldown, one fetch shared by concurrent requests), and never holds a
 * request longer than its timeout. Throws a RangeError naming a bad option.
 * @example
 * const sso = createJwtAuthenticator({ jwks: 'https://login.example.com/.well-known/jwks.json', algorithms: ['RS256'], audience: 'api' })
 */
export function createJwtAuthenticator(options: JwtOptions): CookieCredentialAuthenticator {
  const o = normalize(options)
  const now = o.now
  const cache = new LRUCache<string, { result: AuthResult; until: number }>({
    max: o.cacheSize,
    // Only verified tokens get in, but bound the bytes too: a token and its claims, roughly twice its length.
    maxSize: 32 * 1024 * 1024,
    sizeCalculation: (_value, key) => key.length * 2 + 256,
  })
  const verifyKey = keyResolver(o)
  const bearer = o.header === 'authorization'
  const baseOptions: JWTVerifyOptions = {
    algorithms: [...o.algorithms],
    ...(o.issuer === undefined ? {} : { issuer: o.issuer as string | string[] }),
    ...(o.audience === undefined ? {} : { audience: o.audience as string | string[] }),
    clockTolerance: o.clockToleranceMs / 1000,
  }

  const present = (ex: Exchange): string | undefined => {
    const raw = headerValue(ex, o.header)
    const fromHeader = bearer ? schemeCredential(raw, 'bearer') : raw
    if (fromHeader !== undefined) return fromHeader
    if (o.cookie !== undefined) {
      const fromCookie = cookieValue(headerValue(ex, 'cookie'), o.cookie)
      if (fromCookie !== undefined) return fromCookie
    }
    return o.query === undefined || ex.request.query === '' ? undefined : queryValue(ex.request.query, o.query)
  }

  const verify = async (token: string): Promise<AuthResult> => {
    const t = now()
    let payload: JWTPayload
    try {
      payload = await verifyKey(token, { ...baseOptions, currentDate: new Date(t) })
    } catch (error) {
      return { ok: false, reason: 'invalid', detail: describe(error) }
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'invalid', detail: 'no sub claim' }
    const mismatch = o.requiredClaims === undefined ? undefined : claimMismatch(payload, o.requiredClaims)
    if (mismatch !== undefined) return { ok: false, reason: 'forbidden', detail: `required claim ${mismatch}` }
    const result: AuthResult = { ok: true, identity: Object.freeze({ method: 'jwt', subject: payload.sub, claims: Object.freeze({ ...payload }) }) }
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 + o.clockToleranceMs : Number.POSITIVE_INFINITY
    const until = Math.min(expiresAt, t + JWT_DEFAULTS.cacheMaxAgeMs)
    if (until > t) cache.set(token, { result, until })
    return result
  }

  return {
    method: 'jwt',
    challenge: `Bearer realm=${quoted(o.realm)}`,
    credentialHeaders: [o.header],
    ...(o.query === undefined ? {} : { credentialQuery: [o.query] }),
    ...(o.cookie === undefined ? {} : { credentialCookies: [o.cookie] }),
    identityHeaders: o.identityHeaders,
    authenticate(ex) {
      const token = present(ex)
      if (token === undefined) return { ok: false, reason: 'missing' }
      if (token === '') return { ok: false, reason: 'invalid', detail: 'empty token' }
      if (token.length > o.maxTokenBytes) return { ok: false, reason: 'invalid', detail: 'token too large' }
      const hit = cache.get(token)
      if (hit !== undefined) {
        // Past `exp` (+ tolerance) or 5 minutes old: verify again, which refuses an expired token.
        if (hit.until > now()) return hit.result
        cache.delete(token)
      }
      return verify(token)
    },
  }
}

/**
 * The JWT scheme as a stand-alone layer: {@link authenticate} over one {@link createJwtAuthenticator}
 * (401 `Bearer` challenge for a missing or bad token, 403 for a valid token without the required claims).
 * @example const layer = jwt({ secret: 'a-secret-of-at-least-thirty-two-bytes!', algorithms: ['HS256'], issuer: 'https://id.example.com' })
 */
export function jwt(options: JwtOptions): Middleware {
  return authenticate([createJwtAuthenticator(options)], options.log === undefined ? {} : { log: options.log })
}

/**
 * Parses `{ secret | publicKey | jwks, algorithms, issuer, audience, clockTolerance, requiredClaims,
 * maxTokenBytes, header, query, cookie, jwksTimeout, jwksCacheTtl, jwksCooldown, identityHeaders, realm }`;
 * errors name the key path (`policies.sso.algorithms`) and never print a secret.
 * @example const options = parseJwtOptions({ jwks: 'https://id.example.com/jwks.json', algorithms: ['RS256'] }, 'policies.sso')
 */
export function parseJwtOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): JwtOptions {
  const v = validator
  const r = new OptionReader(raw, at, v)
  const secret = r.string('secret')
  const publicKey = r.string('publicKey')
  const jwks = r.string('jwks')
  const algRaw = r.get('algorithms')
  const algorithms = algRaw === undefined ? [] : (typeof algRaw === 'string' ? [algRaw] : v.list(algRaw, r.path('algorithms'))).map((a, i) => {
    if (typeof a !== 'string') return v.fail(`${r.path('algorithms')}[${i}]`, `one of ${JWT_ALGORITHMS.join(', ')}`, a)
    return a as JwtAlgorithm
  })
  const issuer = stringOrList(r, 'issuer')
  const audience = stringOrList(r, 'audience')
  const clockToleranceMs = r.duration('clockTolerance', JWT_DEFAULTS.clockToleranceMs)
  const requiredClaims = r.has('requiredClaims') ? (r.get('requiredClaims') as Record<string, RequiredClaimValue>) : undefined
  const maxTokenBytes = r.size('maxTokenBytes', JWT_DEFAULTS.maxTokenBytes, 16)
  const header = r.token('header', 'authorization')
  const query = r.string('query')
  const cookie = r.string('cookie')
  const jwksTimeoutMs = r.duration('jwksTimeout', JWT_DEFAULTS.jwksTimeoutMs, 1)
  const jwksCacheTtlMs = r.duration('jwksCacheTtl', JWT_DEFAULTS.jwksCacheTtlMs, 1)
  const jwksCooldownMs = r.duration('jwksCooldown', JWT_DEFAULTS.jwksCooldownMs, 0)
  const identityHeaders = parseIdentityHeaders(r.get('identityHeaders'), r.path('identityHeaders'), v)
  const realm = r.string('realm', 'api')
  r.done()
  const options: JwtOptions = {
    ...(secret === undefined ? {} : { secret }),
    ...(publicKey === undefined ? {} : { publicKey }),
    ...(jwks === undefined ? {} : { jwks }),
    algorithms,
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
    clockToleranceMs,
    ...(requiredClaims === undefined ? {} : { requiredClaims }),
    maxTokenBytes,
    header,
    ...(query === undefined ? {} : { query }),
    ...(cookie === undefined ? {} : { cookie }),
    jwksTimeoutMs,
    jwksCacheTtlMs,
    jwksCooldownMs,
    identityHeaders,
    realm,
  }
  const checked = check(options, (path, expected, got) => v.fail(path === '' ? at : `${at}.${path}`, expected, got))
  return { ...options, ...(checked.requiredClaims === undefined ? {} : { requiredClaims: checked.requiredClaims }) }
}

/**
 * The `jwt` policy type:
 * `{ use: jwt, jwks: https://id.example.com/jwks.json, algorithms: [RS256], issuer: https://id.example.com, audience: api }`.
 * @example registry.registerPolicy(jwtPolicy)
 */
export const jwtPolicy: PolicyDefinition<JwtOptions> = definePolicy({
  name: 'jwt',
  parse: (raw, at) => parseJwtOptions(raw, at),
  create: (options, ctx) => authenticate([createJwtAuthenticator({ log: ctx.log, ...options })], { log: ctx.log }),
  authenticator: (options, ctx) => createJwtAuthenticator({ log: ctx.log, ...options }),
})

interface NormalizedJwtOptions {
  readonly secret: string | undefined
  readonly publicKey: string | undefined
  readonly jwks: string | undefined
  readonly algorithms: readonly JwtAlgorithm[]
  readonly issuer: string | readonly string[] | undefined
  readonly audience: string | readonly string[] | undefined
  readonly clockToleranceMs: number
  readonly requiredClaims: Readonly<Record<string, RequiredClaimValue>> | undefined
  readonly maxTokenBytes: number
  readonly header: string
  readonly query: string | undefined
  readonly cookie: string | undefined
  readonly jwksTimeoutMs: number
  readonly jwksCacheTtlMs: number
  readonly jwksCooldownMs: number
  readonly jwksMaxBytes: number
  readonly identityHeaders: IdentityHeaders | false
  readonly realm: string
  readonly cacheSize: number
  readonly now: () => number
  readonly fetch: typeof fetch
  readonly log: PolicyContext['log'] | undefined
}

type Fail = (path: string, expected: string, got: unknown) => never
type Verify = (token: string, options: JWTVerifyOptions) => Promise<JWTPayload>

const HMAC_BYTES: Partial<Record<JwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 }
const FAMILY_ALGORITHMS: Record<PublicKeyFamily, readonly JwtAlgorithm[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'P-256': ['ES256'],
  'P-384': ['ES384'],
  'P-521': ['ES512'],
  Ed25519: ['EdDSA'],
  Ed448: [],
}
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const COOKIE_NAME = TOKEN
const QUERY_NAME = /^[^&=#\s]+$/

/** Checks shared by the config parser and the factory (paths relative to the options). */
function check(o: JwtOptions, fail: Fail): { requiredClaims: Readonly<Record<string, RequiredClaimValue>> | undefined } {
  const sources = (['secret', 'publicKey', 'jwks'] as const).filter((k) => o[k] !== undefined)
  if (sources.length !== 1) fail(sources.length === 0 ? '' : sources[1]!, 'exactly one of secret, publicKey or jwks', sources.length === 0 ? undefined : sources.join(' and '))
  const source = sources[0]!
  const algorithms: readonly JwtAlgorithm[] = o.algorithms
  if (!Array.isArray(algorithms as unknown) || algorithms.length === 0) {
    fail('algorithms', `an explicit, non-empty list of accepted algorithms (${JWT_ALGORITHMS.join(', ')})`, algorithms)
  }
  let family: PublicKeyFamily | undefined
  if (source === 'publicKey') {
    if (typeof o.publicKey !== 'string') fail('publicKey', 'PEM text', typeof o.publicKey)
    family = publicKeyFamily(o.publicKey)
    if (family === undefined) fail('publicKey', 'a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI) of type RSA, EC P-256/384/521 or Ed25519', 'other text')
  }
  if (source === 'jwks') {
    let url: URL | undefined
    try {
      url = new URL(String(o.jwks))
    } catch {
      url = undefined
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.hash) {
      fail('jwks', 'an http:// or https:// URL without credentials or fragment', o.jwks)
    }
  }
  if (source === 'secret' && (typeof o.secret !== 'string' || o.secret === '')) fail('secret', 'a non-empty string', 'nothing')
  const secretBytes = source === 'secret' ? new TextEncoder().encode(o.secret).byteLength : 0
  algorithms.forEach((alg, i) => {
    const path = `algorithms[${i}]`
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') fail(path, 'a signing algorithm (unsigned tokens, alg none, are never accepted)', alg)
    if (!JWT_ALGORITHMS.includes(alg as JwtAlgorithm)) fail(path, `one of ${JWT_ALGORITHMS.join(', ')}`, alg)
    const hmac = HMAC_BYTES[alg]
    if (source === 'secret') {
      if (hmac === undefined) fail(path, 'an HS* algorithm: a secret verifies HMAC tokens only', alg)
      if (secretBytes < hmac) fail('secret', `at least ${hmac} bytes for ${alg} (RFC 7518 §3.2)`, `${secretBytes} bytes`)
    } else if (hmac !== undefined) {
      // HS* with a public key would let anyone who has the public key sign tokens (the key-confusion attack).
      fail(path, `an asymmetric algorithm: ${alg} is only accepted with a secret`, alg)
    } else if (family !== undefined && !FAMILY_ALGORITHMS[family].includes(alg)) {
      fail(path, `an algorithm for the ${family} public key (${FAMILY_ALGORITHMS[family].join(', ') || 'none supported'})`, alg)
    }
  })
  const strings = (value: unknown, path: string): void => {
    if (value === undefined) return
    const list = Array.isArray(value) ? value : [value]
    if (list.length === 0 || list.some((s) => typeof s !== 'string' || s === '')) fail(path, 'a non-empty string or list of strings', value)
  }
  strings(o.issuer, 'issuer')
  strings(o.audience, 'audience')
  const requiredClaims = o.requiredClaims === undefined ? undefined : checkRequiredClaims(o.requiredClaims, fail)
  const positive = (value: number | undefined, path: string, min: number): void => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < min)) fail(path, `a number ≥ ${min}`, value)
  }
  positive(o.clockToleranceMs, 'clockToleranceMs', 0)
  positive(o.maxTokenBytes, 'maxTokenBytes', 16)
  positive(o.jwksTimeoutMs, 'jwksTimeoutMs', 1)
  positive(o.jwksCacheTtlMs, 'jwksCacheTtlMs', 1)
  positive(o.jwksCooldownMs, 'jwksCooldownMs', 0)
  positive(o.jwksMaxBytes, 'jwksMaxBytes', 2)
  positive(o.cacheSize, 'cacheSize', 1)
  if (o.header !== undefined && (typeof o.header !== 'string' || !TOKEN.test(o.header))) fail('header', 'a valid header name', o.header)
  if (o.query !== undefined && (typeof o.query !== 'string' || !QUERY_NAME.test(o.query))) fail('query', 'a query parameter name (no &, =, # or spaces)', o.query)
  if (o.cookie !== undefined && (typeof o.cookie !== 'string' || !COOKIE_NAME.test(o.cookie))) fail('cookie', 'a cookie name', o.cookie)
  if (o.realm !== undefined && (typeof o.realm !== 'string' || !REALM_PATTERN.test(o.realm))) fail('realm', 'printable text (1-200 characters)', o.realm)
  return { requiredClaims }
}

function checkRequiredClaims(value: unknown, fail: Fail): Readonly<Record<string, RequiredClaimValue>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('requiredClaims', 'a mapping of claim name to value(s)', value)
  const out = Object.create(null) as Record<string, RequiredClaimValue>
  const scalar = (x: unknown): x is string | number | boolean => typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x))
  for (const [claim, want] of Object.entries(value)) {
    const path = `requiredClaims.${claim}`
    if (want === null || scalar(want)) out[claim] = want
    else if (Array.isArray(want) && want.length > 0 && want.every(scalar)) out[claim] = Object.freeze([...want])
    else fail(path, 'null (present), a string, number or boolean, or a non-empty list of them', want)
  }
  return Object.freeze(out)
}

function normalize(options: JwtOptions): NormalizedJwtOptions {
  const fail: Fail = (path, expected) => {
    throw new RangeError(`jwt: ${path || 'options'} must be ${expected}`)
  }
  if (typeof options !== 'object' || options === null) fail('', 'an options object', options)
  const { requiredClaims } = check(options, fail)
  const fetchImpl = options.fetch ?? globalThis.fetch
  return {
    secret: options.secret,
    publicKey: options.publicKey,
    jwks: options.jwks,
    algorithms: [...new Set(options.algorithms)],
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceMs: options.clockToleranceMs ?? JWT_DEFAULTS.clockToleranceMs,
    requiredClaims: requiredClaims !== undefined && Object.keys(requiredClaims).length > 0 ? requiredClaims : undefined,
    maxTokenBytes: options.maxTokenBytes ?? JWT_DEFAULTS.maxTokenBytes,
    header: (options.header ?? 'authorization').toLowerCase(),
    query: options.query,
    cookie: options.cookie,
    jwksTimeoutMs: options.jwksTimeoutMs ?? JWT_DEFAULTS.jwksTimeoutMs,
    jwksCacheTtlMs: options.jwksCacheTtlMs ?? JWT_DEFAULTS.jwksCacheTtlMs,
    jwksCooldownMs: options.jwksCooldownMs ?? JWT_DEFAULTS.jwksCooldownMs,
    jwksMaxBytes: options.jwksMaxBytes ?? JWT_DEFAULTS.jwksMaxBytes,
    identityHeaders: checkIdentityHeaders(options.identityHeaders, 'jwt'),
    realm: options.realm ?? 'api',
    cacheSize: options.cacheSize ?? JWT_DEFAULTS.cacheSize,
    now: options.now ?? Date.now,
    fetch: (input, init) => fetchImpl(input, init),
    log: options.log,
  }
}

/** How a token is checked against the configured key material. */
function keyResolver(o: NormalizedJwtOptions): Verify {
  if (o.secret !== undefined) {
    const key = new TextEncoder().encode(o.secret)
    return async (token, options) => (await jwtVerify(token, key, options)).payload
  }
  if (o.publicKey !== undefined) {
    const pem = o.publicKey
    const imported = new Map<string, ReturnType<typeof importSPKI>>()
    // jose checks `alg` against the allow-list before asking for the key, so only allowed algorithms get here.
    const getKey: JWTVerifyGetKey = (header) => {
      const alg = String(header.alg)
      let key = imported.get(alg)
      if (key === undefined) {
        key = importSPKI(pem, alg)
        imported.set(alg, key)
      }
      return key
    }
    return async (token, options) => (await jwtVerify(token, getKey, options)).payload
  }
  const source = new JwksSource({
    url: o.jwks!,
    timeoutMs: o.jwksTimeoutMs,
    cacheTtlMs: o.jwksCacheTtlMs,
    cooldownMs: o.jwksCooldownMs,
    maxBytes: o.jwksMaxBytes,
    now: o.now,
    fetch: o.fetch,
    log: o.log,
  })
  return async (token, options) => {
    const set = await source.current()
    if (set === undefined) throw new AuthDetail('JWKS unavailable')
    try {
      return await verifyWithSet(token, set, options)
    } catch (error) {
      if (code(error) !== 'ERR_JWKS_NO_MATCHING_KEY') throw error
      // Unknown kid: maybe the keys rotated. One refetch (shared, and at most once per cooldown), then one retry.
      await source.refreshForUnknownKid()
      const next = source.set
      if (next === undefined || next === set) throw new AuthDetail('unknown kid')
      return verifyWithSet(token, next, options)
    }
  }
}

async function verifyWithSet(token: string, set: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, set, options)).payload
  } catch (error) {
    if (code(error) !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error
    // No kid and several keys of the right type: try each (jose hands them out as an async iterator).
    for await (const key of error as AsyncIterable<CryptoKey>) {
      try {
        return (await jwtVerify(token, key, options)).payload
      } catch (inner) {
        if (code(inner) !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner
      }
    }
    throw new AuthDetail('no key verified the signature')
  }
}

function claimMismatch(payload: JWTPayload, required: Readonly<Record<string, RequiredClaimValue>>): string | undefined {
  for (const [claim, want] of Object.entries(required)) {
    const have = Object.hasOwn(payload, claim) ? payload[claim] : undefined
    if (have === undefined || have === null) return claim
    if (want === null) continue
    const wanted = Array.isArray(want) ? want : [want]
    const members = Array.isArray(have) ? have : (claim === 'scope' || claim === 'scp') && typeof have === 'string' ? have.split(' ') : []
    if (!wanted.some((w) => have === w || members.includes(w))) return claim
  }
  return undefined
}

class AuthDetail extends Error {}

function code(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined
}

function describe(error: unknown): string {
  if (error instanceof AuthDetail) return error.message
  const c = code(error)
  if (c === undefined) return 'unverifiable token'
  if (c === 'ERR_JWKS_NO_MATCHING_KEY') return 'unknown kid'
  const claim = (error as { claim?: unknown }).claim
  return typeof claim === 'string' ? `${c} (${claim})` : c
}

function stringOrList(r: OptionReader, key: string): string | string[] | undefined {
  if (!r.has(key)) {
    r.get(key)
    return undefined
  }
  const list = r.strings(key)
  if (list.length === 0) r.v.fail(r.path(key), 'a non-empty string or list of strings', list)
  return list.length === 1 ? list[0] : list
}
