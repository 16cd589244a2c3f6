import { spawn } from 'node:child_process'
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, realpathSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { manualClock } from '../src/conformance.ts'
import { decodeText, encodeText, StoreOpenError, StoreUnavailableError, type Store, type StoreErrorInfo } from '../src/index.ts'
import { DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_SQLITE_MAX_ENTRIES, FILE_CHECK_INTERVAL_MS, sqliteStore } from '../src/sqlite.ts'

const dir = mkdtempSync(join(tmpdir(), 'switchboard-store-hardening-'))
chmodSync(dir, 0o755) // the unprivileged child in the read-only tests must reach it
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshPath = (): string => join(dir, `db-${++files}.sqlite`)
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

const open: Store[] = []
const lockers: RawDb[] = []
afterEach(async () => {
  for (const raw of lockers.splice(0)) {
    try {
      raw.exec('ROLLBACK')
    } catch {
      // not in a transaction
    }
    raw.close()
  }
  for (const s of open.splice(0)) await s.close()
  vi.restoreAllMocks()
})

async function track(store: Promise<Store>): Promise<Store> {
  const s = await store
  open.push(s)
  return s
}

/** A second connection holding the write lock, as another process would. */
async function lock(path: string): Promise<RawDb> {
  const raw = await openRaw(path)
  lockers.push(raw)
  raw.exec('BEGIN EXCLUSIVE')
  return raw
}

function release(raw: RawDb): void {
  raw.exec('ROLLBACK')
}

describe('sqliteStore when another connection holds the lock', () => {
  it('defaults to a short busy wait and failMode open', () => {
    expect(DEFAULT_BUSY_TIMEOUT_MS).toBe(100)
    expect(DEFAULT_SQLITE_MAX_ENTRIES).toBe(100_000)
  })

  it("failMode 'open': writes are dropped, results are the fallbacks, onError gets the path; works again after release", async () => {
    const path = freshPath()
    const errors: [unknown, StoreErrorInfo][] = []
    const store = await track(sqliteStore({ path, onError: (err, info) => errors.push([err, info]) })) // default busyTimeoutMs and failMode
    await store.set('before', encodeText('1'))
    const locker = await lock(path)

    await expect(store.set('during', encodeText('2'))).resolves.toBeUndefined()
    expect(await store.setIfAbsent('fresh', encodeText('x'))).toBe(false)
    expect(await store.compareAndSet('before', encodeText('1'), encodeText('3'))).toBe(false)
    expect(await store.increment('n')).toBe(0)
    expect(await store.delete('before')).toBe(false)
    expect(await store.clear('')).toBe(0)
    // WAL: readers are not blocked by a writer, so reads keep being served.
    expect(decodeText((await store.get('before'))!)).toBe('1')

    expect(errors.map(([, info]) => info.operation)).toEqual(['set', 'setIfAbsent', 'compareAndSet', 'increment', 'delete', 'clear'])
    for (const [err, info] of errors) {
      expect(info).toEqual({ driver: 'sqlite', path, operation: info.operation, failMode: 'open' })
      expect(String((err as Error).message)).toMatch(/locked|busy/i)
    }

    release(locker)
    await store.set('after', encodeText('4'))
    expect(decodeText((await store.get('after'))!)).toBe('4')
    expect(await store.get('during')).toBeUndefined() // dropped, not queued
    const n = await store.increment('n')
    expect(n).toBe(1)
    expect(decodeText((await store.get('before'))!)).toBe('1')
  })

  it("failMode 'closed': calls reject with StoreUnavailableError carrying the SQLite error; works again after release", async () => {
    const path = freshPath()
    const errors: StoreErrorInfo[] = []
    const store = await track(sqliteStore({ path, failMode: 'closed', busyTimeoutMs: 10, onError: (_err, info) => errors.push(info) }))
    const locker = await lock(path)
    const err = await store.set('k', encodeText('v')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect((err as StoreUnavailableError).code).toBe('ERR_STORE_UNAVAILABLE')
    expect(String(((err as Error).cause as Error).message)).toMatch(/locked|busy/i)
    await expect(store.increment('n')).rejects.toBeInstanceOf(StoreUnavailableError)
    await expect(store.delete('k')).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(errors).toEqual([
      { driver: 'sqlite', path, operation: 'set', failMode: 'closed' },
      { driver: 'sqlite', path, operation: 'increment', failMode: 'closed' },
      { driver: 'sqlite', path, operation: 'delete', failMode: 'closed' },
    ])
    release(locker)
    await store.set('k', encodeText('v'))
    expect(decodeText((await store.get('k'))!)).toBe('v')
  })

  it('still rejects errors that are not about availability in both modes', async () => {
    const store = await track(sqliteStore({ path: freshPath(), failMode: 'open' }))
    await store.set('text', encodeText('not a number'))
    await expect(store.increment('text')).rejects.toThrow(TypeError)
  })

  it('by default logs one JSON line on stderr per distinct error per 10 s, naming the driver and the path', async () => {
    const lines: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
      lines.push(String(line))
    })
    const clock = manualClock()
    const path = freshPath()
    const store = await track(sqliteStore({ path, busyTimeoutMs: 0, now: clock.now }))
    await lock(path)
    for (let i = 0; i < 5; i++) await store.set(`k${i}`, encodeText('v'))
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', driver: 'sqlite', path, operation: 'set', failMode: 'open' })
    clock.advance(9_999)
    await store.set('k', encodeText('v'))
    expect(lines).toHaveLength(1)
    clock.advance(1)
    await store.set('k', encodeText('v'))
    expect(lines).toHaveLength(2)
  })
})

describe('sqliteStore open errors', () => {
  it('rejects a file that is not a database with one clear StoreOpenError', async () => {
    const path = freshPath()
    writeFileSync(path, 'this is a text file, not a database; '.repeat(20))
    const err = await sqliteStore({ path }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreOpenError)
    expect(err).toMatchObject({ code: 'ERR_STORE_OPEN', reason: 'not-a-database', driver: 'sqlite', path })
    expect((err as Error).message).toBe(`sqlite store ${path}: file is not a database`)
  })

  it('rejects a database whose schema page is garbage as corrupt', async () => {
    const path = freshPath()
    const good = await sqliteStore({ path })
    await good.set('k', encodeText('v'))
    await good.close()
    rmSync(`${path}-wal`, { force: true })
    rmSync(`${path}-shm`, { force: true })
    const fd = openSync(path, 'r+')
    writeSync(fd, new Uint8Array(3_000).fill(0xa5), 0, 3_000, 100) // after the 100-byte header: page 1 holds the schema
    closeSync(fd)
    const err = await sqliteStore({ path }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreOpenError)
    // Which of these SQLite reports depends on the binding and on where the garbage lands.
    expect(['corrupt', 'not-a-database', 'io']).toContain((err as StoreOpenError).reason)
    expect((err as Error).message).toMatch(new RegExp(`^sqlite store ${escape(path)}: [^\\n]+$`))
  })

  it('rejects a path in a missing directory, naming the directory', async () => {
    const path = join(dir, 'no-such-dir', 'kv.db')
    const err = await sqliteStore({ path }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreOpenError)
    expect(err).toMatchObject({ reason: 'missing-directory' })
    expect((err as Error).message).toBe(`sqlite store ${path}: directory ${join(dir, 'no-such-dir')} does not exist`)
  })

  it('rejects a path whose parent is a regular file', async () => {
    const parent = join(dir, `plain-${++files}.txt`)
    writeFileSync(parent, 'x')
    const err = await sqliteStore({ path: join(parent, 'kv.db') }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreOpenError)
    expect((err as Error).message).toBe(`sqlite store ${join(parent, 'kv.db')}: ${parent} is not a directory`)
  })

  it('reaches createStore as the same error', async () => {
    const path = freshPath()
    writeFileSync(path, 'garbage '.repeat(100))
    await expect(createStoreSqlite(path)).rejects.toBeInstanceOf(StoreOpenError)
  })

  describe.each([
    ['a read-only file', 'file'],
    ['a read-only directory', 'dir'],
  ] as const)('%s', (_title, kind) => {
    const expected = (path: string): string =>
      kind === 'file'
        ? `sqlite store ${path}: the file is read-only`
        : `sqlite store ${path}: directory ${dirname(path)} is not writable (SQLite needs it for the file and its -wal/-shm files)`
    const prepare = async (): Promise<string> => {
      const sub = join(dir, `ro-${kind}-${++files}`)
      mkdirSync(sub)
      const path = join(sub, 'kv.db')
      if (kind === 'file') {
        const s = await sqliteStore({ path })
        await s.close() // leaves no -wal/-shm behind
        chmodSync(path, 0o444)
        chmodSync(sub, 0o555)
      } else {
        chmodSync(sub, 0o555)
      }
      return path
    }

    it.skipIf(isRoot)('rejects with one clear StoreOpenError (in process)', async () => { // skipped as root: root ignores file modes; the child-process test below covers it
      const path = await prepare()
      const err = await sqliteStore({ path }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreOpenError)
      expect(err).toMatchObject({ reason: 'read-only', message: expected(path) })
    })

    it.skipIf(!isRoot || childArgs('x').length === 0 || !othersCanRun(process.execPath))('rejects with one clear StoreOpenError (unprivileged child)', async () => { // runs only as root, where the in-process test cannot; skipped on Node < 22.18 (cannot run the .ts child) and when the runtime binary is private to root (e.g. under ~/.npm)
      const path = await prepare()
      const result = await runOpenChild(path)
      expect(result).toEqual({ opened: false, name: 'StoreOpenError', code: 'ERR_STORE_OPEN', reason: 'read-only', message: expected(path) })
    })
  })
})

describe('sqliteStore when its file goes away at run time', () => {
  it.each(['open', 'closed'] as const)("applies failMode '%s' once the file is deleted", async (failMode) => {
    const clock = manualClock()
    const path = freshPath()
    const errors: [unknown, StoreErrorInfo][] = []
    const store = await track(sqliteStore({ path, failMode, now: clock.now, onError: (e, i) => errors.push([e, i]) }))
    await store.set('k', encodeText('v'))
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true })
    clock.advance(FILE_CHECK_INTERVAL_MS)
    if (failMode === 'open') {
      await expect(store.set('k2', encodeText('v'))).resolves.toBeUndefined()
      expect(await store.get('k')).toBeUndefined()
    } else {
      const err = await store.set('k2', encodeText('v')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreUnavailableError)
      expect(String(((err as Error).cause as Error).message)).toMatch(/deleted/)
      await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError)
    }
    expect(errors[0][1]).toEqual({ driver: 'sqlite', path, operation: 'set', failMode })
  })

  it('survives the database file being truncated underneath it (no memory-mapped I/O, no SIGBUS)', async () => {
    const path = freshPath()
    const store = await track(sqliteStore({ path, failMode: 'open', onError: () => {} }))
    for (let i = 0; i < 200; i++) await store.set(`k${i}`, new Uint8Array(512).fill(i))
    await store.close()
    open.pop()
    const again = await track(sqliteStore({ path, failMode: 'open', onError: () => {} }))
    truncateSync(path, 0)
    // Each call resolves (data or a miss); a SIGBUS would have killed this worker instead.
    for (let i = 0; i < 200; i++) await again.get(`k${i}`)
    await again.set('after', encodeText('v'))
    expect(again.name).toBe('sqlite')
  })
})

describe('sqliteStore maxEntries', () => {
  it('keeps the table near maxEntries, evicting the least recently written', async () => {
    const clock = manualClock()
    const path = freshPath()
    const store = await track(sqliteStore({ path, maxEntries: 10, now: clock.now }))
    for (let i = 0; i < 30; i++) {
      clock.advance(1)
      await store.set(`k${String(i).padStart(2, '0')}`, encodeText(String(i)))
      expect(await rowCount(path)).toBeLessThanOrEqual(10)
    }
    const left = await store.keys('')
    expect(left.length).toBeGreaterThanOrEqual(9)
    expect(left).toContain('k29')
    expect(left).not.toContain('k00')
    expect(left).toEqual([...left].sort()) // the newest survive: a contiguous run ending at k29
    expect(left[0] >= 'k20').toBe(true)
  })

  it('evicts expired rows before live ones', async () => {
    const clock = manualClock()
    const path = freshPath()
    const store = await track(sqliteStore({ path, maxEntries: 10, now: clock.now, sweepIntervalMs: 0 }))
    for (let i = 0; i < 5; i++) {
      clock.advance(1)
      await store.set(`old${i}`, encodeText('keep'))
    }
    for (let i = 0; i < 5; i++) {
      clock.advance(1)
      await store.set(`tmp${i}`, encodeText('x'), { ttlMs: 10 })
    }
    clock.advance(10) // the tmp rows are expired but still in the table
    expect(await rowCount(path)).toBe(10)
    await store.set('new0', encodeText('n')) // 11 rows > 10: the 5 expired go, nothing live
    expect(await rowCount(path)).toBe(6)
    expect((await store.keys('old')).length).toBe(5)
    expect(await store.get('new0')).toBeDefined()
  })

  it('checks in batches: with maxEntries 1000 it trims only every 10 writes', async () => {
    const clock = manualClock()
    const path = freshPath()
    const store = await track(sqliteStore({ path, maxEntries: 1_000, now: clock.now }))
    for (let i = 0; i < 1_005; i++) await store.set(`k${i}`, encodeText('v'))
    expect(await rowCount(path)).toBe(1_005) // checked at 1000 (not past it yet); next check at 1010
    for (let i = 1_005; i < 1_010; i++) await store.set(`k${i}`, encodeText('v'))
    expect(await rowCount(path)).toBe(900) // down to 90%
  })

  it('upgrades a table created without written_at', async () => {
    const path = freshPath()
    const raw = await openRaw(path)
    raw.exec('CREATE TABLE switchboard_kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at INTEGER) WITHOUT ROWID')
    raw.exec("INSERT INTO switchboard_kv (key, value, expires_at) VALUES ('legacy', x'7631', NULL)")
    raw.close()
    const store = await track(sqliteStore({ path, maxEntries: 2 }))
    expect(decodeText((await store.get('legacy'))!)).toBe('v1')
    await store.set('a', encodeText('a'))
    await store.set('b', encodeText('b')) // 3 rows > 2: the legacy row counts as the oldest
    expect(await store.get('legacy')).toBeUndefined()
    expect(await store.get('b')).toBeDefined()
  })

  it('names a bad maxEntries, busyTimeoutMs and failMode', async () => {
    await expect(sqliteStore({ path: ':memory:', maxEntries: 0 })).rejects.toThrow(/maxEntries/)
    await expect(sqliteStore({ path: ':memory:', busyTimeoutMs: -1 })).rejects.toThrow(/busyTimeoutMs/)
    await expect(sqliteStore({ path: ':memory:', failMode: 'maybe' as 'open' })).rejects.toThrow(/failMode/)
  })
})

async function createStoreSqlite(path: string): Promise<Store> {
  const { createStore } = await import('../src/index.ts')
  return createStore({ driver: 'sqlite', path })
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

interface RawDb {
  exec(sql: string): unknown
  prepare(sql: string): { get(...params: unknown[]): unknown }
  close(): void
}

/** Opens the file with the same binding the driver would pick. */
async function openRaw(path: string): Promise<RawDb> {
  const bun = 'bun:sqlite'
  let db: RawDb
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') db = new (await import(bun)).Database(path)
  else {
    const node = 'node:sqlite'
    try {
      db = new (await import(node)).DatabaseSync(path)
    } catch {
      const libsql = 'libsql'
      db = new (await import(libsql)).default(path)
    }
  }
  db.exec('PRAGMA busy_timeout = 0')
  return db
}

async function rowCount(path: string): Promise<number> {
  const db = await openRaw(path)
  try {
    return Number((db.prepare('SELECT count(*) AS n FROM switchboard_kv').get() as { n: number }).n)
  } finally {
    db.close()
  }
}

/** Whether the unprivileged child user can execute `file`: o+x on it and on every directory above it. */
function othersCanRun(file: string): boolean {
  let path = realpathSync(file)
  if ((statSync(path).mode & 0o001) === 0) return false
  while (path !== dirname(path)) {
    path = dirname(path)
    if ((statSync(path).mode & 0o001) === 0) return false
  }
  return true
}

const openChild = fileURLToPath(new URL('./fixtures/open-child.ts', import.meta.url))

/** How to run a .ts file with this runtime; [] when it cannot. */
function childArgs(path: string): string[] {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') return ['run', '-A', path]
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') return [path]
  return major > 22 || (major === 22 && minor >= 18) ? [path] : []
}

interface ChildResult {
  opened: boolean
  name?: string
  code?: string
  reason?: string
  message?: string
}

/** Runs the open fixture as `nobody` (uid/gid 65534) and parses its one JSON line. */
function runOpenChild(path: string): Promise<ChildResult> {
  const home = join(dir, `home-${++files}`)
  mkdirSync(home)
  chownSync(home, 65534, 65534)
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, childArgs(openChild).concat(path), {
      uid: 65534,
      gid: 65534,
      env: { ...process.env, HOME: home, DENO_DIR: join(home, 'deno'), XDG_CACHE_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (chunk: Uint8Array) => (out += new TextDecoder().decode(chunk)))
    proc.stderr.on('data', (chunk: Uint8Array) => (err += new TextDecoder().decode(chunk)))
    proc.once('error', reject)
    proc.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? ''
      try {
        resolve(JSON.parse(line) as ChildResult)
      } catch {
        reject(new Error(`open child exited ${code}: ${out} ${err}`))
      }
    })
  })
}
