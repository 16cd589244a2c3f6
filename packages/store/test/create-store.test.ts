import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { redisServerInstalled, startRedis } from '../../../scripts/redis-server.mjs'
import { createStore, decodeText, encodeText, type Store } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'switchboard-create-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function roundTrip(store: Store): Promise<string | undefined> {
  try {
    await store.set('k', encodeText('v'))
    const got = await store.get('k')
    return got && decodeText(got)
  } finally {
    await store.close()
  }
}

describe('createStore', () => {
  it('builds a memory store from memory:, memory and { driver: "memory" }', async () => {
    for (const spec of ['memory:', 'memory', 'memory://', { driver: 'memory' as const }]) {
      const store = await createStore(spec)
      expect(store.name).toBe('memory')
      expect(await roundTrip(store)).toBe('v')
    }
  })

  it('reads memory: options from the query string, sizes included', async () => {
    const store = await createStore('memory:?maxEntries=2&maxBytes=1mib')
    for (const k of ['a', 'b', 'c']) await store.set(k, encodeText(k))
    expect((await store.keys('')).sort()).toEqual(['b', 'c'])
    await store.close()
  })

  it('builds a SQLite store from sqlite:PATH, sqlite:///ABS, sqlite::memory: and an object', async () => {
    const rel = join(dir, 'a.db')
    for (const spec of [`sqlite:${rel}`, `sqlite://${join(dir, 'b.db')}`, 'sqlite::memory:', { driver: 'sqlite' as const, path: join(dir, 'c.db') }]) {
      const store = await createStore(spec)
      expect(store.name).toBe('sqlite')
      expect(await roundTrip(store)).toBe('v')
    }
    const again = await createStore(`sqlite:${rel}`)
    expect(decodeText((await again.get('k')) ?? new Uint8Array())).toBe('v')
    await again.close()
  })

  it('rejects a bad spec with a TypeError naming what is wrong', async () => {
    await expect(createStore('postgres://db/x')).rejects.toThrow(/postgres: URL/)
    await expect(createStore('')).rejects.toThrow(TypeError)
    await expect(createStore(42 as unknown as string)).rejects.toThrow(/got 42/)
    await expect(createStore(null as unknown as string)).rejects.toThrow(/got null/)
    await expect(createStore({ driver: 'mongo' } as unknown as { driver: 'memory' })).rejects.toThrow(/store\.driver.*"mongo"/)
    await expect(createStore('sqlite:')).rejects.toThrow(/sqlite: needs a file path/)
    await expect(createStore('memory:?maxItems=5')).rejects.toThrow(/maxItems/)
    await expect(createStore('memory:?maxBytes=lots')).rejects.toThrow(/maxBytes/)
    await expect(createStore('redis://127.0.0.1:1?failMode=sometimes')).rejects.toThrow(/failMode/)
    await expect(createStore('redis://127.0.0.1:1?commandTimeoutMs=soon')).rejects.toThrow(/commandTimeoutMs/)
  })

  it('never echoes a Redis URL, which may carry a password', async () => {
    const err = await createStore('redis://user:s3cret@127.0.0.1:1?failMode=x').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TypeError)
    expect(String(err)).not.toContain('s3cret')
  })

  it.skipIf(!process.env.CI && !redisServerInstalled())('builds a Redis store from a redis:// URL with keyPrefix and durations', async () => { // skipped only when redis-server is not installed locally; CI installs it
    const redis = await startRedis()
    try {
      const store = await createStore(`${redis.url}?keyPrefix=gw:&commandTimeoutMs=2s&failMode=closed`)
      expect(store.name).toBe('redis')
      await store.set('k', encodeText('v'))
      const plain = await createStore({ driver: 'redis', url: redis.url })
      expect(await plain.keys('')).toEqual(['gw:k'])
      await plain.close()
      expect(await roundTrip(store)).toBe('v')
    } finally {
      await redis.stop()
    }
  })
})
