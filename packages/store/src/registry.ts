import { ConfigError, parseDuration, parseSize, type Store } from '@switchboard/core'
import type { FailMode, StoreErrorInfo } from './internal.ts'
import { memoryStore, type MemoryStoreOptions } from './memory.ts'
import type { RedisStoreOptions } from './redis.ts'
import type { SqliteStoreOptions } from './sqlite.ts'

/**
 * Everything {@link createStore} needs to build one kind of store: its `name` (the `driver:` value
 * in config), an option parser that throws `ConfigError` naming the key path, and a factory.
 * @example
 * const def: StoreDriverDefinition<{ size: number }> = { name: 'tiny', parse: () => ({ size: 10 }), create: (o) => memoryStore({ maxEntries: o.size }) }
 */
export interface StoreDriverDefinition<O = unknown> {
  /** The `driver` value that selects it: lowercase letters, digits and `-`. */
  name: string
  /**
   * Validates the raw options (the spec without `driver`) and returns typed ones. Throws
   * `ConfigError` from `@switchboard/core` naming `${at}.key` for a bad or unknown key.
   */
  parse(raw: Record<string, unknown>, at: string): O
  /** Builds the store from parsed options. */
  create(options: O): Promise<Store> | Store
}

/**
 * Types a driver definition (identity at run time), so `parse`'s result types `create`'s input.
 * @example
 * const tiny = defineStoreDriver({ name: 'tiny', parse: (raw, at) => ({}), create: () => memoryStore({ maxEntries: 10 }) })
 */
export function defineStoreDriver<O>(def: StoreDriverDefinition<O>): StoreDriverDefinition<O> {
  return def
}

const drivers = new Map<string, StoreDriverDefinition<any>>()
const NAME_RE = /^[a-z][a-z0-9-]*$/

/**
 * Makes a driver available to {@link createStore} under `def.name`. Throws a TypeError for a
 * malformed definition and an Error when the name is already taken (built-ins included).
 * @example
 * registerStoreDriver(defineStoreDriver({ name: 'tiny', parse: () => ({}), create: () => memoryStore({ maxEntries: 10 }) }))
 */
export function registerStoreDriver(def: StoreDriverDefinition<any>): void {
  if (typeof def !== 'object' || def === null) throw new TypeError('registerStoreDriver: expected a driver definition')
  if (typeof def.name !== 'string' || !NAME_RE.test(def.name)) {
    throw new TypeError(`registerStoreDriver: name must be lowercase letters, digits and -, got ${JSON.stringify(def.name)}`)
  }
  if (typeof def.parse !== 'function') throw new TypeError(`registerStoreDriver: ${def.name}: parse must be a function`)
  if (typeof def.create !== 'function') throw new TypeError(`registerStoreDriver: ${def.name}: create must be a function`)
  if (drivers.has(def.name)) throw new Error(`registerStoreDriver: a store driver named "${def.name}" is already registered`)
  drivers.set(def.name, def)
}

/**
 * The registered driver called `name`, or `undefined`.
 * @example const sqlite = storeDriver('sqlite')
 */
export function storeDriver(name: string): StoreDriverDefinition | undefined {
  return drivers.get(name)
}

/**
 * Names of every registered driver, built-ins first, in registration order.
 * @example storeDriverNames() // ['memory', 'sqlite', 'redis']
 */
export function storeDriverNames(): string[] {
  return [...drivers.keys()]
}

/**
 * The built-in `memory` driver: options `maxEntries`, `maxBytes` (numbers or sizes like `128mib`), `now`.
 * `failMode` is accepted and ignored (there is no backend to lose), so one config shape fits every driver.
 * @example const store = await memoryStoreDriver.create(memoryStoreDriver.parse({ maxEntries: 100 }, 'store'))
 */
export const memoryStoreDriver: StoreDriverDefinition<MemoryStoreOptions> = defineStoreDriver({
  name: 'memory',
  parse(raw, at) {
    const o = new Options(raw, at, 'memory', ['maxEntries', 'maxBytes', 'failMode', 'now'])
    o.failMode()
    return { maxEntries: o.size('maxEntries'), maxBytes: o.size('maxBytes'), now: o.fn('now') as (() => number) | undefined }
  },
  create: (options) => memoryStore(options),
})

/**
 * The built-in `sqlite` driver: `path` (required), `table`, `sweepIntervalMs`, `busyTimeoutMs`,
 * `maxEntries`, `failMode`, `onError`, `now`. Durations may be strings like `100ms`.
 * @example const store = await sqliteStoreDriver.create(sqliteStoreDriver.parse({ path: './kv.db' }, 'store'))
 */
export const sqliteStoreDriver: StoreDriverDefinition<SqliteStoreOptions> = defineStoreDriver({
  name: 'sqlite',
  parse(raw, at) {
    const o = new Options(raw, at, 'sqlite', ['path', 'table', 'sweepIntervalMs', 'busyTimeoutMs', 'maxEntries', 'failMode', 'onError', 'now'])
    const path = o.string('path', 'a file path such as ./data/switchboard.db (or :memory:)', true) as string
    const table = o.string('table', 'a table name of letters, digits and _')
    if (table !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new ConfigError(`${at}.table`, 'a table name of letters, digits and _', { got: table })
    return {
      path,
      table,
      sweepIntervalMs: o.duration('sweepIntervalMs', 0),
      busyTimeoutMs: o.duration('busyTimeoutMs', 0),
      maxEntries: o.size('maxEntries'),
      failMode: o.failMode(),
      onError: o.fn('onError') as ((err: unknown, info: StoreErrorInfo) => void) | undefined,
      now: o.fn('now') as (() => number) | undefined,
    }
  },
  async create(options) {
    const { sqliteStore } = await import('./sqlite.ts')
    return sqliteStore(options)
  },
})

/**
 * The built-in `redis` driver: `url` (required), `keyPrefix`, `connectTimeoutMs`, `commandTimeoutMs`,
 * `maxReconnectDelayMs`, `failMode`, `onError`. Needs the optional peer dependency `ioredis`.
 * @example const store = await redisStoreDriver.create(redisStoreDriver.parse({ url: 'redis://127.0.0.1:6379' }, 'store'))
 */
export const redisStoreDriver: StoreDriverDefinition<RedisStoreOptions> = defineStoreDriver({
  name: 'redis',
  parse(raw, at) {
    const o = new Options(raw, at, 'redis', ['url', 'keyPrefix', 'connectTimeoutMs', 'commandTimeoutMs', 'maxReconnectDelayMs', 'failMode', 'onError'])
    const url = raw.url
    // Never echo the URL: it may hold a password.
    if (typeof url !== 'string' || !/^rediss?:\/\/./.test(url)) throw new ConfigError(`${at}.url`, 'a redis:// or rediss:// URL')
    return {
      url,
      keyPrefix: o.string('keyPrefix', 'a string'),
      connectTimeoutMs: o.duration('connectTimeoutMs', 1),
      commandTimeoutMs: o.duration('commandTimeoutMs', 1),
      maxReconnectDelayMs: o.duration('maxReconnectDelayMs', 1),
      failMode: o.failMode(),
      onError: o.fn('onError') as ((err: unknown) => void) | undefined,
    }
  },
  async create(options) {
    const { redisStore } = await import('./redis.ts')
    return redisStore(options)
  },
})

registerStoreDriver(memoryStoreDriver)
registerStoreDriver(sqliteStoreDriver)
registerStoreDriver(redisStoreDriver)

/** Reads one driver's raw options, throwing ConfigError with the key path. */
class Options {
  #raw: Record<string, unknown>
  #at: string

  constructor(raw: Record<string, unknown>, at: string, driver: string, known: readonly string[]) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(at, `the ${driver} store options`, { got: raw })
    for (const key of Object.keys(raw)) {
      if (!known.includes(key) && raw[key] !== undefined) throw new ConfigError(`${at}.${key}`, `a ${driver} store option (one of ${known.join(', ')})`)
    }
    this.#raw = raw
    this.#at = at
  }

  string(key: string, expected: string, required = false): string | undefined {
    const v = this.#raw[key]
    if (v === undefined && !required) return undefined
    if (typeof v !== 'string' || (required && v === '')) throw new ConfigError(`${this.#at}.${key}`, expected, { got: v })
    return v
  }

  /** Milliseconds ≥ `min`: an integer or a duration string such as `100ms`, `2s`. */
  duration(key: string, min: number): number | undefined {
    const v = this.#raw[key]
    if (v === undefined) return undefined
    const ms = parseDuration(v)
    if (ms === undefined || !Number.isInteger(ms) || ms < min) {
      throw new ConfigError(`${this.#at}.${key}`, `${min === 0 ? 'a non-negative' : 'a positive'} whole number of milliseconds or a duration like "100ms"`, { got: v })
    }
    return ms
  }

  /** A positive integer; strings like `50000` or `128mib` also work. */
  size(key: string): number | undefined {
    const v = this.#raw[key]
    if (v === undefined) return undefined
    const n = parseSize(v)
    if (n === undefined || n <= 0) throw new ConfigError(`${this.#at}.${key}`, 'a positive integer', { got: v })
    return n
  }

  failMode(): FailMode | undefined {
    const v = this.#raw.failMode
    if (v === undefined) return undefined
    if (v !== 'open' && v !== 'closed') throw new ConfigError(`${this.#at}.failMode`, "'open' or 'closed'", { got: v })
    return v
  }

  fn(key: string): ((...args: never[]) => unknown) | undefined {
    const v = this.#raw[key]
    if (v === undefined) return undefined
    if (typeof v !== 'function') throw new ConfigError(`${this.#at}.${key}`, 'a function', { got: v })
    return v as (...args: never[]) => unknown
  }
}
