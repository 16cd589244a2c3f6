import {
  BadGatewayError,
  GatewayError,
  HOP_BY_HOP_FIELDS,
  isGatewayError,
  type Exchange,
  type HeaderRecord,
  type Middleware,
  type Store,
  type UpstreamFetchInit,
  type UpstreamResponse,
} from '@switchboard/core'
import { parseCacheControl } from './cache-control.ts'
import { decodeRecord, encodeRecord, type CacheEntry, type StoredHeaders, type VaryStub } from './entry.ts'
import { cacheUrl, purgeUrl } from './key.ts'
import {
  assessStored,
  currentAge,
  freshnessLifetime,
  isStorable,
  mustRevalidate,
  notModified,
  staleWindows,
  varyKey,
  varyNames,
  type Assessment,
  type FreshnessOptions,
  type PolicyResponse,
} from './policy.ts'

/**
 * What the cache did for one request, as sent in `X-Cache`.
 * @example const status = response.headers['x-cache'] as CacheStatus
 */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'BYPASS'

/**
 * Options of {@link createHttpCache} and {@link cache}.
 * @example const options: CacheOptions = { store: memoryStore(), ttlMs: 60_000, keyHeaders: ['x-tenant'] }
 */
export interface CacheOptions {
  /**
   * Where entries live (required): `memoryStore({ maxBytes: 64 << 20 })` from `@switchboard/store` for
   * one process, a Redis store shared by gateway instances to share hits. Required rather than
   * defaulted so this package depends on no store implementation.
   */
  store: Store
  /**
   * Freshness for storable responses whose upstream gives none (no `s-maxage`, `max-age` or
   * `Expires`); replaces the `Last-Modified` heuristic. Never overrides upstream directives.
   * @default undefined (RFC 9111 heuristic: 10% of the time since `Last-Modified`, at most 24 h)
   */
  ttlMs?: number
  /** Largest body stored; larger ones stream through uncached and are never buffered whole. @default 1 MiB */
  maxObjectBytes?: number
  /** Extra request headers that become part of the key (for example a tenant header). @default [] */
  keyHeaders?: string[]
  /** Returns an extra key part for a request (for example the route name). @default undefined */
  key?: (ex: Exchange) => string
  /** Concurrent identical misses in this process make one upstream request. @default true */
  coalesce?: boolean
  /**
   * How long a coalesced request waits for the first request's response head (or its outcome)
   * before going upstream itself. Bounded short so one hung upstream request cannot hold every
   * identical request hostage. @default DEFAULT_COALESCE_WAIT_MS (1_000)
   */
  coalesceWaitMs?: number
  /**
   * Once the first request's head arrived and its response is being stored, how much longer a
   * coalesced request waits for the stored entry to be complete before going upstream itself.
   * The first response's body is stored as it is written to the first client, so a slow or
   * non-reading first client would otherwise pace every follower; this bound caps that.
   * @default DEFAULT_COALESCE_BODY_WAIT_MS (1_000)
   */
  coalesceBodyWaitMs?: number
  /**
   * Responses carrying `Set-Cookie`: `'never'` leaves them unstored (a cookie is usually a
   * per-user session or CSRF token, and a page that comes with one is usually personalised);
   * `'strip'` stores them without `Set-Cookie` (the client whose request fetched it still receives
   * it; hits never do). Use `'strip'` only when the upstream sets cookies on otherwise public,
   * identical responses (analytics, load-balancer affinity). @default 'never'
   */
  storeSetCookie?: 'never' | 'strip'
  /** Which status header to send: `X-Cache: HIT`, RFC 9211 `Cache-Status`, or both. @default 'x-cache' */
  statusHeader?: 'x-cache' | 'cache-status' | 'both'
  /** Prefix of every store key. @default 'cache:' */
  namespace?: string
  /** Clock for freshness and age, in ms since the epoch; inject one in tests. @default Date.now */
  now?: () => number
}

/**
 * Counters since the cache was created.
 * @example const { hits, misses } = httpCache.stats()
 */
export interface CacheStats {
  /** Fresh responses served from the store. */
  hits: number
  /** Requests forwarded with nothing usable stored. */
  misses: number
  /** Stale responses served (`stale-while-revalidate`, `stale-if-error`, `max-stale`). */
  stale: number
  /** Stored responses confirmed by a 304 from the upstream. */
  revalidated: number
  /** Requests the cache did not handle (unsafe methods, `Range`, upgrades, a `Host` that cannot be keyed). */
  bypass: number
  /** Responses written to the store. */
  stores: number
  /** Requests that waited for an identical in-flight request instead of going upstream at once. */
  coalesced: number
  /** Coalesced requests that stopped waiting (`coalesceWaitMs` / `coalesceBodyWaitMs`) and went upstream themselves. */
  coalesceTimeouts: number
}

/**
 * A shared HTTP cache: a middleware plus purge and stats.
 * @example
 * const httpCache: HttpCache = createHttpCache({ store: memoryStore() })
 * await httpCache.purge('http://api.local/users/1')
 */
export interface HttpCache {
  /** The caching layer for a gateway pipeline. */
  middleware(): Middleware
  /** Removes every stored variant of one URL (`http://host/path?query`); true when something was stored. */
  purge(url: string): Promise<boolean>
  /** Removes everything whose URL starts with `prefix` (`http://host/users/`); returns how many store keys went. */
  purgePrefix(prefix: string): Promise<number>
  /** A snapshot of the counters. */
  stats(): CacheStats
  /** Resolves once background work (stale-while-revalidate refreshes, stores, invalidations) has settled. */
  idle(): Promise<void>
}

/** Default {@link CacheOptions.maxObjectBytes}: 1 MiB. @example cache({ store, maxObjectBytes: 4 * DEFAULT_MAX_OBJECT_BYTES }) */
export const DEFAULT_MAX_OBJECT_BYTES: number = 1 << 20
/** Default {@link CacheOptions.coalesceWaitMs}: 1 s. @example cache({ store, coalesceWaitMs: DEFAULT_COALESCE_WAIT_MS / 2 }) */
export const DEFAULT_COALESCE_WAIT_MS: number = 1_000
/** Default {@link CacheOptions.coalesceBodyWaitMs}: 1 s. @example cache({ store, coalesceBodyWaitMs: 2 * DEFAULT_COALESCE_BODY_WAIT_MS }) */
export const DEFAULT_COALESCE_BODY_WAIT_MS: number = 1_000

/**
 * Creates a shared RFC 9111 cache over a {@link Store}: freshness, validation, `Vary`,
 * `stale-while-revalidate` / `stale-if-error`, invalidation by unsafe methods and request
 * coalescing (per process; instances sharing a Redis store share entries, not in-flight requests).
 * @example
 * const httpCache = createHttpCache({ store: memoryStore({ maxBytes: 64 << 20 }), ttlMs: 60_000 })
 * const gateway = await createGateway(config, { policies: [httpCache.middleware()] })
 * await httpCache.purgePrefix('http://api.local/users/')
 */
export function createHttpCache(options: CacheOptions): HttpCache {
  return new SharedCache(options)
}

/**
 * The caching middleware alone: `createHttpCache(options).middleware()`.
 * @example createGateway(config, { policies: [cache({ store: memoryStore(), ttlMs: 60_000 })] })
 */
export function cache(options: CacheOptions): Middleware {
  return createHttpCache(options).middleware()
}

class SharedCache implements HttpCache {
  #store: Store
  #freshness: FreshnessOptions
  #maxObjectBytes: number
  #keyHeaders: string[]
  #keyHook: ((ex: Exchange) => string) | undefined
  #coalesce: boolean
  #coalesceWaitMs: number
  #coalesceBodyWaitMs: number
  #stripSetCookie: boolean
  #statusHeader: 'x-cache' | 'cache-status' | 'both'
  #namespace: string
  #now: () => number
  #stats: CacheStats = { hits: 0, misses: 0, stale: 0, revalidated: 0, bypass: 0, stores: 0, coalesced: 0, coalesceTimeouts: 0 }
  #inflight = new Map<string, Flight>()
  #refreshing = new Set<string>()
  #background = new Set<Promise<unknown>>()

  constructor(options: CacheOptions) {
    const {
      ttlMs,
      maxObjectBytes = DEFAULT_MAX_OBJECT_BYTES,
      coalesceWaitMs = DEFAULT_COALESCE_WAIT_MS,
      coalesceBodyWaitMs = DEFAULT_COALESCE_BODY_WAIT_MS,
      storeSetCookie = 'never',
    } = options
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs >= 0)) {
      throw new RangeError('cache.ttlMs must be a non-negative number')
    }
    if (!Number.isInteger(maxObjectBytes) || maxObjectBytes < 0) {
      throw new RangeError('cache.maxObjectBytes must be a non-negative integer')
    }
    if (!(Number.isFinite(coalesceWaitMs) && coalesceWaitMs >= 0)) {
      throw new RangeError('cache.coalesceWaitMs must be a non-negative number')
    }
    if (!(Number.isFinite(coalesceBodyWaitMs) && coalesceBodyWaitMs >= 0)) {
      throw new RangeError('cache.coalesceBodyWaitMs must be a non-negative number')
    }
    if (storeSetCookie !== 'never' && storeSetCookie !== 'strip') {
      throw new RangeError("cache.storeSetCookie must be 'never' or 'strip'")
    }
    const statusHeader = options.statusHeader ?? 'x-cache'
    if (!['x-cache', 'cache-status', 'both'].includes(statusHeader)) {
      throw new RangeError("cache.statusHeader must be 'x-cache', 'cache-status' or 'both'")
    }
    const keyHeaders = options.keyHeaders ?? []
    if (!Array.isArray(keyHeaders) || keyHeaders.some((h) => typeof h !== 'string' || !h)) {
      throw new TypeError('cache.keyHeaders must be a list of header names')
    }
    if (options.key !== undefined && typeof options.key !== 'function') throw new TypeError('cache.key must be a function')
    if (typeof options?.store?.get !== 'function') throw new TypeError('cache.store is required: a Store such as memoryStore() from @switchboard/store')
    this.#store = options.store
    this.#freshness = { defaultTtlMs: ttlMs }
    this.#maxObjectBytes = maxObjectBytes
    this.#keyHeaders = keyHeaders.map((h) => h.toLowerCase())
    this.#keyHook = options.key
    this.#coalesce = options.coalesce ?? true
    this.#coalesceWaitMs = coalesceWaitMs
    this.#coalesceBodyWaitMs = coalesceBodyWaitMs
    this.#stripSetCookie = storeSetCookie === 'strip'
    this.#statusHeader = statusHeader
    this.#namespace = options.namespace ?? 'cache:'
    this.#now = options.now ?? Date.now
  }

  middleware(): Middleware {
    const handle = (ex: Exchange, next: () => Promise<void>): Promise<void> => this.#handle(ex, next)
    return async function cache(ex, next) {
      await handle(ex, next)
    }
  }

  async purge(url: string): Promise<boolean> {
    const primary = this.#namespace + purgeUrl(url, false)
    const existed = await this.#store.delete(primary)
    // Variant keys are unreachable once the primary record is gone; clearing them just frees space.
    const variants = await this.#store.clear(`${primary} `)
    return existed || variants > 0
  }

  purgePrefix(prefix: string): Promise<number> {
    return this.#store.clear(this.#namespace + purgeUrl(prefix, true))
  }

  stats(): CacheStats {
    return { ...this.#stats }
  }

  async idle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background])
  }

  async #handle(ex: Exchange, next: () => Promise<void>): Promise<void> {
    const { method, headers } = ex.request
    if (method !== 'GET' && method !== 'HEAD') {
      this.#stats.bypass++
      this.#label(ex.responseHeaders, 'BYPASS', 'fwd=method')
      if (SAFE_METHODS.has(method)) return next()
      return this.#invalidateAfter(ex, next)
    }
    // Decision: range requests and upgrades pass through untouched; we only store whole responses.
    if (headers.range !== undefined || headers.upgrade !== undefined) {
      this.#stats.bypass++
      this.#label(ex.responseHeaders, 'BYPASS', 'fwd=bypass')
      return next()
    }
    const url = this.#url(ex)
    if (url === undefined) {
      // A Host outside RFC 3986 authority syntax (or a non-origin-form target) has no unambiguous
      // key: never store or serve it from the cache.
      this.#stats.bypass++
      this.#label(ex.responseHeaders, 'BYPASS', 'fwd=bypass; detail=key')
      return next()
    }
    const arrived = this.#now()
    const requestCc = parseCacheControl(headers['cache-control'])
    const extras = this.#extras(ex)
    let found = await this.#lookup(ex, url, extras)
    let verdict = found && this.#assess(ex, found.entry)
    if (found && verdict && (await this.#answerFromStore(ex, url, extras, found, verdict))) return
    // RFC 9111 §5.2.1.7: nothing usable without going upstream → 504.
    if (requestCc['only-if-cached'] !== undefined) return this.#notCached(ex)

    let flight: Leader | undefined
    const coalesceKey = `${url} ${extras}`
    if (this.#coalesce && verdict?.usability !== 'unusable') {
      const pending = this.#inflight.get(coalesceKey)
      if (pending) {
        this.#stats.coalesced++
        const followed = await this.#follow(pending)
        if (!followed) this.#stats.coalesceTimeouts++
        found = await this.#lookup(ex, url, extras)
        verdict = found && this.#assess(ex, found.entry)
        if (found && verdict?.usability === 'revalidate' && found.entry.responseTime >= arrived) {
          // The leader fetched or validated it after this request arrived: that is the validation
          // `no-cache` asks for, so concurrent no-cache requests still make one upstream call.
          verdict = { ...verdict, usability: 'fresh' }
        }
        if (found && verdict && (await this.#answerFromStore(ex, url, extras, found, verdict))) return
        // The leader's response was not stored (uncacheable, too big, failed): go upstream alone.
        // When the leader is stuck instead (no head, or a body paced by a slow client), this
        // request takes over, so later arrivals wait on a live request rather than the stuck one.
        if (!followed && this.#inflight.get(coalesceKey) === pending) flight = this.#lead(coalesceKey)
      } else {
        flight = this.#lead(coalesceKey)
      }
    }
    const leader = flight ?? NOT_LEADING
    if (found && verdict?.usability === 'revalidate') {
      try {
        return await this.#revalidate(ex, url, extras, found.entry, verdict, leader)
      } finally {
        leader.release()
      }
    }
    return this.#miss(ex, next, url, extras, leader)
  }

  /**
   * Waits for a leader: up to `coalesceWaitMs` for its head, then (when it is storing) up to
   * `coalesceBodyWaitMs` for the stored entry. False when a bound ran out.
   */
  async #follow(flight: Flight): Promise<boolean> {
    const first = await raceTimeout([flight.done.then(() => 'done' as const), flight.head.then(() => 'head' as const)], this.#coalesceWaitMs)
    if (first === 'done') return true
    if (first === undefined) return false
    return (await raceTimeout([flight.done.then(() => 'done' as const)], this.#coalesceBodyWaitMs)) === 'done'
  }

  /** Serves a stored response when the verdict allows it; false when the caller must go upstream. */
  async #answerFromStore(ex: Exchange, url: string, extras: string, found: Found, verdict: Assessment): Promise<boolean> {
    switch (verdict.usability) {
      case 'fresh':
        this.#stats.hits++
        await this.#serve(ex, found.entry, 'HIT', verdict)
        return true
      case 'stale-while-revalidate':
        this.#refreshInBackground(ex, url, extras, found)
        this.#stats.stale++
        await this.#serve(ex, found.entry, 'STALE', verdict)
        return true
      case 'stale':
        this.#stats.stale++
        await this.#serve(ex, found.entry, 'STALE', verdict)
        return true
      default:
        return false
    }
  }

  async #miss(ex: Exchange, next: () => Promise<void>, url: string, extras: string, leader: Leader): Promise<void> {
    const release = leader.release
    this.#stats.misses++
    this.#label(ex.responseHeaders, 'MISS', 'fwd=uri-miss')
    const request = { method: ex.request.method, headers: ex.request.headers }
    const requestCc = parseCacheControl(ex.request.headers['cache-control'])
    if (request.method === 'GET' && requestCc['no-store'] === undefined) {
      // Fetch the full representation so it can be stored; the client gets a 200 it can use.
      ex.upstreamHeaders['if-none-match'] = undefined
      ex.upstreamHeaders['if-modified-since'] = undefined
    }
    const requestTime = this.#now()
    let capture: Capture | undefined
    let meta: PolicyResponse | undefined
    let sawHead = false
    let ended = false
    let writing = false
    ex.tap({
      onHead: (status, headers) => {
        sawHead = true
        meta = { status, headers: storedHeaders(headers), requestTime, responseTime: this.#now() }
        if (!this.#shouldStore(request, meta, headers)) {
          release()
          return false
        }
        capture = new Capture(this.#maxObjectBytes)
        leader.head()
        return true
      },
      onData: (chunk) => {
        if (capture && !capture.push(chunk)) {
          capture = undefined // too big: stop capturing, the client stream goes on untouched
          release()
        }
      },
      onEnd: () => {
        ended = true
        if (!capture || !meta) return release()
        const entry: CacheEntry = { kind: 'entry', ...meta, headers: meta.headers as StoredHeaders, body: capture.bytes() }
        capture = undefined
        writing = true
        // Followers are released once the entry is readable, not merely once the body ended.
        this.#track(this.#write(url, extras, request.headers, entry).finally(release))
      },
      onAbort: () => {
        ended = true
        capture = undefined
        release()
      },
    })
    try {
      await next()
    } finally {
      // Without a response head the tap never runs; with one, onEnd/onAbort release the followers
      // (after the write, when there is one).
      if (!writing && (!sawHead || ended || !capture)) release()
    }
  }

  async #revalidate(
    ex: Exchange,
    url: string,
    extras: string,
    entry: CacheEntry,
    verdict: Assessment,
    leader: Leader,
  ): Promise<void> {
    const requestTime = this.#now()
    let upstream: UpstreamResponse
    try {
      upstream = await ex.fetchUpstream(conditionalInit(entry))
    } catch (err) {
      if (verdict.staleIfError && isServerFailure(err)) return this.#serveStaleOnError(ex, entry, verdict)
      const stale = verdict.ageMs >= verdict.lifetimeMs
      if (stale && isServerFailure(err) && mustRevalidate(parseCacheControl(entry.headers['cache-control']))) {
        // RFC 9111 §5.2.2.2 (must-revalidate), §5.2.2.8 (proxy-revalidate), §5.2.2.10 (s-maxage):
        // a disconnected cache MUST NOT reuse the stale response and SHOULD answer 504.
        throw new GatewayError(504, 'ERR_MUST_REVALIDATE', 'Stored response is stale and the upstream could not validate it', {
          cause: err,
        })
      }
      throw err
    }
    const responseTime = this.#now()
    if (!isFinalStatus(upstream.status)) {
      // Never store or serve a status outside 200–599 (the gateway makes it a 502 on its own path;
      // here the cache called fetchUpstream itself, so it must not crash or relay it either).
      upstream.cancel()
      if (verdict.staleIfError) return this.#serveStaleOnError(ex, entry, verdict)
      throw new BadGatewayError({ details: { reason: 'invalid upstream status' } })
    }
    if (upstream.status >= 500 && verdict.staleIfError) {
      upstream.cancel()
      return this.#serveStaleOnError(ex, entry, verdict)
    }
    leader.head()
    const request = { method: 'GET', headers: ex.request.headers }
    if (upstream.status === 304) {
      upstream.cancel()
      const refreshed = refresh(entry, upstream.headers, requestTime, responseTime)
      this.#stats.revalidated++
      if (this.#shouldStore(request, refreshed, refreshed.headers)) await this.#write(url, extras, request.headers, refreshed)
      // Followers need the stored entry, not this client's copy: release before writing to it.
      leader.release()
      return this.#serve(ex, refreshed, 'REVALIDATED', this.#assess(ex, refreshed))
    }
    this.#stats.misses++
    return this.#forward(ex, url, extras, upstream, requestTime, responseTime, leader)
  }

  /** Writes a response fetched with fetchUpstream to the client, storing it when allowed. */
  async #forward(
    ex: Exchange,
    url: string,
    extras: string,
    upstream: UpstreamResponse,
    requestTime: number,
    responseTime: number,
    leader: Leader,
  ): Promise<void> {
    const request = { method: 'GET', headers: ex.request.headers }
    const meta: PolicyResponse = { status: upstream.status, headers: storedHeaders(upstream.headers), requestTime, responseTime }
    let capture = this.#shouldStore(request, meta, upstream.headers) ? new Capture(this.#maxObjectBytes) : undefined
    const headers: Record<string, string | string[]> = { ...(meta.headers as StoredHeaders) }
    this.#label(headers, 'MISS', `fwd=stale; fwd-status=${upstream.status}`)
    this.#label(ex.responseHeaders, 'MISS', `fwd=stale; fwd-status=${upstream.status}`)
    let complete = false
    if (ex.request.method === 'HEAD') {
      // The client wants no body, but reading it (bounded) lets us store the refreshed GET response.
      if (capture) {
        for await (const chunk of upstream.body) {
          if (!capture.push(chunk)) {
            capture = undefined
            break
          }
        }
        complete = capture !== undefined
      }
      upstream.cancel()
      await ex.respond(upstream.status, headers)
    } else {
      const relay = async function* (): AsyncGenerator<Uint8Array> {
        try {
          for await (const chunk of upstream.body) {
            if (capture && !capture.push(chunk)) capture = undefined
            yield chunk
          }
          complete = true
        } finally {
          if (!complete) upstream.cancel()
        }
      }
      await ex.respond(upstream.status, headers, relay())
    }
    if (complete && capture) {
      await this.#write(url, extras, request.headers, { kind: 'entry', ...meta, headers: meta.headers as StoredHeaders, body: capture.bytes() })
    }
    leader.release()
  }

  #refreshInBackground(ex: Exchange, url: string, extras: string, found: Found): void {
    if (this.#refreshing.has(found.key)) return
    this.#refreshing.add(found.key)
    const request = { method: 'GET', headers: ex.request.headers }
    const task = (async () => {
      const requestTime = this.#now()
      // Not tied to the client: the response may be long gone when this settles.
      const upstream = await ex.fetchUpstream(conditionalInit(found.entry))
      const responseTime = this.#now()
      if (!isFinalStatus(upstream.status)) return upstream.cancel()
      if (upstream.status === 304) {
        upstream.cancel()
        const refreshed = refresh(found.entry, upstream.headers, requestTime, responseTime)
        this.#stats.revalidated++
        if (this.#shouldStore(request, refreshed, refreshed.headers)) await this.#write(url, extras, request.headers, refreshed)
        return
      }
      const meta: PolicyResponse = { status: upstream.status, headers: storedHeaders(upstream.headers), requestTime, responseTime }
      if (upstream.status >= 500) return upstream.cancel()
      if (!this.#shouldStore(request, meta, upstream.headers)) {
        upstream.cancel()
        // The upstream no longer allows caching this: stop serving the old copy stale.
        await this.#store.delete(found.key)
        return
      }
      const capture = new Capture(this.#maxObjectBytes)
      for await (const chunk of upstream.body) {
        if (!capture.push(chunk)) return upstream.cancel()
      }
      await this.#write(url, extras, request.headers, { kind: 'entry', ...meta, headers: meta.headers as StoredHeaders, body: capture.bytes() })
    })()
      .catch(() => {
        // A failed refresh keeps the stale entry; the next request past the window revalidates.
      })
      .finally(() => this.#refreshing.delete(found.key))
    this.#track(task)
  }

  async #invalidateAfter(ex: Exchange, next: () => Promise<void>): Promise<void> {
    let pending: Promise<unknown> | undefined
    ex.tap({
      onHead: (status, headers) => {
        // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and
        // the same-origin Location / Content-Location URIs.
        if (status >= 200 && status < 400) {
          const target = this.#url(ex)
          const urls = target === undefined ? [] : [target]
          for (const name of ['location', 'content-location']) {
            const value = headers[name]
            const other = sameOrigin(ex, Array.isArray(value) ? value[0] : value)
            if (other !== undefined) urls.push(other)
          }
          pending = this.#track(Promise.all(urls.map((u) => this.#store.delete(this.#namespace + u).catch(() => false))))
        }
        return false
      },
      onData: noop,
      onEnd: noop,
      onAbort: noop,
    })
    await next()
    if (pending) await pending
  }

  async #serve(ex: Exchange, entry: CacheEntry, status: CacheStatus, verdict: Assessment): Promise<void> {
    const ttl = Math.floor((verdict.lifetimeMs - verdict.ageMs) / 1000)
    const detail = status === 'REVALIDATED' ? 'fwd=stale; fwd-status=304' : `hit; ttl=${ttl}`
    const age = String(Math.floor(verdict.ageMs / 1000))
    this.#label(ex.responseHeaders, status, detail)
    const requestHeaders = ex.request.headers
    const conditional = requestHeaders['if-none-match'] !== undefined || requestHeaders['if-modified-since'] !== undefined
    if (entry.status === 200 && conditional && notModified(requestHeaders, entry.headers)) {
      // RFC 9110 §15.4.5: a 304 carries the validator and caching fields, no body.
      const headers: Record<string, string | string[]> = { age }
      for (const name of NOT_MODIFIED_FIELDS) if (entry.headers[name] !== undefined) headers[name] = entry.headers[name]
      this.#label(headers, status, detail)
      return ex.respond(304, headers)
    }
    const headers: Record<string, string | string[]> = { ...entry.headers, age }
    if (entry.status === 204 || entry.status === 304) delete headers['content-length']
    else headers['content-length'] = String(entry.body.byteLength)
    this.#label(headers, status, detail)
    return ex.respond(entry.status, headers, ex.request.method === 'HEAD' || entry.status === 204 ? undefined : entry.body)
  }

  #serveStaleOnError(ex: Exchange, entry: CacheEntry, verdict: Assessment): Promise<void> {
    this.#stats.stale++
    return this.#serve(ex, entry, 'STALE', verdict)
  }

  #notCached(ex: Exchange): Promise<void> {
    this.#stats.misses++
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
    this.#label(headers, 'MISS', 'fwd=miss')
    this.#label(ex.responseHeaders, 'MISS', 'fwd=miss')
    const body = JSON.stringify({ error: { code: 'ERR_NOT_CACHED', message: 'Not in cache (only-if-cached)' } })
    return ex.respond(504, headers, body)
  }

  #assess(ex: Exchange, entry: CacheEntry): Assessment {
    return assessStored(ex.request, entry, this.#now(), this.#freshness)
  }

  /** Storable (RFC 9111 §3), fits the size limit, and worth keeping (fresh, validatable or usable stale). */
  #shouldStore(request: { method: string; headers: HeaderRecord }, meta: PolicyResponse, raw: HeaderRecord): boolean {
    // storeSetCookie 'strip': judge (and later store, see #write) the response without Set-Cookie.
    const judged = this.#stripSetCookie && meta.headers['set-cookie'] !== undefined ? { ...meta, headers: withoutSetCookie(meta.headers) } : meta
    if (!isStorable(request, judged)) return false
    const length = Number(Array.isArray(raw['content-length']) ? raw['content-length'][0] : raw['content-length'])
    if (Number.isFinite(length) && length > this.#maxObjectBytes) return false
    return this.#storeTtlMs(meta) > 0
  }

  /** How long the store keeps an entry: fresh time plus what it can still serve stale or validate. */
  #storeTtlMs(meta: PolicyResponse): number {
    const lifetime = freshnessLifetime(meta, this.#freshness)
    const freshLeft = Math.max(0, lifetime - currentAge(meta, this.#now()))
    const windows = staleWindows(meta.headers)
    const validatable = meta.headers.etag !== undefined || meta.headers['last-modified'] !== undefined
    const keep = Math.max(windows.whileRevalidateMs, windows.ifErrorMs, validatable ? Math.min(Math.max(lifetime, MIN_VALIDATABLE_KEEP_MS), MAX_VALIDATABLE_KEEP_MS) : 0)
    return freshLeft + keep
  }

  async #write(url: string, extras: string, requestHeaders: HeaderRecord, entry: CacheEntry): Promise<void> {
    // Never store a Set-Cookie: with 'never' such responses do not get here; with 'strip' the
    // cookie goes to the client that caused the fetch only.
    if (entry.headers['set-cookie'] !== undefined) entry = { ...entry, headers: withoutSetCookie(entry.headers) as StoredHeaders }
    const names = varyNames(entry.headers)
    if (names === '*') return
    const ttlMs = Math.max(1000, Math.ceil(this.#storeTtlMs(entry)))
    const primary = this.#namespace + url
    try {
      if (names.length === 0 && extras === '') {
        await this.#store.set(primary, encodeRecord(entry), { ttlMs })
      } else {
        const existing = decodeRecord(await this.#store.get(primary))
        const stub: VaryStub =
          existing?.kind === 'vary' && existing.names.join(',') === names.join(',')
            ? existing
            : { kind: 'vary', names, generation: crypto.randomUUID() }
        await this.#store.set(variantKey(primary, stub, extras, requestHeaders), encodeRecord(entry), { ttlMs })
        await this.#store.set(primary, encodeRecord(stub), { ttlMs: Math.max(ttlMs, STUB_MIN_TTL_MS) })
      }
      this.#stats.stores++
    } catch {
      // Decision: a failing store degrades to "no cache", never to a failed request.
    }
  }

  async #lookup(ex: Exchange, url: string, extras: string): Promise<Found | undefined> {
    const primary = this.#namespace + url
    try {
      const record = decodeRecord(await this.#store.get(primary))
      if (record === undefined) return undefined
      if (record.kind === 'entry') return extras === '' ? { key: primary, entry: record } : undefined
      const key = variantKey(primary, record, extras, ex.request.headers)
      const entry = decodeRecord(await this.#store.get(key))
      return entry?.kind === 'entry' ? { key, entry } : undefined
    } catch {
      return undefined
    }
  }

  #lead(key: string): Leader {
    let resolveHead!: () => void
    let resolveDone!: () => void
    const flight: Flight = {
      head: new Promise<void>((r) => (resolveHead = r)),
      done: new Promise<void>((r) => (resolveDone = r)),
    }
    this.#inflight.set(key, flight)
    return {
      head: resolveHead,
      release: () => {
        if (this.#inflight.get(key) === flight) this.#inflight.delete(key)
        resolveHead()
        resolveDone()
      },
    }
  }

  /** The URL part of the key, from the normalised Host and the raw target; undefined: bypass. */
  #url(ex: Exchange): string | undefined {
    const { protocol, host, target } = ex.request
    return cacheUrl(protocol, host, target)
  }

  #extras(ex: Exchange): string {
    const parts = this.#keyHeaders.map((name) => {
      const value = ex.request.headers[name]
      if (value === undefined) return `${name}-`
      return `${name}=${encodeURIComponent(Array.isArray(value) ? value.join(',') : value)}`
    })
    if (this.#keyHook) parts.push(`key=${encodeURIComponent(this.#keyHook(ex))}`)
    return parts.join('&')
  }

  #label(headers: Record<string, string | string[]>, status: CacheStatus, detail: string): void {
    if (this.#statusHeader !== 'cache-status') headers['x-cache'] = status
    if (this.#statusHeader !== 'x-cache') headers['cache-status'] = `switchboard; ${detail}`
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#background.add(promise)
    const forget = (): void => {
      this.#background.delete(promise)
    }
    promise.then(forget, forget)
    return promise
  }
}

/** An in-flight leading request, as followers see it. */
interface Flight {
  /** Settles when the leader's response head arrived and is being stored. */
  readonly head: Promise<void>
  /** Settles when the entry is stored, or when the leader will store nothing. */
  readonly done: Promise<void>
}

/** The leader's side of a {@link Flight}. */
interface Leader {
  head(): void
  release(): void
}

const NOT_LEADING: Leader = { head: noop, release: noop }

interface Found {
  /** Store key of the entry. */
  key: string
  entry: CacheEntry
}

/** Collects body chunks up to a limit; past it, refuses and drops what it had. */
class Capture {
  #chunks: Uint8Array[] = []
  #size = 0
  #limit: number
  constructor(limit: number) {
    this.#limit = limit
  }
  push(chunk: Uint8Array): boolean {
    this.#size += chunk.byteLength
    if (this.#size > this.#limit) {
      this.#chunks = []
      return false
    }
    // A copy: transports may reuse their buffers once the chunk is written.
    this.#chunks.push(chunk.slice())
    return true
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#size)
    let offset = 0
    for (const chunk of this.#chunks) {
      out.set(chunk, offset)
      offset += chunk.byteLength
    }
    return out
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])
const HOP_BY_HOP = new Set(HOP_BY_HOP_FIELDS)
/**
 * Never stored: our own status headers (a stored MISS would be replayed on every hit), and
 * RFC 9111 §3.1: the fields specific to the proxy hop (`Proxy-Authenticate`,
 * `Proxy-Authentication-Info`, `Proxy-Authorization`), since the key does not include the proxy.
 */
const NOT_STORED = new Set(['x-cache', 'cache-status', 'proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization'])
/**
 * RFC 9111 §3.2: fields a 304 must not overwrite in the stored response. `Content-Length` is
 * excluded by name (MUST); `Content-Range` is framing the recipient processes; `Content-Encoding`
 * describes the stored bytes themselves, which a 304 does not resend ("fields the stored response
 * depends upon"). Everything else in the 304 (other than the §3.1 fields dropped by
 * `storedHeaders`) replaces the stored value, `Content-Type` included.
 */
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'content-range'])
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']
const MIN_VALIDATABLE_KEEP_MS = 60_000
const MAX_VALIDATABLE_KEEP_MS = 24 * 60 * 60 * 1000
const STUB_MIN_TTL_MS = 60 * 60 * 1000

function noop(): void {}

/** RFC 9110 §15: a final status is a three-digit code from 200 to 599. */
function isFinalStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 200 && status <= 599
}

function withoutSetCookie(headers: HeaderRecord): HeaderRecord {
  const { 'set-cookie': _dropped, ...rest } = headers
  return rest
}

function storedHeaders(headers: HeaderRecord): StoredHeaders {
  const connectionListed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((n) => n.trim().toLowerCase())
      .filter(Boolean),
  )
  const out: StoredHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || NOT_STORED.has(name) || connectionListed.has(name)) continue
    out[name] = value
  }
  return out
}

/** RFC 9111 §4.3.4: a 304 updates the stored header fields and the age bookkeeping. */
function refresh(entry: CacheEntry, headers: HeaderRecord, requestTime: number, responseTime: number): CacheEntry {
  const merged: StoredHeaders = { ...entry.headers }
  // Age and Date describe the old response; the 304's own (or none) describe the refreshed one.
  delete merged.age
  delete merged.date
  for (const [name, value] of Object.entries(storedHeaders(headers))) {
    if (!NOT_UPDATED.has(name)) merged[name] = value
  }
  return { ...entry, headers: merged, requestTime, responseTime }
}

function conditionalInit(entry: CacheEntry): UpstreamFetchInit {
  const etag = entry.headers.etag
  const lastModified = entry.headers['last-modified']
  return {
    method: 'GET',
    headers: {
      'if-none-match': Array.isArray(etag) ? etag.join(', ') : etag,
      'if-modified-since': Array.isArray(lastModified) ? lastModified[0] : lastModified,
      // The client's own preconditions and ranges must not shape what we store.
      'if-match': undefined,
      'if-unmodified-since': undefined,
      'if-range': undefined,
      range: undefined,
    },
  }
}

function variantKey(primary: string, stub: VaryStub, extras: string, requestHeaders: HeaderRecord): string {
  return `${primary} ${stub.generation} ${extras}|${varyKey(stub.names, requestHeaders) ?? ''}`
}

function isServerFailure(err: unknown): boolean {
  return !isGatewayError(err) || err.status >= 500
}

function sameOrigin(ex: Exchange, value: string | undefined): string | undefined {
  if (!value) return undefined
  const { protocol, host, path } = ex.request
  try {
    const base = new URL(`${protocol}://${host}${path}`)
    const resolved = new URL(value, base)
    if (resolved.host !== base.host) return undefined
    return cacheUrl(protocol, host, `${resolved.pathname}${resolved.search}`)
  } catch {
    return undefined
  }
}

/** The first of `promises` to settle, or undefined after `ms`. */
async function raceTimeout<T>(promises: Promise<T>[], ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([...promises, new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms)
      })])
  } finally {
    clearTimeout(timer)
  }
}
