import {
  type AuthResult,
  type Authenticator,
  ConfigValidator,
  definePolicy,
  type IdentityHeaders,
  type Middleware,
  OptionReader,
  type PolicyDefinition,
} from '@switchboard/core'
import { LRUCache } from 'lru-cache'
import { authenticate, BUSY_DETAIL } from '../combine.ts'
import { headerValue, quoted, REALM_PATTERN, schemeCredential, sha256, toHex } from '../shared/credentials.ts'
import { checkIdentityHeaders, parseIdentityHeaders } from '../shared/identity-headers.ts'
import { ConcurrencyLimiter } from '../shared/limiter.ts'
import { type PasswordHash, parsePasswordHash, verifyParsedHash } from './hashes.ts'

export { MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_BCRYPT_COST } from './hashes.ts'

/** Options of {@link basic} and {@link createBasicAuthenticator}. */
export interface BasicOptions {
  /** User name → bcrypt (`$2b$…`) or argon2 PHC (`$argon2id$…`) hash; at least one. Plaintext is refused. */
  users: Readonly<Record<string, string>>
  /** Realm of the `Basic` challenge. @default 'restricted' */
  realm?: string
  /** Where the identity goes upstream; `false` sends none. @default DEFAULT_IDENTITY_HEADERS */
  identityHeaders?: IdentityHeaders | false
  /** Hash checks running at once; more wait in the queue. @default 2 */
  maxConcurrentVerifications?: number
  /** Hash checks waiting for a slot; past that a request is refused with detail {@link BUSY_DETAIL} (503 from `authenticate`). @default 64 */
  maxQueuedVerifications?: number
  /** Verified user/password pairs remembered (by their SHA-256), so repeat requests skip the hash. @default 1024 */
  cacheSize?: number
  /** How long a verified pair is remembered. @default 300_000 */
  cacheTtlMs?: number
  /** Clock in epoch ms for the cache; inject one in tests. @default Date.now */
  now?: () => number
  /** Checks a password against one of the configured hashes; replace it to instrument or to use a native binding. @default verifyPasswordHash */
  verify?: (password: string, hash: string) => Promise<boolean>
}

/**
 * Defaults of {@link BasicOptions}.
 * @example const cap = BASIC_DEFAULTS.maxConcurrentVerifications // 2
 */
export const BASIC_DEFAULTS: {
  readonly realm: string
  readonly maxConcurrentVerifications: number
  readonly maxQueuedVerifications: number
  readonly cacheSize: number
  readonly cacheTtlMs: number
} = Object.freeze({ realm: 'restricted', maxConcurrentVerifications: 2, maxQueuedVerifications: 64, cacheSize: 1024, cacheTtlMs: 300_000 })

/**
 * True when `password` matches `hash`, a bcrypt (`$2a$`/`$2b$`/`$2y$`, via bcryptjs) or argon2id /
 * argon2i / argon2d PHC string (via @noble/hashes, compared in constant time). Throws a TypeError
 * for any other text (a plaintext password is never compared).
 * @example const ok = await verifyPasswordHash('s3cret', '$2b$10$…')
 */
export async function verifyPasswordHash(password: string, hash: string): Promise<boolean> {
  const parsed = parsePasswordHash(hash)
  if (typeof parsed === 'string') throw new TypeError(`verifyPasswordHash: expected ${parsed}`)
  return verifyParsedHash(password, parsed)
}

/**
 * The Basic scheme (RFC 7617) as an {@link Authenticator}: decodes `Authorization: Basic …`
 * (malformed base64, invalid UTF-8 or no colon: `invalid`), checks the password against the user's
 * bcrypt or argon2 hash, and for an unknown user still runs one verification of the same cost, so
 * timing does not reveal which users exist. At most `maxConcurrentVerifications` hash checks run at
 * once with a bounded queue behind them; past that the result is `invalid` with detail
 * {@link BUSY_DETAIL}. Verified pairs are cached by their SHA-256 for 5 minutes (successes only).
 * Throws a RangeError naming a bad option.
 * @example
 * const staff = createBasicAuthenticator({ users: { alice: '$2b$10$b5/Bh5OdigvTc.zyeqiUFehSYgG9JOrjwGNAUeSmCTQ2ysukx3KZa' } })
 */
export function createBasicAuthenticator(options: BasicOptions): Authenticator {
  const o = normalize(options)
  const users = new Map(o.users.map((u) => [u.name, u.hash] as const))
  // The dummy for unknown users is a real configured hash: the same algorithm and cost as a real check.
  const dummy = o.users[0]!.hash
  const limiter = new ConcurrencyLimiter(o.maxConcurrentVerifications, o.maxQueuedVerifications)
  const cache = new LRUCache<string, { user: string; until: number }>({ max: o.cacheSize })
  const parsedByText = new Map<string, PasswordHash>(o.users.map((u) => [u.hash.text, u.hash] as const))
  const verify = options.verify ?? ((password: string, hash: string) => verifyParsedHash(password, parsedByText.get(hash)!))

  const check = async (user: string, password: string): Promise<AuthResult> => {
    const key = toHex(await sha256(`${user}:${password}`))
    const hit = cache.get(key)
    if (hit !== undefined && hit.until > o.now()) return accepted(hit.user)
    const hash = users.get(user)
    const pending = limiter.run(() => verify(password, (hash ?? dummy).text).catch(() => false))
    if (pending === undefined) return { ok: false, reason: 'invalid', detail: BUSY_DETAIL }
    const matched = await pending
    if (hash === undefined) return { ok: false, reason: 'invalid', detail: 'unknown user' }
    if (!matched) return { ok: false, reason: 'invalid', detail: 'wrong password' }
    cache.set(key, { user, until: o.now() + o.cacheTtlMs })
    return accepted(user)
  }

  return {
    method: 'basic',
    challenge: `Basic realm=${quoted(o.realm)}, charset="UTF-8"`,
    credentialHeaders: ['authorization'],
    identityHeaders: o.identityHeaders,
    authenticate(ex) {
      const credential = schemeCredential(headerValue(ex, 'authorization'), 'basic')
      if (credential === undefined) return { ok: false, reason: 'missing' }
      const pair = decodeCredential(credential)
      if (pair === undefined) return { ok: false, reason: 'invalid', detail: 'malformed credentials' }
      return check(pair.user, pair.password)
    },
  }
}

/**
 * The Basic scheme as a stand-alone layer: {@link authenticate} over one {@link createBasicAuthenticator}.
 * @example const layer = basic({ realm: 'staff', users: { alice: '$2b$10$b5/Bh5OdigvTc.zyeqiUFehSYgG9JOrjwGNAUeSmCTQ2ysukx3KZa' } })
 */
export function basic(options: BasicOptions): Middleware {
  return authenticate([createBasicAuthenticator(options)])
}

/**
 * Parses `{ users: { NAME: HASH }, realm, identityHeaders, maxConcurrentVerifications,
 * maxQueuedVerifications }`; a plaintext or unknown hash, or argon2 parameters past the DoS bounds
 * (m > 256 MiB, t > 10), is a ConfigError naming `${at}.users.NAME`.
 * @example const options = parseBasicOptions({ users: { alice: '$2b$10$b5/Bh5OdigvTc.zyeqiUFehSYgG9JOrjwGNAUeSmCTQ2ysukx3KZa' } }, 'policies.staff')
 */
export function parseBasicOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): BasicOptions {
  const r = new OptionReader(raw, at, validator)
  const usersRaw = validator.map(r.get('users'), r.path('users'))
  const users = Object.create(null) as Record<string, string>
  for (const [name, hash] of Object.entries(usersRaw)) users[name] = validator.string(hash, `${r.path('users')}.${name}`)
  const realm = r.string('realm', BASIC_DEFAULTS.realm)
  const identityHeaders = parseIdentityHeaders(r.get('identityHeaders'), r.path('identityHeaders'), validator)
  const maxConcurrentVerifications = r.integer('maxConcurrentVerifications', BASIC_DEFAULTS.maxConcurrentVerifications, 1)
  const maxQueuedVerifications = r.integer('maxQueuedVerifications', BASIC_DEFAULTS.maxQueuedVerifications, 0)
  r.done()
  check({ users, realm }, (path, expected, got) => validator.fail(path === '' ? at : `${at}.${path}`, expected, got))
  return { users, realm, identityHeaders, maxConcurrentVerifications, maxQueuedVerifications }
}

/**
 * The `basic` policy type: `{ use: basic, realm: staff, users: { alice: "$2b$12$…", bob: "$argon2id$v=19$…" } }`.
 * @example registry.registerPolicy(basicPolicy)
 */
export const basicPolicy: PolicyDefinition<BasicOptions> = definePolicy({
  name: 'basic',
  parse: (raw, at) => parseBasicOptions(raw, at),
  create: (options, ctx) => authenticate([createBasicAuthenticator(options)], { log: ctx.log }),
  authenticator: (options) => createBasicAuthenticator(options),
})

type Fail = (path: string, expected: string, got: unknown) => never

interface NormalizedBasicOptions {
  readonly users: ReadonlyArray<{ readonly name: string; readonly hash: PasswordHash }>
  readonly realm: string
  readonly identityHeaders: IdentityHeaders | false
  readonly maxConcurrentVerifications: number
  readonly maxQueuedVerifications: number
  readonly cacheSize: number
  readonly cacheTtlMs: number
  readonly now: () => number
}

// RFC 7617 §2: the user-id cannot contain a colon; control characters would end up in the subject header.
const USER = /^[^:\x00-\x1f\x7f]{1,200}$/

function check(o: { users: Readonly<Record<string, string>>; realm: string }, fail: Fail): Array<{ name: string; hash: PasswordHash }> {
  if (typeof o.users !== 'object' || o.users === null || Array.isArray(o.users)) fail('users', 'a mapping of user name to password hash', o.users)
  const entries = Object.entries(o.users)
  if (entries.length === 0) fail('users', 'at least one user', o.users)
  if (typeof o.realm !== 'string' || !REALM_PATTERN.test(o.realm)) fail('realm', 'printable text (1-200 characters)', o.realm)
  return entries.map(([name, text]) => {
    if (!USER.test(name)) fail(`users.${name}`, 'a user name without colons or control characters', name)
    const parsed = typeof text === 'string' ? parsePasswordHash(text) : 'a password hash string'
    // Never echo the value: it may be a plaintext password.
    if (typeof parsed === 'string') fail(`users.${name}`, parsed, typeof text === 'string' ? `${text.slice(0, 4)}…` : typeof text)
    return { name, hash: parsed }
  })
}

function normalize(options: BasicOptions): NormalizedBasicOptions {
  const fail: Fail = (path, expected) => {
    throw new RangeError(`basic: ${path || 'options'} must be ${expected}`)
  }
  if (typeof options !== 'object' || options === null) fail('', 'an options object', options)
  const realm = options.realm ?? BASIC_DEFAULTS.realm
  const users = check({ users: options.users, realm }, fail)
  const int = (value: number | undefined, fallback: number, path: string, min: number): number => {
    const n = value ?? fallback
    if (!Number.isSafeInteger(n) || n < min) fail(path, `a whole number ≥ ${min}`, n)
    return n
  }
  return {
    users,
    realm,
    identityHeaders: checkIdentityHeaders(options.identityHeaders, 'basic'),
    maxConcurrentVerifications: int(options.maxConcurrentVerifications, BASIC_DEFAULTS.maxConcurrentVerifications, 'maxConcurrentVerifications', 1),
    maxQueuedVerifications: int(options.maxQueuedVerifications, BASIC_DEFAULTS.maxQueuedVerifications, 'maxQueuedVerifications', 0),
    cacheSize: int(options.cacheSize, BASIC_DEFAULTS.cacheSize, 'cacheSize', 1),
    cacheTtlMs: int(options.cacheTtlMs, BASIC_DEFAULTS.cacheTtlMs, 'cacheTtlMs', 0),
    now: options.now ?? Date.now,
  }
}

function accepted(user: string): AuthResult {
  return { ok: true, identity: { method: 'basic', subject: user } }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** `user:password` from the base64 token68 (RFC 7617 §2), or `undefined` when it is not one. */
function decodeCredential(token: string): { user: string; password: string } | undefined {
  if (token.length % 4 !== 0 || !BASE64.test(token)) return undefined
  let text: string
  try {
    const bin = atob(token)
    text = utf8.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)))
  } catch {
    return undefined
  }
  const colon = text.indexOf(':')
  if (colon <= 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1) }
}
