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
