import type { Store, StoreSetOptions } from '@switchboard/core'
import { accessSync, constants as fsConstants, existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { StoreOpenError, type StoreOpenReason, StoreUnavailableError } from './errors.ts'
import {
  addChecked,
  bytesEqual,
  checkKey,
  checkValue,
  decodeCounter,
  encodeCounter,
  type FailMode,
  limitOf,
  plainBytes,
  type StoreErrorInfo,
  stepOf,
  throttledErrorLog,
  ttlOf,
  unrefTimer,
} from './internal.ts'

export { StoreOpenError, StoreUnavailableError } from './errors.ts'
export type { FailMode, StoreErrorInfo } from './internal.ts'

/** Default `sweepIntervalMs` of {@link sqliteStore}: one minute. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
/**
 * Default `busyTimeoutMs` of {@link sqliteStore}. Every SQLite binding here is synchronous, so a
 * busy wait blocks the whole event loop: keep it short.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 100
/** Default `maxEntries` of {@link sqliteStore}. */
export const DEFAULT_SQLITE_MAX_ENTRIES = 100_000
/** How often (by the store's clock) the driver checks that its file is still the one it opened, in ms. */
export const FILE_CHECK_INTERVAL_MS = 1_000

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; created when missing (its directory must exist). `:memory:` gives a private, non-persistent database. */
  path: string
  /** Table name (letters, digits, `_`). @default 'switchboard_kv' */
  table?: string
  /** How often expired rows are deleted, in ms; `0` turns the timer off. The timer is unref'd. @default 60_000 */
  sweepIntervalMs?: number
  /**
   * How long a call waits for another connection's lock before it counts as unavailable (SQLite
   * busy_timeout), in ms. The wait blocks the event loop, so keep it small. @default 100
   */
  busyTimeoutMs?: number
  /**
   * Most rows kept. Checked every `ceil(maxEntries / 100)` writes; when the table is past it,
   * expired rows are deleted first, then the least recently written, down to 90% of `maxEntries`.
   * @default 100_000
   */
  maxEntries?: number
  /**
   * What a call does when the database is locked, busy, failing I/O, or its file was deleted:
   * `'open'`: reads return `undefined`, writes resolve as no-ops, `setIfAbsent`/`compareAndSet`/`delete`
   * return false, `increment` 0, `keys` [] and `clear` 0. `'closed'`: those calls reject with
   * {@link StoreUnavailableError}. Other errors (a non-integer counter) reject in both modes. @default 'open'
   */
  failMode?: FailMode
  /**
   * Called with every availability failure (also the swallowed ones in `'open'` mode and failed
   * background sweeps), with the driver, file path and operation.
   * @default one JSON line on stderr per distinct error per 10 s
   */
  onError?: (err: unknown, info: StoreErrorInfo) => void
  /** Clock in epoch milliseconds; inject a fake one in tests. @default Date.now */
  now?: () => number
}

/**
 * A persistent store in one SQLite file (WAL mode). Uses `bun:sqlite` on Bun, `node:sqlite` on
 * Node ≥ 22.5 and Deno, and the optional peer `libsql` on Node 20. Every operation is atomic,
 * also across processes sharing the file (read-modify-write runs inside `BEGIN IMMEDIATE`). Expired
 * rows are invisible to reads and deleted by an unref'd timer. Calls are synchronous underneath, so
 * lock waits are bounded by `busyTimeoutMs` and then follow `failMode`. A file that cannot be opened
 * rejects with one {@link StoreOpenError}.
 * @example
 * const store = await sqliteStore({ path: './data/switchboard.db', failMode: 'open' })
 */
export async function sqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (typeof options?.path !== 'string' || options.path === '') throw new TypeError('sqliteStore: path must be a non-empty string')
  const table = options.table ?? 'switchboard_kv'
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new TypeError('sqliteStore: table must contain only letters, digits and _')
  const sweep = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
  if (!Number.isInteger(sweep) || sweep < 0) throw new RangeError('sqliteStore: sweepIntervalMs must be a non-negative integer')
  const busy = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS
  if (!Number.isInteger(busy) || busy < 0) throw new RangeError('sqliteStore: busyTimeoutMs must be a non-negative integer')
  const maxEntries = options.maxEntries ?? DEFAULT_SQLITE_MAX_ENTRIES
  if (!Number.isInteger(maxEntries) || maxEntries <= 0) throw new RangeError('sqliteStore: maxEntries must be a positive integer')
  const failMode = options.failMode ?? 'open'
  if (failMode !== 'open' && failMode !== 'closed') throw new TypeError("sqliteStore: failMode must be 'open' or 'closed'")
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('sqliteStore: onError must be a function')
  if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('sqliteStore: now must be a function')
  const path = options.path
  const now = options.now ?? Date.now
  const inFile = path !== ':memory:' && !path.startsWith('file:')
  if (inFile) {
    // Checked up front: the bindings report both as a bare "unable to open database file".
    const dir = dirname(path)
    if (!existsSync(dir)) throw new StoreOpenError('sqlite', path, 'missing-directory', `directory ${dir} does not exist`)
    if (!statSync(dir).isDirectory()) throw new StoreOpenError('sqlite', path, 'cannot-open', `${dir} is not a directory`)
  }
  const open = await loadBinding(path)
  let db: Database | undefined
  try {
    db = open(path)
    const store = new SqliteStore(db, {
      table,
      path,
      sweepIntervalMs: sweep,
      busyTimeoutMs: busy,
      maxEntries,
      failMode,
      onError: options.onError ?? throttledErrorLog(now),
      now,
      fileId: inFile ? fileIdentity(path) : undefined,
    })
    return store
  } catch (err) {
    try {
      db?.close()
    } catch {
      // Already unusable; the open error below is what matters.
    }
    throw openError(path, err)
  }
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
interface Settings {
  table: string
  path: string
  sweepIntervalMs: number
  busyTimeoutMs: number
  maxEntries: number
  failMode: FailMode
  onError: (err: unknown, info: StoreErrorInfo) => void
  now: () => number
  /** `dev:ino` of the file at open; undefined for `:memory:` and URI paths. */
  fileId: string | undefined
}

class SqliteStore implements Store {
  readonly name = 'sqlite'
  #db: Database
  #s: Settings
  #now: () => number
  #timer: ReturnType<typeof setInterval> | undefined
  #closed = false
  #gone: Error | undefined
  #lastFileCheck: number
  #writesSinceCheck = 0
  #checkEvery: number
  #lowWater: number
  #get: Statement
  #upsert: Statement
  #insert: Statement
  #deleteLive: Statement
  #deleteKey: Statement
  #keys: Statement
  #clearCount: Statement
  #clear: Statement
  #sweep: Statement
  #count: Statement
  #evictOldest: Statement

  constructor(db: Database, settings: Settings) {
    const { table, now } = settings
    this.#db = db
    this.#s = settings
    this.#now = now
    this.#lastFileCheck = now()
    this.#checkEvery = Math.max(1, Math.ceil(settings.maxEntries / 100))
    this.#lowWater = settings.maxEntries - Math.floor(settings.maxEntries / 10)
    db.exec(`PRAGMA busy_timeout = ${settings.busyTimeoutMs}`)
    // No memory-mapped I/O of the database file: a file truncated underneath a mapping raises SIGBUS
    // and kills the process, where read() just returns an I/O error that failMode handles.
    db.exec('PRAGMA mmap_size = 0')
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at INTEGER, written_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
    )
    // Tables created by 0.1 lack written_at; their rows count as the oldest.
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]
    if (!columns.some((c) => c.name === 'written_at')) db.exec(`ALTER TABLE ${table} ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0`)
    db.exec(`CREATE INDEX IF NOT EXISTS ${table}_expires_at ON ${table} (expires_at) WHERE expires_at IS NOT NULL`)
    db.exec(`CREATE INDEX IF NOT EXISTS ${table}_written_at ON ${table} (written_at)`)
    const live = '(expires_at IS NULL OR expires_at > ?)'
    this.#get = db.prepare(`SELECT value, expires_at FROM ${table} WHERE key = ? AND ${live}`)
    this.#upsert = db.prepare(
      `INSERT INTO ${table} (key, value, expires_at, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, written_at = excluded.written_at`,
    )
    // Claims the key when absent or expired; changes = 0 when a live row is in the way.
    this.#insert = db.prepare(
      `INSERT INTO ${table} (key, value, expires_at, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, written_at = excluded.written_at WHERE NOT ${live.replaceAll('expires_at', `${table}.expires_at`)}`,
    )
    this.#deleteLive = db.prepare(`DELETE FROM ${table} WHERE key = ? AND ${live}`)
    this.#deleteKey = db.prepare(`DELETE FROM ${table} WHERE key = ?`)
    // Prefix match with a range instead of LIKE, so `%` and `_` in keys need no escaping and the primary key index is used.
    this.#keys = db.prepare(`SELECT key FROM ${table} WHERE key >= ? AND key < ? AND ${live} ORDER BY key LIMIT ?`)
    this.#clearCount = db.prepare(`SELECT count(*) AS n FROM ${table} WHERE key >= ? AND key < ? AND ${live}`)
    this.#clear = db.prepare(`DELETE FROM ${table} WHERE key >= ? AND key < ?`)
    this.#sweep = db.prepare(`DELETE FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= ?`)
    this.#count = db.prepare(`SELECT count(*) AS n FROM ${table}`)
    // DELETE … LIMIT needs a compile-time option; a subquery works on every build.
    this.#evictOldest = db.prepare(`DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} ORDER BY written_at, key LIMIT ?)`)
    // Also proves the file is writable: SQLite silently opens a read-only file read-only, and the
    // first write would fail much later. Only a lock held elsewhere is let through (swept next time).
    try {
      this.#transaction(() => this.#sweep.run(now()))
    } catch (err) {
      const code = sqliteCode(err)
      if (code !== 5 && code !== 6) throw err
    }
    if (settings.sweepIntervalMs > 0) {
      this.#timer = setInterval(() => {
        try {
          this.#transaction(() => this.#sweep.run(this.#now()))
        } catch (err) {
          this.#report(err, 'sweep')
        }
      }, settings.sweepIntervalMs)
      unrefTimer(this.#timer)
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key)
    return this.#guard('get', undefined, () => {
      const row = this.#get.get(key, this.#now()) as Row | null | undefined
      return row ? plainBytes(row.value) : undefined
    })
  }

  async set(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<void> {
    checkKey(key)
    checkValue(value)
    const ttl = ttlOf(options)
    this.#guard('set', undefined, () => {
      this.#transaction(() => this.#upsert.run(key, bindable(value), this.#expiresAt(ttl), this.#now()))
      this.#wrote()
    })
  }

  async setIfAbsent(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<boolean> {
    checkKey(key)
    checkValue(value)
    const ttl = ttlOf(options)
    return this.#guard('setIfAbsent', false, () => this.#insertIfAbsent(key, value, ttl))
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
    return this.#guard('compareAndSet', false, () => {
      if (expected === undefined) return this.#insertIfAbsent(key, value, ttl)
      const swapped = this.#transaction(() => {
        const row = this.#get.get(key, this.#now()) as Row | null | undefined
        if (!row || !bytesEqual(row.value, expected)) return false
        this.#upsert.run(key, bindable(value), this.#expiresAt(ttl), this.#now())
        return true
      })
      if (swapped) this.#wrote()
      return swapped
    })
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key)
    return this.#guard('delete', false, () =>
      this.#transaction(() => {
        const existed = changes(this.#deleteLive.run(key, this.#now())) > 0
        if (!existed) this.#deleteKey.run(key) // an expired row
        return existed
      }),
    )
  }

  async increment(key: string, by?: number, options?: StoreSetOptions): Promise<number> {
    checkKey(key)
    const step = stepOf(by)
    const ttl = ttlOf(options)
    return this.#guard('increment', 0, () => {
      const result = this.#transaction(() => {
        const row = this.#get.get(key, this.#now()) as Row | null | undefined
        if (!row) {
          this.#upsert.run(key, bindable(encodeCounter(step)), this.#expiresAt(ttl), this.#now())
          return step
        }
        const next = addChecked(decodeCounter(key, row.value), step)
        // Fixed windows: the TTL set at creation stays.
        this.#upsert.run(key, bindable(encodeCounter(next)), row.expires_at, this.#now())
        return next
      })
      this.#wrote()
      return result
    })
  }

  async keys(prefix: string, options?: { limit?: number }): Promise<string[]> {
    const limit = limitOf(options)
    return this.#guard('keys', [], () => {
      if (limit === 0) return []
      const rows = this.#keys.all(prefix, prefixEnd(prefix), this.#now(), limit) as { key: string }[]
      return rows.map((row) => row.key)
    })
  }

  async clear(prefix = ''): Promise<number> {
    return this.#guard('clear', 0, () =>
      this.#transaction(() => {
        const end = prefixEnd(prefix)
        const { n } = this.#clearCount.get(prefix, end, this.#now()) as { n: number }
        this.#clear.run(prefix, end)
        return Number(n)
      }),
    )
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#db.close()
  }

  /**
   * Runs `fn`; a locked, busy, failing or vanished database becomes `fallback` (failMode 'open')
   * or a StoreUnavailableError ('closed'), reported to onError either way.
   */
  #guard<T>(operation: string, fallback: T, fn: () => T): T {
    if (this.#closed) throw new Error('sqliteStore: the store is closed')
    try {
      this.#checkFile()
      return fn()
    } catch (err) {
      if (!isUnavailable(err)) throw err
      this.#report(err, operation)
      if (this.#s.failMode === 'open') return fallback
      throw new StoreUnavailableError({ cause: err })
    }
  }

  #report(err: unknown, operation: string): void {
    try {
      this.#s.onError(err, { driver: 'sqlite', path: this.#s.path, operation, failMode: this.#s.failMode })
    } catch {
      // A throwing logger must not turn a degraded call into a failed one.
    }
  }

  /**
   * SQLite keeps writing to a deleted file's inode without complaint (the data is then lost), so
   * compare the path's identity with the one opened, at most once per FILE_CHECK_INTERVAL_MS.
   */
  #checkFile(): void {
    if (this.#gone) throw this.#gone
    if (this.#s.fileId === undefined) return
    const t = this.#now()
    if (t - this.#lastFileCheck < FILE_CHECK_INTERVAL_MS) return
    this.#lastFileCheck = t
    let id: string | undefined
    try {
      id = fileIdentity(this.#s.path)
    } catch {
      id = undefined
    }
    if (id !== this.#s.fileId) {
      this.#gone = new DatabaseFileGoneError(this.#s.path, id === undefined ? 'deleted' : 'replaced')
      throw this.#gone
    }
  }

  #insertIfAbsent(key: string, value: Uint8Array, ttl: number | undefined): boolean {
    const inserted = this.#transaction(() => changes(this.#insert.run(key, bindable(value), this.#expiresAt(ttl), this.#now(), this.#now())) > 0)
    if (inserted) this.#wrote()
    return inserted
  }

  /** Counts a write; every `#checkEvery` writes, trims the table back under maxEntries. */
  #wrote(): void {
    if (++this.#writesSinceCheck < this.#checkEvery) return
    this.#writesSinceCheck = 0
    try {
      this.#transaction(() => {
        if (Number((this.#count.get() as { n: number | bigint }).n) <= this.#s.maxEntries) return
        this.#sweep.run(this.#now())
        const left = Number((this.#count.get() as { n: number | bigint }).n)
        if (left > this.#lowWater) this.#evictOldest.run(left - this.#lowWater)
      })
    } catch (err) {
      // The write itself succeeded; a busy database is trimmed at a later check.
      this.#report(err, 'evict')
    }
  }

  #expiresAt(ttl: number | undefined): number | null {
    return ttl === undefined ? null : this.#now() + ttl
  }

  /**
   * Runs `fn` under a write lock; BEGIN IMMEDIATE makes other processes wait (busy_timeout) instead
   * of interleaving. Every write goes through here, also single statements: then a busy database
   * fails the BEGIN, never a prepared statement, which libsql would leave un-reset ("cannot commit
   * transaction - SQL statements in progress" on every later transaction).
   */
  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      try {
        this.#db.exec('ROLLBACK')
      } catch {
        // SQLite already rolled back (e.g. after an I/O error); keep the original failure.
      }
      throw err
    }
  }
}

/** The database file was deleted or replaced after the store opened it. */
class DatabaseFileGoneError extends Error {
  readonly code = 'ERR_STORE_FILE_GONE'
  constructor(path: string, what: 'deleted' | 'replaced') {
    super(`sqlite store ${path}: the database file was ${what} after it was opened; reopen the store`)
    this.name = 'DatabaseFileGoneError'
  }
}

/** SQLite primary result codes that mean "the database is not usable right now", not "bad input". */
const UNAVAILABLE_CODES = new Map<number, string>([
  [5, 'SQLITE_BUSY'],
  [6, 'SQLITE_LOCKED'],
  [8, 'SQLITE_READONLY'],
  [10, 'SQLITE_IOERR'],
  [11, 'SQLITE_CORRUPT'],
  [13, 'SQLITE_FULL'],
  [14, 'SQLITE_CANTOPEN'],
  [15, 'SQLITE_PROTOCOL'],
  [26, 'SQLITE_NOTADB'],
])
/** Deno's node:sqlite gives only the message; these are sqlite3_errstr() texts. */
const MESSAGE_CODES: [RegExp, number][] = [
  [/database is locked/i, 5],
  [/database table is locked/i, 6],
  [/readonly database/i, 8],
  [/disk I\/O error/i, 10],
  [/malformed/i, 11],
  [/database or disk is full/i, 13],
  [/unable to open database/i, 14],
  [/locking protocol/i, 15],
  [/file is not a database/i, 26],
]

/** The SQLite primary result code of a binding's error, whichever way it carries it. */
function sqliteCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as { errcode?: unknown; errno?: unknown; rawCode?: unknown; code?: unknown; message?: unknown }
  for (const n of [e.errcode, e.rawCode, e.errno]) if (typeof n === 'number' && n > 0) return n & 0xff
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_')) {
    const name = /^SQLITE_[A-Z]+/.exec(e.code)?.[0]
    for (const [n, known] of UNAVAILABLE_CODES) if (known === name) return n
  }
  const message = typeof e.message === 'string' ? e.message : ''
  // libsql on open: ConnectionFailed("Unable to open connection to local database PATH: 14")
  const trailing = /^ConnectionFailed\(.*: (\d+)"\)$/.exec(message)?.[1]
  if (trailing !== undefined) return Number(trailing) & 0xff
  return MESSAGE_CODES.find(([re]) => re.test(message))?.[1]
}

function isUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseFileGoneError) return true
  const code = sqliteCode(err)
  return code !== undefined && UNAVAILABLE_CODES.has(code)
}

/** One clear StoreOpenError for whatever failed while opening `path`. */
function openError(path: string, err: unknown): StoreOpenError {
  if (err instanceof StoreOpenError) return err
  const why = message(err)
  const reasons: Record<number, [StoreOpenReason, string]> = {
    5: ['busy', 'database is locked by another connection'],
    6: ['busy', 'database is locked by another connection'],
    8: ['read-only', 'the file or its directory is read-only'],
    10: ['io', 'disk I/O error'],
    11: ['corrupt', 'database file is corrupt'],
    13: ['io', 'database or disk is full'],
    14: ['cannot-open', 'cannot open the file: check that it is a regular file and that its directory is writable'],
    26: ['not-a-database', 'file is not a database'],
  }
  const code = sqliteCode(err)
  if ((code === 8 || code === 14) && path !== ':memory:' && !path.startsWith('file:')) {
    if (code === 8 && !writable(path)) return new StoreOpenError('sqlite', path, 'read-only', 'the file is read-only', { cause: err })
    if (!writable(dirname(path))) {
      return new StoreOpenError('sqlite', path, 'read-only', `directory ${dirname(path)} is not writable (SQLite needs it for the file and its -wal/-shm files)`, { cause: err })
    }
  }
  const [reason, text] = (code !== undefined && reasons[code]) || ['other', why]
  // Keep the binding's own words when they add something ("attempt to write a readonly database").
  const detail = text === why || why.includes(text) || /^ConnectionFailed\(/.test(why) ? text : `${text} (${why})`
  return new StoreOpenError('sqlite', path, reason, detail, { cause: err })
}

function writable(path: string): boolean {
  try {
    accessSync(path, fsConstants.W_OK)
    return true
  } catch (err) {
    return (err as { code?: unknown }).code === 'ENOENT' // a missing file is created, not "read-only"
  }
}

function fileIdentity(path: string): string {
  const st = statSync(path)
  return `${st.dev}:${st.ino}`
}

/**
 * Loads the first SQLite binding this runtime has (bun:sqlite, node:sqlite, then the optional peer
 * libsql) and returns its opener. Loading and opening are separate so that a bad file is reported
 * as such, not as a missing binding.
 */
async function loadBinding(file: string): Promise<(path: string) => Database> {
  const failures: string[] = []
  // Specifiers live in variables so bundlers and type checkers leave these optional modules alone.
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') {
    const bunSqlite = 'bun:sqlite'
    try {
      const { Database } = (await import(bunSqlite)) as { Database: new (path: string, options: object) => Database }
      return (path) => new Database(path, { create: true })
    } catch (err) {
      failures.push(`bun:sqlite: ${message(err)}`)
    }
  }
  const nodeSqlite = 'node:sqlite'
  try {
    const { DatabaseSync } = (await import(nodeSqlite)) as { DatabaseSync: new (path: string) => Database }
    return (path) => new DatabaseSync(path)
  } catch (err) {
    failures.push(`node:sqlite: ${message(err)}`)
  }
  const libsql = 'libsql'
  try {
    const mod = (await import(libsql)) as { default: new (path: string) => Database }
    return (path) => new mod.default(path)
  } catch (err) {
    failures.push(`libsql: ${message(err).split('\n')[0]}`)
  }
  throw new StoreOpenError(
    'sqlite',
    file,
    'unsupported-runtime',
    `needs Bun (bun:sqlite), Node.js >= 22.5 or Deno (node:sqlite), or on Node.js 20 the optional peer dependency "libsql" (pnpm add libsql). Tried: ${failures.join('; ')}`,
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
