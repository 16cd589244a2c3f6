import { checkRateLimitRequest, decideRateLimit, type RateLimitRequest, type RateLimitResult, type Store, type StoreSetOptions } from '@switchboard/core'
import { LRUCache } from 'lru-cache'
import {
  addChecked,
  bytesEqual,
  checkKey,
  checkValue,
  decodeCounter,
  encodeCounter,
  limitOf,
  stepOf,
  ttlOf,
} from './internal.ts'

/** Default `maxEntries` of {@link memoryStore}. */
export const DEFAULT_MAX_ENTRIES = 10_000
/** Default `maxBytes` of {@link memoryStore}: 64 MiB. */
export const DEFAULT_MAX_BYTES: number = 64 * 1024 * 1024

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** Most keys kept; the least recently used go first. @default 10_000 */
  maxEntries?: number
  /**
   * Most bytes kept (values plus keys counted as two bytes per UTF-16 unit). A single value
   * larger than this is not stored. @default 67_108_864 (64 MiB)
   */
  maxBytes?: number
  /** Clock in epoch milliseconds; inject a fake one in tests. @default Date.now */
  now?: () => number
}

interface Entry {
  readonly value: Uint8Array
  /** Epoch ms; `Infinity` when the entry never expires. */
  expiresAt: number
  /** Set for rate-limit state, kept as text (ASCII digits): no encoding on every decision. */
  readonly text?: string
}

/** An entry written as text; its bytes are made only if someone reads it with `get()`. */
class TextEntry implements Entry {
  readonly text: string
  expiresAt: number
  #bytes: Uint8Array | undefined
  constructor(text: string, expiresAt: number) {
    this.text = text
    this.expiresAt = expiresAt
  }
  get value(): Uint8Array {
    this.#bytes ??= textEncoder.encode(this.text)
    return this.#bytes
  }
}

/**
 * An in-process store on lru-cache, bounded by entries and bytes. The default driver: fastest, and
 * every operation is atomic because JavaScript runs it in one turn, but nothing is shared between
 * processes or survives a restart. Values passed to `set` are copied; values returned by `get` are
 * the stored bytes, so treat them as read-only.
 * @example
 * const store = memoryStore({ maxEntries: 50_000, maxBytes: 128 << 20 })
 */
export const memoryStore = (options: MemoryStoreOptions = {}): Store => new MemoryStore(options)

class MemoryStore implements Store {
  readonly name = 'memory'
  #cache: LRUCache<string, Entry>
  #now: () => number

  constructor(options: MemoryStoreOptions) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isInteger(maxEntries) || maxEntries <= 0) throw new RangeError('memoryStore: maxEntries must be a positive integer')
    if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new RangeError('memoryStore: maxBytes must be a positive integer')
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('memoryStore: now must be a function')
    this.#now = options.now ?? Date.now
    // Expiry is checked here against the injectable clock rather than with lru-cache's own TTL,
    // which reads performance.now() and caches it on a timer.
    this.#cache = new LRUCache<string, Entry>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => Math.max(1, (entry.text !== undefined ? entry.text.length : entry.value.byteLength) + key.length * 2),
    })
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key)
    return this.#live(key)?.value
  }

  async set(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<void> {
    checkKey(key)
    checkValue(value)
    this.#write(key, value.slice(), ttlOf(options))
  }

  async setIfAbsent(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<boolean> {
    checkKey(key)
    checkValue(value)
    const ttl = ttlOf(options)
    if (this.#live(key)) return false
    this.#write(key, value.slice(), ttl)
    return true
  }

  async compareAndSet(
    key: string,
    expected: Uint8Array | undefined,
    value: Uint8Array,
    options?: StoreSetOptions,
  ): Promise<boolean> {
    checkKey(key)
    checkValue(value)
    if (expected !== undefined) checkValue(expected)
    const ttl = ttlOf(options)
    const current = this.#live(key)
    if (expected === undefined ? current !== undefined : current === undefined || !bytesEqual(current.value, expected)) {
      return false
    }
    this.#write(key, value.slice(), ttl)
    return true
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key)
    const existed = this.#live(key) !== undefined
    this.#cache.delete(key)
    return existed
  }

  async increment(key: string, by?: number, options?: StoreSetOptions): Promise<number> {
    checkKey(key)
    const step = stepOf(by)
    const ttl = ttlOf(options)
    const current = this.#live(key)
    if (current === undefined) {
      this.#write(key, encodeCounter(step), ttl)
      return step
    }
    const next = addChecked(decodeCounter(key, current.value), step)
    // Fixed windows: the TTL set at creation stays.
    this.#cache.set(key, { value: encodeCounter(next), expiresAt: current.expiresAt })
    return next
  }

  async keys(prefix: string, options?: { limit?: number }): Promise<string[]> {
    const limit = limitOf(options)
    const now = this.#now()
    const out: string[] = []
    if (limit === 0) return out
    for (const [key, entry] of this.#cache.entries()) {
      if (!key.startsWith(prefix) || entry.expiresAt <= now) continue
      out.push(key)
      if (out.length >= limit) break
    }
    return out
  }

  async clear(prefix = ''): Promise<number> {
    const now = this.#now()
    const doomed: string[] = []
    let live = 0
    for (const [key, entry] of this.#cache.entries()) {
      if (!key.startsWith(prefix)) continue
      doomed.push(key)
      if (entry.expiresAt > now) live++
    }
    for (const key of doomed) this.#cache.delete(key)
    return live
  }

  async close(): Promise<void> {
    this.#cache.clear()
  }

  /**
   * Atomic because it runs in one JavaScript turn: reads every window's state, decides, writes back.
   * State is evicted like any other entry (LRU, maxEntries/maxBytes), which resets that limit.
   */
  async rateLimit(key: string, request: RateLimitRequest): Promise<RateLimitResult> {
    checkKey(key)
    checkRateLimitRequest(request)
    const keys = request.windows.map((_, i) => `${key}#${i}`)
    const states = keys.map((k) => {
      const entry = this.#live(k)
      return entry === undefined ? undefined : (entry.text ?? textDecoder.decode(entry.value))
    })
    const { result, steps } = decideRateLimit({ ...request, nowMs: request.nowMs ?? this.#now() }, states)
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!
      const entry = new TextEntry(step.state, this.#now() + step.ttlMs)
      if (!this.#cache.set(keys[i]!, entry).has(keys[i]!)) this.#cache.delete(keys[i]!)
    }
    return result
  }

  /** The entry when present and not expired; drops it when expired. */
  #live(key: string): Entry | undefined {
    const entry = this.#cache.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#cache.delete(key)
      return undefined
    }
    return entry
  }

  #write(key: string, value: Uint8Array, ttl: number | undefined): void {
    const expiresAt = ttl === undefined ? Number.POSITIVE_INFINITY : this.#now() + ttl
    // A value over maxBytes is refused by lru-cache; drop the old one so a reader never sees stale bytes.
    if (!this.#cache.set(key, { value, expiresAt }).has(key)) this.#cache.delete(key)
  }
}

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()
