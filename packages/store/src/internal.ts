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

/** What a driver does when its backend is unavailable: `'open'` degrades, `'closed'` rejects. */
export type FailMode = 'open' | 'closed'

/** Context passed to a driver's `onError` callback with every availability failure. */
export interface StoreErrorInfo {
  /** Driver name, e.g. `'sqlite'`. */
  driver: string
  /** The database file, for file-backed drivers. */
  path?: string
  /** The store method (or background task: `'sweep'`, `'evict'`) that failed. */
  operation: string
  /** What the call did about it. */
  failMode: FailMode
}

/** How often the default error reporter repeats one distinct error, in ms. */
export const ERROR_LOG_INTERVAL_MS = 10_000

/**
 * The default `onError`: one JSON line on stderr per distinct error (driver, path, message) per
 * {@link ERROR_LOG_INTERVAL_MS}, so a locked database cannot flood the log.
 */
export function throttledErrorLog(now: () => number): (err: unknown, info: StoreErrorInfo) => void {
  const lastLogged = new Map<string, number>()
  return (err, info) => {
    const error = err instanceof Error ? err.message : String(err)
    const code = (err as { code?: unknown } | null)?.code
    const key = `${info.driver}\0${info.path ?? ''}\0${error}`
    const t = now()
    const last = lastLogged.get(key)
    if (last !== undefined && t - last < ERROR_LOG_INTERVAL_MS) return
    if (lastLogged.size >= 100) lastLogged.clear() // many distinct messages: forget them all rather than grow
    lastLogged.set(key, t)
    console.error(
      JSON.stringify({
        level: 'warn',
        msg: 'store unavailable',
        driver: info.driver,
        path: info.path,
        operation: info.operation,
        failMode: info.failMode,
        error,
        code: typeof code === 'string' && code !== '' ? code : undefined,
      }),
    )
  }
}

/**
 * `import(specifier)` of an optional peer dependency; when it cannot be loaded, rejects with an
 * Error naming the package to install.
 */
export async function importOptional<T>(specifier: string, driver: string): Promise<T> {
  try {
    return (await import(specifier)) as T
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new Error(
      `${driver} store needs the optional peer dependency "${specifier}": install it next to @switchboard/store (pnpm add ${specifier}); loading it failed: ${why.split('\n')[0]}`,
      { cause: err },
    )
  }
}
