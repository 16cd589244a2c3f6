import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { encodeText } from '../src/index.ts'
import { describeStore, manualClock } from '../src/conformance.ts'
import { sqliteStore } from '../src/sqlite.ts'

const dir = mkdtempSync(join(tmpdir(), 'switchboard-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshPath = (): string => join(dir, `db-${++files}.sqlite`)

const clock = manualClock()
const shared = freshPath()
describeStore({ name: 'sqlite', create: () => sqliteStore({ path: shared, now: clock.now }), clock, shared: true })

describe('sqliteStore', () => {
  it('persists across close and reopen, TTLs included', async () => {
    const c = manualClock()
    const path = freshPath()
    const first = await sqliteStore({ path, now: c.now })
    await first.set('kept', new Uint8Array([0, 1, 2]))
    await first.set('brief', encodeText('x'), { ttlMs: 1_000 })
    await first.increment('hits', 7)
    await first.close()
    const second = await sqliteStore({ path, now: c.now })
    try {
      expect(Array.from((await second.get('kept')) ?? [])).toEqual([0, 1, 2])
      expect(await second.increment('hits')).toBe(8)
      expect(await second.get('brief')).toBeDefined()
      c.advance(1_000)
      expect(await second.get('brief')).toBeUndefined()
    } finally {
      await second.close()
    }
  })

  it('sweeps expired rows on its timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const c = manualClock()
    const path = freshPath()
    const store = await sqliteStore({ path, now: c.now, sweepIntervalMs: 1_000 })
    try {
      await store.set('old', encodeText('x'), { ttlMs: 10 })
      await store.set('new', encodeText('y'))
      expect(await rowCount(path)).toBe(2)
      c.advance(10)
      vi.advanceTimersByTime(1_000)
      expect(await rowCount(path)).toBe(1)
    } finally {
      vi.useRealTimers()
      await store.close()
    }
  })

  it('uses WAL mode', async () => {
    const path = freshPath()
    const store = await sqliteStore({ path })
    try {
      await store.set('k', encodeText('v'))
      const db = await openRaw(path)
      expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal')
      db.close()
    } finally {
      await store.close()
    }
  })

  it.skipIf(childArgs('x').length === 0)('stays atomic across processes sharing the file', async () => { // skipped on Node < 22.18: it cannot run the .ts child process (no type stripping)
    const path = freshPath()
    const setup = await sqliteStore({ path })
    await setup.close() // create the table before the children race for it
    const codes = await Promise.all([1, 2, 3].map(() => runChild(path, 100)))
    expect(codes).toEqual([0, 0, 0])
    const store = await sqliteStore({ path })
    try {
      expect(await store.increment('hits', 0)).toBe(300)
      expect(new TextDecoder().decode(await store.get('cas'))).toBe('300')
    } finally {
      await store.close()
    }
  })

  it('rejects calls after close', async () => {
    const store = await sqliteStore({ path: ':memory:' })
    await store.close()
    await store.close() // twice is fine
    await expect(store.get('k')).rejects.toThrow(/closed/)
  })

  it('names the bad option', async () => {
    await expect(sqliteStore({ path: '' })).rejects.toThrow(/path/)
    await expect(sqliteStore({ path: ':memory:', table: 'x; DROP TABLE y' })).rejects.toThrow(/table/)
    await expect(sqliteStore({ path: ':memory:', sweepIntervalMs: -1 })).rejects.toThrow(/sweepIntervalMs/)
  })
})

interface RawDb {
  prepare(sql: string): { get(...params: unknown[]): unknown }
  close(): void
}

/** Opens the file with the same binding the driver would pick, to look at the rows themselves. */
async function openRaw(path: string): Promise<RawDb> {
  const bun = 'bun:sqlite'
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') return new (await import(bun)).Database(path)
  const node = 'node:sqlite'
  try {
    return new (await import(node)).DatabaseSync(path)
  } catch {
    const libsql = 'libsql'
    return new (await import(libsql)).default(path)
  }
}

async function rowCount(path: string): Promise<number> {
  const db = await openRaw(path)
  try {
    return Number((db.prepare('SELECT count(*) AS n FROM switchboard_kv').get() as { n: number }).n)
  } finally {
    db.close()
  }
}

const child = fileURLToPath(new URL('./fixtures/sqlite-child.ts', import.meta.url))

/** How to run a .ts file with this runtime; [] when it cannot. */
function childArgs(path: string): string[] {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') return ['run', '-A', path]
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') return [path]
  return major > 22 || (major === 22 && minor >= 18) ? [path] : []
}

function runChild(path: string, count: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...childArgs(child), path, String(count)], { stdio: ['ignore', 'ignore', 'inherit'] })
    proc.once('error', reject)
    proc.once('exit', (code) => resolve(code))
  })
}
