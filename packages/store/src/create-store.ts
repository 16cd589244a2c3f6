import { ConfigError, parseDuration, parseSize, type Store } from '@switchboard/core'
import type { MemoryStoreOptions } from './memory.ts'
import type { RedisStoreOptions } from './redis.ts'
import { storeDriver, storeDriverNames } from './registry.ts'
import type { SqliteStoreOptions } from './sqlite.ts'

/**
 * What {@link createStore} accepts: a URL (`memory:`, `sqlite:PATH`, `redis://…`) or an object
 * naming a registered driver (built-in or added with `registerStoreDriver`) next to its options.
 */
export type StoreSpec =
  | string
  | ({ driver: 'memory' } & MemoryStoreOptions)
  | ({ driver: 'sqlite' } & SqliteStoreOptions)
  | ({ driver: 'redis' } & RedisStoreOptions)
  | ({ driver: string } & Record<string, unknown>)

const EXPECTED = "memory:, sqlite:PATH, redis://HOST:PORT or { driver: 'memory' | 'sqlite' | 'redis', … }"
const REDIS_PARAMS = ['keyPrefix', 'failMode', 'connectTimeoutMs', 'commandTimeoutMs', 'maxReconnectDelayMs'] as const

/**
 * Builds a store from the gateway's `store:` config value or `--store` flag. URL forms:
 * `memory:` (optionally `memory:?maxEntries=50000&maxBytes=128mib`), `sqlite:./data/kv.db`
 * (`sqlite:///abs/path.db`, `sqlite::memory:`), `redis://host:6379/0?keyPrefix=gw:&failMode=closed`
 * (also `connectTimeoutMs`, `commandTimeoutMs`, `maxReconnectDelayMs`; durations like `2s` work).
 * An object spec goes through the driver registry: `driver` may be any registered name, and its
 * options are checked by that driver's `parse` (a `ConfigError` naming `store.<key>`). The SQLite
 * and Redis drivers are imported only when asked for. A malformed URL rejects with a TypeError
 * naming what is wrong; a file that cannot be opened with a `StoreOpenError`.
 * @example
 * const store = await createStore(process.env.STORE_URL ?? 'memory:')
 */
export async function createStore(spec: StoreSpec): Promise<Store> {
  if (typeof spec === 'string') return fromUrl(spec.trim())
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new TypeError(`store: expected ${EXPECTED}, got ${describe(spec)}`)
  }
  const { driver, ...options } = spec as { driver?: unknown } & Record<string, unknown>
  const def = typeof driver === 'string' ? storeDriver(driver) : undefined
  if (!def) {
    throw new ConfigError('store.driver', `one of ${storeDriverNames().map((n) => `'${n}'`).join(', ')}`, { got: driver })
  }
  return def.create(def.parse(options, 'store'))
}

/** Parses and creates through the registry, for the URL forms. */
async function viaRegistry(name: string, options: Record<string, unknown>): Promise<Store> {
  const def = storeDriver(name)
  if (!def) throw new TypeError(`store: the ${name} driver is not registered`)
  return def.create(def.parse(options, 'store'))
}

async function fromUrl(url: string): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  if (url === 'memory' || scheme === 'memory') {
    const query = new URLSearchParams(url.replace(/^memory(:(\/\/)?)?/i, '').replace(/^\?/, ''))
    const options: MemoryStoreOptions = {}
    for (const [name, value] of query) {
      if (name !== 'maxEntries' && name !== 'maxBytes') throw new TypeError(`store: unknown memory: option "${name}" (expected maxEntries, maxBytes)`)
      const n = parseSize(value)
      if (n === undefined || n <= 0) throw new TypeError(`store: memory: ${name} must be a positive number, got ${JSON.stringify(value)}`)
      options[name] = n
    }
    return viaRegistry('memory', { ...options })
  }
  if (scheme === 'sqlite') {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/|\.|[A-Za-z]:)/, '')
    if (path === '' || path === '//') throw new TypeError('store: sqlite: needs a file path, e.g. sqlite:./data/switchboard.db')
    return viaRegistry('sqlite', { path })
  }
  if (scheme === 'redis' || scheme === 'rediss') {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new TypeError(`store: ${scheme}: URL is malformed`) // never echo it: it may hold a password
    }
    if (!parsed.hostname) throw new TypeError(`store: ${scheme}: URL needs a host, e.g. ${scheme}://127.0.0.1:6379`)
    const options: Partial<RedisStoreOptions> & Record<string, unknown> = {}
    for (const name of REDIS_PARAMS) {
      const value = parsed.searchParams.get(name)
      if (value === null) continue
      parsed.searchParams.delete(name) // ioredis would read leftover query parameters as its own options
      if (name === 'keyPrefix') options.keyPrefix = value
      else if (name === 'failMode') {
        if (value !== 'open' && value !== 'closed') throw new TypeError(`store: ${scheme}: failMode must be open or closed, got ${JSON.stringify(value)}`)
        options.failMode = value
      } else {
        const ms = parseDuration(value)
        if (ms === undefined || ms <= 0) throw new TypeError(`store: ${scheme}: ${name} must be a positive duration, got ${JSON.stringify(value)}`)
        options[name] = ms
      }
    }
    return viaRegistry('redis', { ...options, url: parsed.toString() })
  }
  throw new TypeError(`store: expected ${EXPECTED}, got ${scheme ? `a ${scheme}: URL` : describe(url)}`)
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : String(value)
}
