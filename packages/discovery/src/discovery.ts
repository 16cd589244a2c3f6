import {
  BadGatewayError,
  decodeJson,
  encodeJson,
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

/**
 * How discovery reaches an endpoint. The gateway passes one built on its upstream pools; tests build
 * one on `requestUpstream()` from `@switchboard/proxy-pass`.
 * @example
 * const transport: DiscoveryTransport = {
 *   send: (ex, endpointUrl, body) => requestUpstream(req, { pool: poolFor(endpointUrl), target: ex.upstreamTarget, body }),
 * }
 */
export interface DiscoveryTransport {
  /**
   * Sends the exchange's request (with `body` when given) to `endpointUrl` and returns the response
   * without writing it to the client; rejects with a `GatewayError` (502/504) on transport failure.
   */
  send(ex: Exchange, endpointUrl: string, body: Uint8Array | undefined): Promise<UpstreamResponse>
}

/** What happened to one request key. @example onEvent: (e) => log.info(`discovery ${e.type}`, e) */
export interface DiscoveryEvent {
  /**
   * `hit`: answered by the remembered endpoint. `probed`: one endpoint was tried (`reason` says how
   * it answered). `remembered`: an endpoint answered with success and was stored. `forgotten`: the
   * remembered endpoint failed (or is no longer configured) and its entry was deleted.
   */
  type: 'remembered' | 'forgotten' | 'probed' | 'hit'
  /** Store key without the namespace: `METHOD target #sha256`. */
  key: string
  /** The endpoint concerned. */
  endpoint?: string
  /** `status 404`, an error code such as `ERR_BAD_GATEWAY`, or `not configured`. */
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
}

/** One remembered route, as {@link Discovery.list} returns it. @example { key: 'GET /logs #e3b0…', endpoint: 'http://127.0.0.1:3100' } */
export interface RememberedRoute {
  /** Store key without the namespace: `METHOD target #sha256`. */
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
  /** Which answers count as "the endpoint serves this request". @default (status) => status === 200 */
  isSuccess?: (status: number) => boolean
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
 * First-200 discovery: for requests no route claims, tries `endpoints` in order and streams back the
 * first answer that is a 200 (when none is, the last answer). The winner is remembered per method,
 * target (path + query) and body hash for `ttlMs`, so the next identical request goes straight to it;
 * when that endpoint stops answering 200 the route is forgotten and the endpoints are probed again in
 * the same request. Request bodies are buffered (up to `maxBodyBytes`) so they can be replayed.
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
  readonly #onEvent: ((event: DiscoveryEvent) => void) | undefined
  readonly #onStoreError: ((error: unknown) => void) | undefined
  readonly #stats: DiscoveryStats = { hits: 0, misses: 0, probes: 0, remembered: 0, forgotten: 0 }

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
    if (header !== false && (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))) {
      throw new TypeError('discovery.header must be a header name or false')
    }
    if (options.isSuccess !== undefined && typeof options.isSuccess !== 'function') throw new TypeError('discovery.isSuccess must be a function')
    this.#endpoints = [...endpoints]
    this.#store = store
    this.#transport = transport
    this.#ttlMs = ttlMs
    this.#maxBodyBytes = maxBodyBytes
    this.#namespace = namespace
    this.#header = header === false ? false : header.toLowerCase()
    this.#isSuccess = options.isSuccess ?? isOk
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
    return this.#store.clear(this.#namespace + prefix)
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
    const { method, target } = ex.request
    const key = `${method} ${target} #${await payloadHash(body)}`
    const storeKey = this.#namespace + key
    let remembered: string | undefined
    try {
      remembered = await this.#read(storeKey)
    } catch (err) {
      this.#storeError(err)
    }
    if (remembered !== undefined && !this.#endpoints.includes(remembered)) {
      await this.#forget(storeKey, key, remembered, 'not configured')
      remembered = undefined
    }
    if (remembered === undefined) {
      this.#stats.misses++
      return this.#probe(ex, key, storeKey, body, this.#endpoints, undefined, undefined)
    }
    let response: UpstreamResponse | undefined
    let error: unknown
    try {
      response = await this.#transport.send(ex, remembered, body)
    } catch (err) {
      error = err
    }
    if (response && this.#isSuccess(response.status)) {
      this.#stats.hits++
      this.#emit({ type: 'hit', key, endpoint: remembered })
      return this.#respond(ex, response, 'hit')
    }
    await this.#forget(storeKey, key, remembered, response ? `status ${response.status}` : errorReason(error))
    this.#stats.misses++
    // The endpoint that just failed is not asked again in this request (it may not be idempotent);
    // its answer stays the last answer until another endpoint answers.
    const others = this.#endpoints.filter((e) => e !== remembered)
    return this.#probe(ex, key, storeKey, body, others, response, error)
  }

  /** Tries `endpoints` in order; answers with the first success, else with the last answer. */
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
    if (this.#header) headers[this.#header] = how
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

  async #remember(storeKey: string, key: string, endpoint: string): Promise<void> {
    try {
      await this.#store.set(storeKey, encodeJson({ endpoint }), { ttlMs: this.#ttlMs })
    } catch (err) {
      this.#storeError(err)
      return
    }
    this.#stats.remembered++
    this.#emit({ type: 'remembered', key, endpoint })
  }

  async #forget(storeKey: string, key: string, endpoint: string, reason: string): Promise<void> {
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

function isOk(status: number): boolean {
  return status === 200
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
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value
  return out
}
