/** Options of a write. */
export interface StoreSetOptions {
  /** Time to live in milliseconds; no expiry when absent. */
  ttlMs?: number
}

/**
 * Key/value state shared by everything that keeps state (rate limits, the cache, remembered
 * routes). Values are bytes; `encodeText`/`decodeText` and `encodeJson`/`decodeJson` convert.
 * Drivers: memory (default), SQLite, Redis. Every driver passes the shared conformance suite.
 */
export interface Store {
  /** Driver name: `memory`, `sqlite`, `redis`. */
  readonly name: string
  /** The value, or `undefined` when absent or expired. */
  get(key: string): Promise<Uint8Array | undefined>
  /** Writes `value`, replacing any previous value and TTL. */
  set(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<void>
  /** Writes only when the key is absent; true when written. */
  setIfAbsent(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<boolean>
  /**
   * Writes `value` only when the current value equals `expected` byte for byte
   * (`undefined`: only when absent); true when written.
   */
  compareAndSet(
    key: string,
    expected: Uint8Array | undefined,
    value: Uint8Array,
    options?: StoreSetOptions,
  ): Promise<boolean>
  /** Removes the key; true when it existed. */
  delete(key: string): Promise<boolean>
  /**
   * Atomically adds `by` (default 1) to an integer counter and returns the new value. The TTL is
   * applied when the counter is created and left alone afterwards (fixed windows).
   */
  increment(key: string, by?: number, options?: StoreSetOptions): Promise<number>
  /** Live keys that start with `prefix`, at most `limit` (default 1000). */
  keys(prefix: string, options?: { limit?: number }): Promise<string[]>
  /** Removes every key that starts with `prefix` (everything when empty); returns how many. */
  clear(prefix?: string): Promise<number>
  /** Releases connections and files. */
  close(): Promise<void>
  /**
   * Optional capability: one atomic rate-limit decision over every window of `request`, in one
   * round trip (memory: one JavaScript turn; Redis: one Lua script). Either every window admits the
   * request and each one consumes `cost`, or none consumes anything. State lives at
   * `${key}#${index}` for each window. Drivers without it (SQLite, custom ones) are driven by the
   * `rate-limit` policy through `get` + `compareAndSet` instead. In `failMode: 'open'` a driver
   * whose backend is down resolves an allowing result with `failedOpen: true`.
   */
  rateLimit?(key: string, request: RateLimitRequest): Promise<RateLimitResult>
}

/** Algorithms a {@link Store.rateLimit} capability understands. */
export type RateLimitAlgorithm = 'token-bucket' | 'fixed-window' | 'sliding-window-log' | 'sliding-window-counter'

/** One limit of a {@link RateLimitRequest}: `limit` units per `windowMs`. */
export interface RateLimitWindow {
  /** Units admitted per window (token bucket: refill rate per window). A positive integer. */
  readonly limit: number
  /** Window length in ms, a positive integer. */
  readonly windowMs: number
  /** Token bucket only: bucket capacity. @default limit */
  readonly burst?: number
}

/** What {@link Store.rateLimit} decides on. */
export interface RateLimitRequest {
  readonly algorithm: RateLimitAlgorithm
  /** One or more windows, all of which must admit the request. */
  readonly windows: readonly RateLimitWindow[]
  /** Units this request consumes. @default 1 */
  readonly cost?: number
  /** Decision time in epoch ms. @default the store's clock (Redis: server `TIME`, shared by a fleet) */
  readonly nowMs?: number
}

/** The state of one window after a decision. */
export interface RateLimitWindowResult {
  /** Units left in the window after this decision. */
  readonly remaining: number
  /** Ms until the window is back to its full quota (0 when nothing is used). */
  readonly resetMs: number
  /** Ms until this window would admit the same request; 0 when it admits it now. */
  readonly retryAfterMs: number
}

/** The answer of {@link Store.rateLimit}. */
export interface RateLimitResult {
  /** True when every window admitted the request (and consumed `cost`). */
  readonly allowed: boolean
  /** Ms until the request would be admitted; 0 when allowed. */
  readonly retryAfterMs: number
  /** One entry per window, in request order. */
  readonly windows: readonly RateLimitWindowResult[]
  /** The backend was unavailable and the driver's `failMode: 'open'` allowed the request. */
  readonly failedOpen?: boolean
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** UTF-8 bytes of `text`. @example await store.set('k', encodeText('v')) */
export const encodeText = (text: string): Uint8Array => encoder.encode(text)
/** Text from UTF-8 bytes. @example decodeText(await store.get('k')) */
export const decodeText = (bytes: Uint8Array): string => decoder.decode(bytes)
/** JSON-encodes `value` to bytes. @example await store.set('k', encodeJson({ a: 1 })) */
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
/** Parses JSON bytes. @example decodeJson<{ a: number }>(bytes) */
export const decodeJson = <T = unknown>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T
