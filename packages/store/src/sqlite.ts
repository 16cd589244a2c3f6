import type { Store, StoreSetOptions } from '@switchboard/core'
import {
  addChecked,
  bytesEqual,
  checkKey,
  checkValue,
  decodeCounter,
  encodeCounter,
  limitOf,
  plainBytes,
  stepOf,
  ttlOf,
  unrefTimer,
} from './internal.ts'

/** Default `sweepIntervalMs` of {@link sqliteStore}: one minute. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
/** Default `busyTimeoutMs` of {@link sqliteStore}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; created when missing. `:memory:` gives a private, non-persistent database. */
  path: string
  /** Table name (letters, digits, `_`). @default 'switchboard_kv' */
  table?: string
  /** How often expired rows are deleted, in ms; `0` turns the timer off. The timer is unref'd. @default 60_000 */
  sweepIntervalMs?: number
  /** How long a write waits for another process's lock before failing (SQLite busy_timeout). @default 5_000 */
  busyTimeoutMs?: number
  /** Clock in epoch milliseconds; inject a fake one in tests. @default Date.now */
  now?: () => number
}

/**
 * A persistent store in one SQLite file (WAL mode). Uses `bun:sqlite` on Bun, `node:sqlite` on
 * Node ≥ 22.5 and Deno, and the optional `libsql` package on Node 20. Every operation is atomic,
 * also across processes sharing the file (read-modify-write runs inside `BEGIN IMMEDIATE`). Expired
 * rows are invisible to reads and deleted by an unref'd timer. Calls are synchronous underneath, so
 * keep values modest on a busy event loop.
 * @example
 * const store = await sqliteStore({ path: './data/switchboard.db' })
 */
export async function sqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (typeof options?.path !== 'string' || options.path === '') throw new TypeError('sqliteStore: path must be a non-empty string')
  const table = options.table ?? 'switchboard_kv'
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new TypeError('sqliteStore: table must contain only letters, digits and _')
  const sweep = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
  if (!Number.isInteger(sweep) || sweep < 0) throw new RangeError('sqliteStore: sweepIntervalMs must be a non-negative integer')
  const busy = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS
  if (!Number.isInteger(busy) || busy < 0) throw new RangeError('sqliteStore: busyTimeoutMs must be a non-negative integer')
  if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('sqliteStore: now must be a function')
  const db = await openDatabase(options.path)
  return new SqliteStore(db, table, sweep, busy, options.now ?? Date.now)
}

/** The subset of the better-sqlite3 / node:sqlite / bun:sqlite API this driver uses. */
interface Database {
  exec(sql: string): unknown
  prepare(sql: string): Statement
  close(): unknown
}
interface Statement {
  run(...params: unknown[]): unknown
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
}
interface Row {
  value: Uint8Array
  expires_at: number | null
}

class SqliteStore implements Store {
  readonly name = 'sqlite'
  #db: Database
  #now: () => number
  #timer: ReturnType<typeof setInterval> | undefined
  #closed = false
  #get: Statement
  #upsert: Statement
  #insert: Statement
  #deleteLive: Statement
  #deleteKey: Statement
  #keys: Statement
  #clearCount: Statement
  #clear: Statement
  #sweep: Statement

  constructor(db: Database, table: string, sweepIntervalMs: number, busyTimeoutMs: number, now: () => number) {
    this.#db = db
    this.#now = now
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`)
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at INTEGER) WITHOUT ROWID`,
    )
    db.exec(`CREATE INDEX IF NOT EXISTS ${table}_expires_at ON ${table} (expires_at) WHERE expires_at IS NOT NULL`)
    const live = '(expires_at IS NULL OR expires_at > ?)'
    this.#get = db.prepare(`SELECT value, expires_at FROM ${table} WHERE key = ? AND ${live}`)
    this.#upsert = db.prepare(
      `INSERT INTO ${table} (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    )
    // Claims the key when absent or expired; changes = 0 when a live row is in the way.
    this.#insert = db.prepare(
      `INSERT INTO ${table} (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at WHERE NOT ${live.replaceAll('expires_at', `${table}.expires_at`)}`,
    )
    this.#deleteLive = db.prepare(`DELETE FROM ${table} WHERE key = ? AND ${live}`)
    this.#deleteKey = db.prepare(`DELETE FROM ${table} WHERE key = ?`)
    // Prefix match with a range instead of LIKE, so `%` and `_` in keys need no escaping and the primary key index is used.
    this.#keys = db.prepare(`SELECT key FROM ${table} WHERE key >= ? AND key < ? AND ${live} ORDER BY key LIMIT ?`)
    this.#clearCount = db.prepare(`SELECT count(*) AS n FROM ${table} WHERE key >= ? AND key < ? AND ${live}`)
    this.#clear = db.prepare(`DELETE FROM ${table} WHERE key >= ? AND key < ?`)
    this.#sweep = db.prepare(`DELETE FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= ?`)
    this.#sweep.run(now())
    if (sweepIntervalMs > 0) {
      this.#timer = setInterval(() => {
        try {
          this.#sweep.run(this.#now())
        } catch {
          // A busy database is swept next time.
        }
      }, sweepIntervalMs)
      unrefTimer(this.#timer)
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key)
    this.#open()
    const row = this.#get.get(key, this.#now()) as Row | null | undefined
    return row ? plainBytes(row.value) : undefined
  }

  async set(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<void> {
    checkKey(key)
    checkValue(value)
    const expiresAt = this.#expiresAt(ttlOf(options))
    this.#open()
    this.#upsert.run(key, bindable(value), expiresAt)
  }

  async setIfAbsent(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<boolean> {
    checkKey(key)
    checkValue(value)
    const expiresAt = this.#expiresAt(ttlOf(options))
    this.#open()
    return changes(this.#insert.run(key, bindable(value), expiresAt, this.#now())) > 0
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
    const expiresAt = this.#expiresAt(ttlOf(options))
    this.#open()
    if (expected === undefined) return changes(this.#insert.run(key, bindable(value), expiresAt, this.#now())) > 0
    return this.#transaction(() => {
      const row = this.#get.get(key, this.#now()) as Row | null | undefined
      if (!row || !bytesEqual(row.value, expected)) return false
      this.#upsert.run(key, bindable(value), expiresAt)
      return true
    })
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key)
    this.#open()
    return this.#transaction(() => {
      const existed = changes(this.#deleteLive.run(key, this.#now())) > 0
      if (!existed) this.#deleteKey.run(key) // an expired row
      return existed
    })
  }

  async increment(key: string, by?: number, options?: StoreSetOptions): Promise<number> {
    checkKey(key)
    const step = stepOf(by)
    const ttl = ttlOf(options)
    this.#open()
    return this.#transaction(() => {
      const row = this.#get.get(key, this.#now()) as Row | null | undefined
      if (!row) {
        this.#upsert.run(key, bindable(encodeCounter(step)), this.#expiresAt(ttl))
        return step
      }
      const next = addChecked(decodeCounter(key, row.value), step)
      // Fixed windows: the TTL set at creation stays.
      this.#upsert.run(key, bindable(encodeCounter(next)), row.expires_at)
      return next
    })
  }

  async keys(prefix: string, options?: { limit?: number }): Promise<string[]> {
    const limit = limitOf(options)
    this.#open()
    if (limit === 0) return []
    const rows = this.#keys.all(prefix, prefixEnd(prefix), this.#now(), limit) as { key: string }[]
    return rows.map((row) => row.key)
  }

  async clear(prefix = ''): Promise<number> {
    this.#open()
    return this.#transaction(() => {
      const end = prefixEnd(prefix)
      const { n } = this.#clearCount.get(prefix, end, this.#now()) as { n: number }
      this.#clear.run(prefix, end)
      return Number(n)
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#db.close()
  }

  #open(): void {
    if (this.#closed) throw new Error('sqliteStore: the store is closed')
  }

  #expiresAt(ttl: number | undefined): number | null {
    return ttl === undefined ? null : this.#now() + ttl
  }

  /** Runs `fn` under a write lock; BEGIN IMMEDIATE makes other processes wait (busy_timeout) instead of interleaving. */
  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }
}

/** Loads the first SQLite binding this runtime has: bun:sqlite, node:sqlite, then libsql. */
async function openDatabase(path: string): Promise<Database> {
  const failures: string[] = []
  // Specifiers live in variables so bundlers and type checkers leave these optional modules alone.
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') {
    const bunSqlite = 'bun:sqlite'
    try {
      const { Database } = (await import(bunSqlite)) as { Database: new (path: string, options: object) => Database }
      return new Database(path, { create: true })
    } catch (err) {
      failures.push(`bun:sqlite: ${message(err)}`)
    }
  }
  const nodeSqlite = 'node:sqlite'
  try {
    const { DatabaseSync } = (await import(nodeSqlite)) as { DatabaseSync: new (path: string) => Database }
    return new DatabaseSync(path)
  } catch (err) {
    failures.push(`node:sqlite: ${message(err)}`)
  }
  const libsql = 'libsql'
  try {
    const mod = (await import(libsql)) as { default: new (path: string) => Database }
    return new mod.default(path)
  } catch (err) {
    failures.push(`libsql: ${message(err)}`)
  }
  throw new Error(
    `sqliteStore needs Bun (bun:sqlite), Node.js >= 22.5 or Deno (node:sqlite), or on Node.js 20 the optional "libsql" package (npm install libsql). Tried: ${failures.join('; ')}`,
  )
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** `changes` from a run() result (number on every binding, bigint on some). */
function changes(result: unknown): number {
  return Number((result as { changes: number | bigint }).changes)
}

/** libsql (like better-sqlite3) binds only Buffers as blobs; the others take any Uint8Array. */
function bindable(value: Uint8Array): Uint8Array {
  const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array } }).Buffer
  return NodeBuffer && value.constructor === Uint8Array ? NodeBuffer.from(value.buffer, value.byteOffset, value.byteLength) : value
}

/** The smallest string greater than every string starting with `prefix` ('' when unbounded → all keys). */
function prefixEnd(prefix: string): string {
  // U+10FFFF sorts after every other code point in SQLite's byte-wise (UTF-8) BINARY collation.
  return `${prefix}\u{10FFFF}`
}
