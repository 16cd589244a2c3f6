// Helpers shared by the drivers; not exported from the package.
import type { StoreSetOptions } from '@switchboard/core'

/** Default `limit` of `keys()`. */
export const DEFAULT_KEYS_LIMIT = 1000

/** Validated TTL in whole milliseconds (rounded up), or `undefined` for no expiry. */
export function ttlOf(options: StoreSetOptions | undefined): number | undefined {
  const ttl = options?.ttlMs
  if (ttl === undefined) return undefined
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${String(ttl)}`)
  }
  return Math.ceil(ttl)
}

/** Validated `increment()` step. */
export function stepOf(by: number | undefined): number {
  const step = by ?? 1
  if (!Number.isSafeInteger(step)) throw new RangeError(`increment: by must be a safe integer, got ${String(by)}`)
  return step
}

/** Validated `keys()` limit. */
export function limitOf(options: { limit?: number } | undefined): number {
  const limit = options?.limit ?? DEFAULT_KEYS_LIMIT
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`keys: limit must be a non-negative integer, got ${String(limit)}`)
  return limit
}

/** Throws a TypeError unless `key` is a string. */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${typeof key}`)
}

/** Throws a TypeError unless `value` is a Uint8Array. */
export function checkValue(value: unknown): void {
  if (!(value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array')
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const INTEGER_RE = /^-?\d+$/

/** Counters are stored as ASCII decimal text, as Redis does, so `get()` reads the same on every driver. */
export const encodeCounter = (n: number): Uint8Array => encoder.encode(String(n))

/** The integer in `bytes`; throws a TypeError when they hold anything else. */
export function decodeCounter(key: string, bytes: Uint8Array): number {
  const text = bytes.byteLength <= 24 ? decoder.decode(bytes) : ''
  const n = INTEGER_RE.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n)) throw new TypeError(`increment: value of ${JSON.stringify(key)} is not an integer`)
  return n
}

/** Adds with an overflow check, like Redis's INCRBY. */
export function addChecked(current: number, by: number): number {
  const next = current + by
  if (!Number.isSafeInteger(next)) throw new RangeError('increment: result is outside the safe integer range')
  return next
}

/** Byte-for-byte equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** A plain Uint8Array view of any Uint8Array subclass (a Node Buffer), without copying. */
export const plainBytes = (bytes: Uint8Array): Uint8Array =>
  bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Calls `unref()` on a timer where the runtime has it (Node, Bun), `Deno.unrefTimer` on Deno. */
export function unrefTimer(timer: unknown): void {
  const t = timer as { unref?: () => void }
  if (typeof t?.unref === 'function') {
    t.unref()
    return
  }
  const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno
  if (typeof timer === 'number') deno?.unrefTimer?.(timer)
}
