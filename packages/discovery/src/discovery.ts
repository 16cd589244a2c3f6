import {
  BadGatewayError,
  decodeJson,
  encodeJson,
  encodeText,
  type Exchange,
  type HeaderRecord,
  type Middleware,
  PayloadTooLargeError,
  type Store,
  type UpstreamResponse,
} from '@switchboard/core'
import { payloadHash } from './payload-hash.ts'

/** Default `ttlMs` of {@link createDiscovery}: one hour. @example DEFAULT_TTL_MS // 3_600_000 */
export const DEFAULT_TTL_MS: number = 3_600_000
/** Default `maxBodyBytes` of {@link createDiscovery}: 1 MiB. @example DEFAULT_MAX_BODY_BYTES // 1_048_576 */
export const DEFAULT_MAX_BODY_BYTES: number = 1024 * 1024
/** Default `namespace` of {@link createDiscovery}. @example DEFAULT_NAMESPACE // 'routes:' */
export const DEFAULT_NAMESPACE: string = 'routes:'
/** Default `header` of {@link createDiscovery}. @example DEFAULT_HEADER // 'x-switchboard-discovery' */
export const DEFAULT_HEADER: string = 'x-switchboard-discovery'
/** Default `maxEntries` of {@link createDiscovery}. @example DEFAULT_MAX_ENTRIES // 10_000 */
export const DEFAULT_MAX_ENTRIES: number = 10_000
/** Default `successStatuses` of {@link createDiscovery}: any 2xx. @example DEFAULT_SUCCESS_STATUSES // ['2xx'] */
export const DEFAULT_SUCCESS_STATUSES: readonly StatusPattern[] = Object.freeze(['2xx'] as StatusPattern[])

/**
 * One entry of `successStatuses`: an exact status code (`200`) or a class (`'2xx'`).
 * @example const ok: StatusPattern[] = [200, 204, '3xx']
 */
export type StatusPattern = number | '1xx' | '2xx' | '3xx' | '4xx' | '5xx'

/** How `replay` treats requests: see {@link DiscoveryOptions.replay}. @example const mode: ReplayMode = 'all' */
export type ReplayMode = 'idempotent' | 'all'

/**
 * How discovery reaches an endpoint. The gateway passes one built on its upstream pools; tests build
 * one on `requestUpstream()` from `@switchboard/proxy-pass`.
 * @example
 * const transport: DiscoveryTransport = {
 *   send: (ex, endpointUrl, body) => requestUpstream(req, { pool: createUpstreamPool(endpointUrl), target: ex.upstreamTarget, body }),
 * }
 */
export interface DiscoveryTransport {
  /**
   * Sends the exchange's request (with `body` when given) to `endpointUrl` and returns the response
   * without writing it to the client; rejects with a `GatewayError` (502/504) on transport failure.
   * `body` is the buffered request body (at most `maxBodyBytes`): a transport must send those bytes
   * and never read the client's stream, because the same request may be sent to several endpoints.
   */
  send(ex: Exchange, endpointUrl: string, body: Uint8Array | undefined): Promise<UpstreamResponse>
}

/** What happened to one request key. @example onEvent: (e) => log.info(`discovery ${e.type}`, e) */
export interface DiscoveryEvent {
  /**
   * `hit`: answered by the remembered endpoint (`reason` is set when it answered 401/403, which is
   * passed through and keeps the route). `probed`: one endpoint was tried (`reason` says how it
   * answered, or which transport error it failed with). `remembered`: an endpoint answered with
   * success and was stored. `forgotten`: the remembered endpoint failed (or is no longer
   * configured, or the entry was evicted by `maxEntries`) and its entry was deleted.
   */
  type: 'remembered' | 'forgotten' | 'probed' | 'hit'
  /** Store key without the namespace: `METHOD path #sha256(body)`, plus ` @sha256(headers)` with `keyHeaders`. */
  key: string
  /** The endpoint concerned. */
  endpoint?: string
  /** `status 404`, an error code such as `ERR_BAD_GATEWAY`, `not configured`, or `evicted`. */
  reason?: string
}

/** Counters of one discovery object since it was created. @example discovery.stats().hits */
export interface DiscoveryStats {
  /** Requests answered by a remembered endpoint without probing. */
  hits: number
  /** Requests that found nothing usable remembered and probed. */
  misses: number
  /** Requests sent to endpoints while probing (one per endpoint tried). */
  probes: number
  /** Routes written to the store. */
  remembered: number
  /** Routes deleted because the remembered endpoint failed or left the endpoint list. */
  forgotten: number
  /** Routes this instance deleted to stay within `maxEntries` (least recently used first). */
  evicted: number
}

/** One remembered route, as {@link Discovery.list} returns it. @example { key: 'GET /logs #e3b0…', endpoint: 'http://127.0.0.1:3100' } */
export interface RememberedRoute {
  /** Store key without the namespace: `METHOD path #sha256(body)`, plus ` @sha256(headers)` with `keyHeaders`. */
  key: string
  /** The endpoint that answered. */
  endpoint: string
}

/**
 * Options of {@link createDiscovery}.
 * @example createDiscovery({ endpoints: ['http://127.0.0.1:3000', 'http://127.0.0.1:3100'], store, transport })
 */
export interface DiscoveryOptions {
  /** Endpoint base URLs, tried in this order. Required, at least one. */
  endpoints: string[]
  /** Where remembered routes live (memory, SQLite for one machine, Redis for a fleet). Required. */
  store: Store
  /** Sends requests to endpoints. Required. */
  transport: DiscoveryTransport
  /**
   * How long a remembered route is used before the endpoints are probed again, in ms. Fixed from
   * when it was remembered: hits do not extend it. @default 3_600_000 (1 h)
   */
  ttlMs?: number
  /** Largest request body buffered for replay; past it the request fails with 413 `ERR_PAYLOAD_TOO_LARGE`. @default 1_048_576 (1 MiB) */
  maxBodyBytes?: number
  /** Prefix of every store key. @default 'routes:' */
  namespace?: string
  /** Response header saying `hit` or `probe`; `false` adds none. @default 'x-switchboard-discovery' */
  header?: string | false
  /**
   * Which answers count as "the endpoint serves this request": they end the search, are sent to the
   * client and are remembered. Exact codes or classes, e.g. `[200, '2xx']`. Any 2xx by default, so a
   * `201 Created` is never replayed to the next endpoint. 401 and 403 end the search whatever this
   * says, and are never remembered. @default ['2xx']
   */
  successStatuses?: StatusPattern[]
  /**
   * Overrides `successStatuses` with a predicate (kept for compatibility; when both are set this one
   * wins). 401 and 403 still end the search and are never remembered.
   * @default derived from `successStatuses`
   */
  isSuccess?: (status: number) => boolean
  /**
   * Which requests may be sent to more than one endpoint. `'idempotent'`: only GET, HEAD, OPTIONS,
   * PUT, DELETE and TRACE (RFC 9110 §9.2.2) are probed; any other method (POST, PATCH, …) is sent to
   * the remembered endpoint, or else to the first endpoint only, and its answer is returned whatever
   * it is. `'all'`: every method is probed (the SingleEndpointRouter behaviour).
   * @default 'idempotent'
   */
  replay?: ReplayMode
  /**
   * Request headers (names, matched case-insensitively) whose values become part of the route key,
   * hashed, so different identities (`authorization`, `cookie`, `x-tenant`) get separate routes. An
   * absent header is keyed as absent, distinct from an empty one. @default []
   */
  keyHeaders?: string[]
  /** Include the query string in the route key; by default routes are keyed on the path only. @default false */
  keyQuery?: boolean
  /**
   * Most routes this instance keeps: it tracks the keys it wrote in an in-process LRU index and,
   * before writing one more, deletes the least recently used from the store. Keys written by other
   * instances or before a restart are bounded by the store's own limit and the TTL. @default 10_000
   */
  maxEntries?: number
  /** Called for every hit, probe, remembered and forgotten route. @default none */
  onEvent?: (event: DiscoveryEvent) => void
  /** Called when the store fails; discovery then probes (and does not remember) instead of failing the request. @default none */
  onStoreError?: (error: unknown) => void
}

/**
 * A discovery object: its middleware and the admin calls on its remembered routes.
 * @example
 * const discovery: Discovery = createDiscovery({ endpoints, store, transport })
 * await discovery.forget('POST /get_log_files') // or clear() for everything
 */
export interface Discovery {
  /** The middleware. It answers every request that reaches it, so place it last. */
  middleware(): Middleware
  /** Deletes remembered routes whose key (without namespace) starts with `prefix` (all when empty); returns how many. */
  forget(prefix?: string): Promise<number>
  /** Deletes every remembered route; returns how many. Same as `forget()`. */
  clear(): Promise<number>
  /** Remembered routes whose key starts with `prefix`, at most `limit` (default 1000). */
  list(prefix?: string, options?: { limit?: number }): Promise<RememberedRoute[]>
  /** A snapshot of the counters. */
  stats(): DiscoveryStats
}

/**
 * Discovery: for requests no route claims, tries `endpoints` in order and streams back the first
 * successful answer (any 2xx by default; when none is, the last answer). A 401/403 ends the search
 * without being remembered, and non-idempotent requests go to one endpoint only (see `replay`). The
 * winner is remembered per method, path (plus query with `keyQuery`), body hash and `keyHeaders` for
 * `ttlMs`, so the next identical request goes straight to it; when that endpoint stops succeeding the
 * route is forgotten and the endpoints are probed again in the same request. Request bodies are
 * buffered (up to `maxBodyBytes`) so they can be replayed.
 * @example
 * const discovery = createDiscovery({ endpoints: ['http://127.0.0.1:3000', 'http://127.0.0.1:3100'], store, transport })
 * const policies = [requestId(), discovery.middleware()] // last: it answers everything
 */
export function createDiscovery(options: DiscoveryOptions): Discovery {
  return new DiscoveryImpl(options)
}

class DiscoveryImpl implements Discovery {
  readonly #endpoints: readonly string[]
  readonly #store: Store
  readonly #transport: DiscoveryTransport
  readonly #ttlMs: number
  readonly #maxBodyBytes: number
  readonly #namespace: string
  readonly #header: string | false
  readonly #isSuccess: (status: number) => boolean
  readonly #replayAll: boolean
  readonly #keyHeaders: readonly string[]
  readonly #keyQuery: boolean
  readonly #maxEntries: number
  readonly #onEvent: ((event: DiscoveryEvent) => void) | undefined
  readonly #onStoreError: ((error: unknown) => void) | undefined
  readonly #stats: DiscoveryStats = { hits: 0, misses: 0, probes: 0, remembered: 0, forgotten: 0, evicted: 0 }
  /** Store keys this instance wrote, least recently used first (a Map keeps insertion order). */
  readonly #index: Map<string, true> = new Map()

  constructor(options: DiscoveryOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('createDiscovery: options are required')
    const { endpoints, store, transport } = options
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      throw new TypeError('discovery.endpoints must be a non-empty list of http(s) URLs')
    }
    endpoints.forEach((url, i) => {
      if (!isHttpUrl(url)) throw new TypeError(`discovery.endpoints[${i}] must be an http(s) URL, got ${JSON.stringify(url)}`)
    })
    if (new Set(endpoints).size !== endpoints.length) throw new TypeError('discovery.endpoints must not repeat an endpoint')
    if (typeof store?.get !== 'function') throw new TypeError('discovery.store must be a Store')
    if (typeof transport?.send !== 'function') throw new TypeError('discovery.transport must have a send() method')
    const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError('discovery.ttlMs must be a positive integer')
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0) throw new RangeError('discovery.maxBodyBytes must be a non-negative integer')
    const namespace = options.namespace ?? DEFAULT_NAMESPACE
    if (typeof namespace !== 'string') throw new TypeError('discovery.namespace must be a string')
    const header = options.header ?? DEFAULT_HEADER
    if (header !== false && (typeof header !== 'string' || !TOKEN.test(header))) {
      throw new TypeError('discovery.header must be a header name or false')
    }
    if (options.isSuccess !== undefined && typeof options.isSuccess !== 'function') throw new TypeError('discovery.isSuccess must be a function')
    const successStatuses = parseStatuses(options.successStatuses ?? DEFAULT_SUCCESS_STATUSES)
    const replay = options.replay ?? 'idempotent'
    if (replay !== 'idempotent' && replay !== 'all') throw new TypeError(`discovery.replay must be 'idempotent' or 'all'`)
    const keyHeaders = options.keyHeaders ?? []
    if (!Array.isArray(keyHeaders)) throw new TypeError('discovery.keyHeaders must be a list of header names')
    keyHeaders.forEach((name, i) => {
      if (typeof name !== 'string' || !TOKEN.test(name)) throw new TypeError(`discovery.keyHeaders[${i}] must be a header name`)
    })
    const keyQuery = options.keyQuery ?? false
    if (typeof keyQuery !== 'boolean') throw new TypeError('discovery.keyQuery must be a boolean')
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    if (!Number.isInteger(maxEntries) || maxEntries <= 0) throw new RangeError('discovery.maxEntries must be a positive integer')
    this.#endpoints = [...endpoints]
    this.#store = store
    this.#transport = transport
    this.#ttlMs = ttlMs
    this.#maxBodyBytes = maxBodyBytes
    this.#namespace = namespace
    this.#header = header === false ? false : header.toLowerCase()
    this.#isSuccess = options.isSuccess ?? successStatuses
    this.#replayAll = replay === 'all'
    // Deduplicated and sorted, so `['X-Tenant', 'authorization']` and its reverse key alike.
    this.#keyHeaders = [...new Set(keyHeaders.map((h) => h.toLowerCase()))].sort()
    this.#keyQuery = keyQuery
    this.#maxEntries = maxEntries
    this.#onEvent = options.onEvent
    this.#onStoreError = options.onStoreError
  }

  middleware(): Middleware {
    const handle = (ex: Exchange): Promise<void> => this.#handle(ex)
    return async function discovery(ex) {
      await handle(ex)
    }
  }

  async forget(prefix = ''): Promise<number> {
    const full = this.#namespace + prefix
    for (const key of [...this.#index.keys()]) if (key.startsWith(full)) this.#index.delete(key)
    return this.#store.clear(full)
  }

  clear(): Promise<number> {
    return this.forget()
  }

  async list(prefix = '', options: { limit?: number } = {}): Promise<RememberedRoute[]> {
    const keys = await this.#store.keys(this.#namespace + prefix, options)
    const out: RememberedRoute[] = []
    for (const full of keys) {
      const endpoint = await this.#read(full)
      if (endpoint !== undefined) out.push({ key: full.slice(this.#namespace.length), endpoint })
    }
    return out
  }

  stats(): DiscoveryStats {
    return { ...this.#stats }
  }

  async #handle(ex: Exchange): Promise<void> {
    const body = await this.#readBody(ex)
    const key = await this.#key(ex, body)
    const storeKey = this.#namespace + key
    // RFC 9110 §9.2.2: only idempotent requests may be repeated without changing the outcome.
    const replayable = this.#replayAll || IDEMPOTENT.has(ex.request.method.toUpperCase())
    const candidates = replayable ? this.#endpoints : this.#endpoints.slice(0, 1)
    let remembered: string | undefined
    try {
      remembered = await this.#read(storeKey)
    } catch (err) {
      this.#storeError(err)
    }
    // Expired or deleted elsewhere: it no longer counts against this instance's maxEntries.
    if (remembered === undefined) this.#index.delete(storeKey)
    if (remembered !== undefined && !this.#endpoints.includes(remembered)) {
      await this.#forget(storeKey, key, remembered, 'not configured')
      remembered = undefined
    }
    if (remembered === undefined) {
      this.#stats.misses++
      return this.#probe(ex, key, storeKey, body, candidates, undefined, undefined)
    }
    let response: UpstreamResponse | undefined
    let error: unknown
    try {
      response = await this.#transport.send(ex, remembered, body)
    } catch (err) {
      error = err
    }
    if (response && (isAuthFailure(response.status) || this.#isSuccess(response.status))) {
      // A 401/403 says who is asking, not where the route lives: pass it through, keep the route.
      this.#stats.hits++
      this.#touch(storeKey)
      const reason = isAuthFailure(response.status) ? `status ${response.status}` : undefined
      this.#emit(reason === undefined ? { type: 'hit', key, endpoint: remembered } : { type: 'hit', key, endpoint: remembered, reason })
      return this.#respond(ex, response, 'hit')
    }
    await this.#forget(storeKey, key, remembered, response ? `status ${response.status}` : errorReason(error))
    this.#stats.misses++
    // The endpoint that just failed is not asked again in this request (it may not be idempotent);
    // its answer stays the last answer until another endpoint answers. A request that may not be
    // replayed gets that answer (or error) as it is.
    const others = replayable ? this.#endpoints.filter((e) => e !== remembered) : []
    return this.#probe(ex, key, storeKey, body, others, response, error)
  }

  /** Tries `endpoints` in order; answers with the first success or 401/403, else with the last answer. */
  async #probe(
    ex: Exchange,
    key: string,
    storeKey: string,
    body: Uint8Array | undefined,
    endpoints: readonly string[],
    failed: UpstreamResponse | undefined,
    failedError: unknown,
  ): Promise<void> {
    // The latest non-success answer, held (unread) until a later endpoint answers or the list ends.
    let last = failed
    let lastError = failedError
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i]
      this.#stats.probes++
      let response: UpstreamResponse
      try {
        response = await this.#transport.send(ex, endpoint, body)
      } catch (err) {
        lastError = err
        this.#emit({ type: 'probed', key, endpoint, reason: errorReason(err) })
        continue
      }
      this.#emit({ type: 'probed', key, endpoint, reason: `status ${response.status}` })
      if (isAuthFailure(response.status)) {
        // Hardening item 11: an unauthenticated probe must not pin the route to a catch-all that
        // answers 200, so a 401/403 ends the search and is never remembered.
        last?.cancel()
        return this.#respond(ex, response, 'probe')
      }
      if (this.#isSuccess(response.status)) {
        last?.cancel()
        // The store write runs alongside the response: a slow store must not delay the first byte.
        const remembering = this.#remember(storeKey, key, endpoint)
        try {
          await this.#respond(ex, response, 'probe')
        } finally {
          await remembering
        }
        return
      }
      last?.cancel()
      last = response
    }
    if (last) return this.#respond(ex, last, 'probe')
    throw lastError ?? new BadGatewayError()
  }

  /** `METHOD path #sha256(body)`, then the query with `keyQuery`, then ` @sha256(keyHeaders values)`. */
  async #key(ex: Exchange, body: Uint8Array | undefined): Promise<string> {
    const { method, path, target } = ex.request
    let key = `${method} ${this.#keyQuery ? target : path} #${await payloadHash(body)}`
    if (this.#keyHeaders.length > 0) {
      const headers = ex.request.headers
      // Object.hasOwn: a header named `constructor` or `__proto__` must not read Object.prototype.
      const values = this.#keyHeaders.map((name) => {
        const value = Object.hasOwn(headers, name) ? headers[name] : undefined
        return value === undefined ? null : Array.isArray(value) ? value.map(String) : String(value)
      })
      key += ` @${await payloadHash(encodeText(JSON.stringify([this.#keyHeaders, values])))}`
    }
    return key
  }

  async #readBody(ex: Exchange): Promise<Uint8Array | undefined> {
    const headers = ex.request.headers
    const length = headers['content-length']
    const chunked = headers['transfer-encoding'] !== undefined
    if (!chunked && (length === undefined || length === '0')) return undefined
    // Refuse a declared oversize body before reading a byte of it.
    if (!chunked && typeof length === 'string' && Number(length) > this.#maxBodyBytes) throw new PayloadTooLargeError()
    return ex.readBody(this.#maxBodyBytes)
  }

  async #respond(ex: Exchange, response: UpstreamResponse, how: 'hit' | 'probe'): Promise<void> {
    const headers = definedHeaders(response.headers)
    if (this.#header) setOwn(headers, this.#header, how)
    try {
      await ex.respond(response.status, headers, response.body)
    } catch (err) {
      response.cancel()
      throw err
    }
  }

  async #read(storeKey: string): Promise<string | undefined> {
    const bytes = await this.#store.get(storeKey)
    if (bytes === undefined) return undefined
    try {
      const value = decodeJson<{ endpoint?: unknown }>(bytes)
      return typeof value?.endpoint === 'string' ? value.endpoint : undefined
    } catch {
      return undefined
    }
  }

  /** Marks a key this instance wrote as just used (hits do not write to the store). */
  #touch(storeKey: string): void {
    if (this.#index.delete(storeKey)) this.#index.set(storeKey, true)
  }

  async #remember(storeKey: string, key: string, endpoint: string): Promise<void> {
    // Hardening item 13: the index is updated synchronously, so concurrent requests never let it
    // (or the keys this instance holds in the store) grow past maxEntries.
    const evicted: string[] = []
    if (!this.#index.delete(storeKey)) {
      while (this.#index.size >= this.#maxEntries) {
        const oldest = this.#index.keys().next().value as string
        this.#index.delete(oldest)
        evicted.push(oldest)
      }
    }
    this.#index.set(storeKey, true)
    for (const old of evicted) {
      try {
        await this.#store.delete(old)
      } catch (err) {
        this.#storeError(err)
      }
      this.#stats.evicted++
      this.#emit({ type: 'forgotten', key: old.slice(this.#namespace.length), reason: 'evicted' })
    }
    try {
      await this.#store.set(storeKey, encodeJson({ endpoint }), { ttlMs: this.#ttlMs })
    } catch (err) {
      this.#index.delete(storeKey)
      this.#storeError(err)
      return
    }
    this.#stats.remembered++
    this.#emit({ type: 'remembered', key, endpoint })
  }

  async #forget(storeKey: string, key: string, endpoint: string, reason: string): Promise<void> {
    this.#index.delete(storeKey)
    try {
      await this.#store.delete(storeKey)
    } catch (err) {
      this.#storeError(err)
    }
    this.#stats.forgotten++
    this.#emit({ type: 'forgotten', key, endpoint, reason })
  }

  #storeError(error: unknown): void {
    try {
      this.#onStoreError?.(error)
    } catch {
      // Same as #emit: a reporting bug must not fail the request.
    }
  }

  #emit(event: DiscoveryEvent): void {
    if (!this.#onEvent) return
    try {
      this.#onEvent(event)
    } catch {
      // An observer's bug must not fail the request it observes.
    }
  }
}

/** RFC 9110 §9.2.2 idempotent methods: the ones probing may send to several endpoints. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** RFC 9110 §5.6.2 token: a header name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function isAuthFailure(status: number): boolean {
  return status === 401 || status === 403
}

/** Compiles `successStatuses` into a predicate; throws a TypeError naming the bad entry. */
function parseStatuses(list: readonly StatusPattern[]): (status: number) => boolean {
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`discovery.successStatuses must be a non-empty list of status codes or classes such as '2xx'`)
  }
  const codes = new Set<number>()
  const classes = new Set<number>()
  list.forEach((entry: unknown, i) => {
    if (typeof entry === 'number' && Number.isInteger(entry) && entry >= 100 && entry <= 599) codes.add(entry)
    else if (typeof entry === 'string' && /^[1-5]xx$/i.test(entry)) classes.add(Number(entry[0]))
    else throw new TypeError(`discovery.successStatuses[${i}] must be a status code (100-599) or a class such as '2xx', got ${JSON.stringify(entry)}`)
  })
  return (status) => codes.has(status) || classes.has(Math.floor(status / 100))
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

function errorReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : String((err as Error)?.message ?? err)
}

function definedHeaders(headers: HeaderRecord): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) setOwn(out, name, value)
  return out
}

/** `obj[name] = value` that also works for `__proto__` (plain assignment would set the prototype). */
function setOwn(obj: Record<string, string | string[]>, name: string, value: string | string[]): void {
  Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true })
}
