import {
  type AuthResult,
  type Authenticator,
  ConfigValidator,
  definePolicy,
  type Exchange,
  type IdentityHeaders,
  type Middleware,
  OptionReader,
  type PolicyDefinition,
} from '@switchboard/core'
import { sha256 as sha256Sync } from '@noble/hashes/sha2.js'
import { LRUCache } from 'lru-cache'
import { authenticate } from '../combine.ts'
import { constantTimeEqual, fromHex, headerValue, queryValue, quoted, REALM_PATTERN, schemeCredential, sha256, toHex } from '../shared/credentials.ts'
import { checkIdentityHeaders, parseIdentityHeaders } from '../shared/identity-headers.ts'

/** One accepted key: its id (the identity's subject) and the key itself or its SHA-256. */
export type ApiKeyEntry =
  | {
      /** Names the key in logs and in the subject header; unique. */
      readonly id: string
      /** The key as clients send it (in config usually `${ENV}`, expanded before parsing). */
      readonly key: string
    }
  | {
      /** Names the key in logs and in the subject header; unique. */
      readonly id: string
      /** `sha256:<64 hex>` of the key, as {@link hashApiKey} prints it: the config holds no usable secret. */
      readonly hash: string
    }

/** Options of {@link apiKey} and {@link createApiKeyAuthenticator}. */
export interface ApiKeyOptions {
  /**
   * Header carrying the key. `authorization` means `Authorization: Bearer <key>` (scheme
   * case-insensitive); any other name means that header's whole value.
   * @default 'authorization'
   */
  header?: string
  /** Query parameter that may carry the key instead (removed from the upstream target). @default none */
  query?: string
  /** The accepted keys; at least one, ids unique. */
  keys: readonly ApiKeyEntry[]
  /** Where the identity goes upstream; `false` sends none. @default DEFAULT_IDENTITY_HEADERS */
  identityHeaders?: IdentityHeaders | false
  /** Realm of the `WWW-Authenticate` challenge. @default 'api' */
  realm?: string
  /** Presented keys remembered after they verified (a hit skips the digest). @default 1024 */
  cacheSize?: number
}

/**
 * How many verified presented keys {@link createApiKeyAuthenticator} remembers unless told.
 * @example createApiKeyAuthenticator({ keys: [{ id: 'ci', key: 'k-0123456789abcdef' }], cacheSize: DEFAULT_API_KEY_CACHE_SIZE * 4 })
 */
export const DEFAULT_API_KEY_CACHE_SIZE = 1024

/**
 * The `sha256:<hex>` form of an API key, for `keys: [{ id, hash }]` (so the config holds no usable
 * secret).
 * @example const hash = await hashApiKey('k-0123456789abcdef') // 'sha256:…'
 */
export async function hashApiKey(key: string): Promise<string> {
  if (typeof key !== 'string' || key === '') throw new TypeError('hashApiKey: the key must be a non-empty string')
  return `sha256:${toHex(await sha256(key))}`
}

/**
 * The API-key scheme as an {@link Authenticator}: reads the key from the header (or the query
 * parameter when configured), hashes it with SHA-256 and compares the digest with every stored
 * digest in constant time (no early exit, no lookup keyed by the raw key). Keys that verified are
 * remembered in a bounded LRU (failures never are, so a flood of bad keys cannot evict good ones).
 * No key: `missing`; a wrong key: `invalid`. Throws a RangeError naming a bad option.
 * @example
 * const keys = createApiKeyAuthenticator({ header: 'x-api-key', keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })
 */
export function createApiKeyAuthenticator(options: ApiKeyOptions): Authenticator {
  const o = normalize(options)
  const digests = o.keys.map((k) => k.digest)
  const ids = o.keys.map((k) => k.id)
  const cache = new LRUCache<string, string>({ max: o.cacheSize })
  const bearer = o.header === 'authorization'
  const query = o.query

  const present = (ex: Exchange): string | undefined => {
    const raw = headerValue(ex, o.header)
    const fromHeader = bearer ? schemeCredential(raw, 'bearer') : raw
    if (fromHeader !== undefined) return fromHeader
    return query === undefined || ex.request.query === '' ? undefined : queryValue(ex.request.query, query)
  }

  const judge = (id: string | undefined): AuthResult =>
    id === undefined ? { ok: false, reason: 'invalid', detail: 'unknown key' } : { ok: true, identity: { method: 'api-key', subject: id } }

  return {
    method: 'api-key',
    challenge: bearer ? `Bearer realm=${quoted(o.realm)}` : `ApiKey realm=${quoted(o.realm)}, header=${quoted(o.header)}`,
    credentialHeaders: [o.header],
    ...(query === undefined ? {} : { credentialQuery: [query] }),
    identityHeaders: o.identityHeaders,
    authenticate(ex) {
      const key = present(ex)
      if (key === undefined) return { ok: false, reason: 'missing' }
      if (key === '') return { ok: false, reason: 'invalid', detail: 'empty key' }
      const cached = cache.get(key)
      if (cached !== undefined) return judge(cached)
      return sha256(key).then((digest) => {
        let found = -1
        // Every stored digest is compared, whatever matched before: the time says nothing about which key (if any) it was.
        for (let i = 0; i < digests.length; i++) {
          const equal = constantTimeEqual(digest, digests[i]!)
          found = equal ? i : found
        }
        if (found === -1) return judge(undefined)
        cache.set(key, ids[found]!)
        return judge(ids[found])
      })
    },
  }
}

/**
 * The API-key scheme as a stand-alone layer: {@link authenticate} over one
 * {@link createApiKeyAuthenticator} (401 with `WWW-Authenticate` on a missing or wrong key; the key
 * header never goes upstream).
 * @example const layer = apiKey({ header: 'x-api-key', keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })
 */
export function apiKey(options: ApiKeyOptions): Middleware {
  return authenticate([createApiKeyAuthenticator(options)])
}

/**
 * Parses `{ header, query, keys: [{ id, key } | { id, hash }], identityHeaders, realm }`; errors
 * name the key path (`policies.keys.keys[1].hash`).
 * @example const options = parseApiKeyOptions({ header: 'x-api-key', keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] }, 'policies.keys')
 */
export function parseApiKeyOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): ApiKeyOptions {
  const r = new OptionReader(raw, at, validator)
  const header = r.token('header', 'authorization')
  const query = r.has('query') ? queryName(r.string('query')!, r.path('query'), validator) : undefined
  const rawKeys = r.get('keys')
  const list = validator.list(rawKeys, r.path('keys'))
  const keys = list.map((item, i): ApiKeyEntry => {
    const k = new OptionReader(item, `${r.path('keys')}[${i}]`, validator)
    const id = k.string('id')
    const key = k.has('key') ? k.string('key') : undefined
    const hash = k.has('hash') ? k.string('hash') : undefined
    k.done()
    if (id === undefined) validator.fail(k.path('id'), 'a key id', undefined)
    if ((key === undefined) === (hash === undefined)) validator.fail(k.at, 'exactly one of key or hash', item)
    return key !== undefined ? { id, key } : { id, hash: hash! }
  })
  const identityHeaders = parseIdentityHeaders(r.get('identityHeaders'), r.path('identityHeaders'), validator)
  const realm = r.string('realm', 'api')
  r.done()
  check({ keys, realm }, (path, expected, got) => validator.fail(path === '' ? at : `${at}.${path}`, expected, got))
  return { header, ...(query === undefined ? {} : { query }), keys, identityHeaders, realm }
}

/**
 * The `api-key` policy type:
 * `{ use: api-key, header: x-api-key, query: api_key, keys: [{ id: ci, key: "${CI_KEY}" }, { id: old, hash: "sha256:…" }] }`.
 * @example registry.registerPolicy(apiKeyPolicy)
 */
export const apiKeyPolicy: PolicyDefinition<ApiKeyOptions> = definePolicy({
  name: 'api-key',
  parse: (raw, at) => parseApiKeyOptions(raw, at),
  create: (options, ctx) => authenticate([createApiKeyAuthenticator(options)], { log: ctx.log }),
  authenticator: (options) => createApiKeyAuthenticator(options),
})

interface NormalizedApiKeyOptions {
  header: string
  query: string | undefined
  keys: Array<{ id: string; digest: Uint8Array }>
  identityHeaders: IdentityHeaders | false
  realm: string
  cacheSize: number
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HASH = /^sha256:[0-9a-f]{64}$/i
// Ids travel upstream in the subject header and into logs: visible ASCII only.
const ID = /^[\x21-\x7e]{1,200}$/

type Fail = (path: string, expected: string, got: unknown) => never

/** Checks shared by the config parser and the factory; returns the digest of every key. */
function check(o: { keys: readonly ApiKeyEntry[]; realm: string }, fail: Fail): Uint8Array[] {
  if (!Array.isArray(o.keys) || o.keys.length === 0) fail('keys', 'at least one key', o.keys)
  if (typeof o.realm !== 'string' || !REALM_PATTERN.test(o.realm)) fail('realm', 'printable text (1-200 characters)', o.realm)
  const seenIds = new Map<string, number>()
  const seenDigests = new Map<string, number>()
  return o.keys.map((entry, i) => {
    const at = `keys[${i}]`
    if (typeof entry !== 'object' || entry === null) fail(at, 'a mapping with id and key or hash', entry)
    const { id } = entry
    if (typeof id !== 'string' || !ID.test(id)) fail(`${at}.id`, 'an id of visible ASCII characters', id)
    const earlier = seenIds.get(id)
    if (earlier !== undefined) fail(`${at}.id`, `an id not already used by keys[${earlier}]`, id)
    seenIds.set(id, i)
    let digest: Uint8Array
    if ('key' in entry) {
      if (typeof entry.key !== 'string' || entry.key === '') fail(`${at}.key`, 'a non-empty key', entry.key)
      digest = sha256Sync(new TextEncoder().encode(entry.key))
    } else {
      const hash = (entry as { hash?: unknown }).hash
      if (typeof hash !== 'string' || !HASH.test(hash)) fail(`${at}.hash`, 'sha256:<64 hex digits> (see hashApiKey)', hash)
      digest = fromHex(hash.slice('sha256:'.length).toLowerCase())
    }
    const hex = toHex(digest)
    const twin = seenDigests.get(hex)
    if (twin !== undefined) fail(`${at}`, `a key different from keys[${twin}]`, id)
    seenDigests.set(hex, i)
    return digest
  })
}

function normalize(options: ApiKeyOptions): NormalizedApiKeyOptions {
  const fail: Fail = (path, expected) => {
    throw new RangeError(`apiKey: ${path || 'options'} must be ${expected}`)
  }
  if (typeof options !== 'object' || options === null) fail('', 'an options object', options)
  const header = options.header ?? 'authorization'
  if (typeof header !== 'string' || !TOKEN.test(header)) fail('header', 'a valid header name', header)
  if (options.query !== undefined && (typeof options.query !== 'string' || !/^[^&=#\s]+$/.test(options.query))) fail('query', 'a query parameter name', options.query)
  const realm = options.realm ?? 'api'
  const digests = check({ keys: options.keys, realm }, fail)
  const cacheSize = options.cacheSize ?? DEFAULT_API_KEY_CACHE_SIZE
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) fail('cacheSize', 'a whole number ≥ 1', cacheSize)
  return {
    header: header.toLowerCase(),
    query: options.query,
    keys: options.keys.map((k, i) => ({ id: k.id, digest: digests[i]! })),
    identityHeaders: checkIdentityHeaders(options.identityHeaders, 'apiKey'),
    realm,
    cacheSize,
  }
}

function queryName(name: string, path: string, v: ConfigValidator): string {
  if (!/^[^&=#\s]+$/.test(name)) v.fail(path, 'a query parameter name (no &, =, # or spaces)', name)
  return name
}
