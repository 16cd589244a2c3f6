import type { HeaderRecord } from './types.ts'

/** The incoming request as policies see it: no socket, no runtime object. */
export interface ExchangeRequest {
  /** Upper-case method. */
  readonly method: string
  /** Raw request target (path and query) exactly as received. */
  readonly target: string
  /** Path part of `target`, raw (not decoded). */
  readonly path: string
  /** Query part of `target` including `?`, or `''`. */
  readonly query: string
  /**
   * `path` normalised (dot segments resolved, unreserved escapes decoded, `//` merged): what routing
   * and authorization decisions use, so `/public/../private` counts as `/private`.
   */
  readonly normalizedPath: string
  /** Lowercase header record; repeated fields are joined (`set-cookie` stays a list). */
  readonly headers: HeaderRecord
  /** Client address. */
  readonly clientIp: string
  /** `http` or `https`, as the client reached the gateway. */
  readonly protocol: 'http' | 'https'
  /** Value of the client's `Host` header, `''` when absent. */
  readonly host: string
}

/** The route that claimed the request. */
export interface MatchedRoute {
  /** Route name from config. */
  readonly name: string
  /** Named and wildcard params (`*` for the wildcard remainder). */
  readonly params: Readonly<Record<string, string>>
}

/**
 * Observes a response as it streams to the client (the cache uses one to store what it sees).
 * `onHead` returning false detaches the tap for this response.
 */
export interface ResponseTap {
  onHead(status: number, headers: HeaderRecord): boolean
  onData(chunk: Uint8Array): void
  onEnd(): void
  /** The response was cut short (upstream or client abort). */
  onAbort(error: unknown): void
}

/** Overrides for {@link Exchange.fetchUpstream}. */
export interface UpstreamFetchInit {
  /** Method to send. @default the request's method */
  method?: string
  /** Extra or overriding upstream headers (`undefined` removes). */
  headers?: Record<string, string | undefined>
}

/** A response fetched with {@link Exchange.fetchUpstream}. */
export interface UpstreamResponse {
  readonly status: number
  /** Lowercase header record, hop-by-hop fields already removed. */
  readonly headers: HeaderRecord
  /** The body bytes as they arrive; iterate it or call `cancel()`. */
  readonly body: AsyncIterable<Uint8Array>
  /** Discards the body and releases the connection. */
  cancel(): void
}

/**
 * One request's state as it passes through the policy chain: runtime-neutral, the body stays a
 * stream until a step asks for it with a limit.
 */
export interface Exchange {
  readonly request: ExchangeRequest
  /** The matched route, once matching ran. */
  route: MatchedRoute | undefined
  /** Per-request state for policies. */
  readonly state: Map<string, unknown>
  /** Headers set on the upstream request (a string overrides, `undefined` removes). */
  readonly upstreamHeaders: Record<string, string | undefined>
  /** Path and query sent upstream; rewrites change it. Defaults to the raw target. */
  upstreamTarget: string
  /** Headers set on the client response, applied over the upstream's. */
  readonly responseHeaders: Record<string, string | string[]>
  /**
   * Reads the whole request body, at most `limit` bytes (413 `ERR_PAYLOAD_TOO_LARGE` past it).
   * The bytes read are what is forwarded upstream afterwards, so reading never loses the body.
   */
  readBody(limit: number): Promise<Uint8Array>
  /**
   * Answers the client directly; later layers (and the upstream) are skipped. A streamed body
   * (`AsyncIterable`) is written with backpressure; the promise settles when the response is done.
   */
  respond(
    status: number,
    headers?: Record<string, string | string[]>,
    body?: string | Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<void>
  /**
   * Sends the request to the route's upstream (same balancer, timeouts and header rules as the
   * final step) and returns the response instead of writing it to the client. Used for cache
   * revalidation; the caller must consume or cancel `body`.
   */
  fetchUpstream(init?: UpstreamFetchInit): Promise<UpstreamResponse>
  /** True once a response head was written (by `respond` or by the upstream step). */
  readonly responded: boolean
  /** Registers an observer of the response on its way to the client. */
  tap(tap: ResponseTap): void
  /** Registers a callback that may edit status headers just before they are written. */
  onResponseHead(hook: (status: number, headers: HeaderRecord) => void): void
  /**
   * Status and headers of the response once its head was written (read it after `next()`);
   * `undefined` before. Optional so that small exchanges in tests need not implement it.
   */
  readonly response?: ExchangeResponseInfo | undefined
  /** The error that became this exchange's response, when one did (set by the pipeline). */
  error?: unknown
}

/** What a layer can read of the response after `next()`. */
export interface ExchangeResponseInfo {
  readonly status: number
  /** Lowercase header record as written (may omit fields the transport adds itself). */
  readonly headers: HeaderRecord
}

/**
 * One layer of the pipeline. Runs in order on the way in and in reverse on the way out; any layer
 * may answer on its own by not calling `next()`.
 * @example
 * const hello: Middleware = async (ex, next) => {
 *   if (ex.request.path === '/hello') return ex.respond(200, {}, 'hi')
 *   await next()
 * }
 */
export type Middleware = (ex: Exchange, next: () => Promise<void>) => Promise<void>
