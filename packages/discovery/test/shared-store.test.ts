import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Store } from '@switchboard/core'
import { sqliteStore } from '@switchboard/store/sqlite'
import { redisStore } from '@switchboard/store/redis'
import { type RedisServer, redisServerInstalled, startRedis } from '../../../scripts/redis-server.mjs'
import { createDiscovery, type Discovery } from '../src/index.ts'
import { answer, createTestTransport, send, startProxy, startUpstream, type Upstream } from './harness.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

/** Two real upstreams: the first answers 404, the second 200. */
async function upstreams(): Promise<Upstream[]> {
  const list = [await startUpstream(answer(404, 'a')), await startUpstream(answer(200, 'b'))]
  for (const u of list) cleanups.push(() => u.close())
  return list
}

/** One "gateway instance": discovery over `endpoints` with `store`, behind a real proxy. */
async function instance(
  endpoints: string[],
  store: Store,
): Promise<{ url: string; discovery: Discovery; remembered: () => Promise<void> }> {
  const transport = createTestTransport()
  cleanups.push(() => transport.close())
  const waiting: (() => void)[] = []
  let written = 0
  const discovery = createDiscovery({
    endpoints,
    store,
    transport,
    onEvent: (e) => {
      if (e.type !== 'remembered') return
      written++
      while (waiting.length > 0) waiting.shift()!()
    },
  })
  const proxy = await startProxy([discovery.middleware()])
  cleanups.push(() => proxy.close())
  // Resolves once this instance has written a route: the store write runs alongside the response.
  const remembered = (): Promise<void> => (written > 0 ? Promise.resolve() : new Promise((resolve) => waiting.push(resolve)))
  return { url: proxy.origin, discovery, remembered }
}

describe('remembered routes in SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-discovery-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('survive a restart: the reopened file answers without probing', async () => {
    const [a, b] = await upstreams()
    const path = join(dir, 'routes.db')
    const body = JSON.stringify({ name: 'log_file.log', path: 'c:/logs' })
    const first = await sqliteStore({ path, sweepIntervalMs: 0 })
    const before = await instance([a.origin, b.origin], first)
    // PUT: idempotent, so it is probed (a POST would go to the first endpoint only).
    expect((await send(`${before.url}/get_log_files`, { method: 'PUT', body })).headers['x-switchboard-discovery']).toBe('probe')
    expect([a.count, b.count]).toEqual([1, 1])
    await before.remembered()
    await first.close()

    const reopened = await sqliteStore({ path, sweepIntervalMs: 0 })
    cleanups.push(() => reopened.close())
    const after = await instance([a.origin, b.origin], reopened)
    const res = await send(`${after.url}/get_log_files`, { method: 'PUT', body })
    expect(res.status).toBe(200)
    expect(res.headers['x-switchboard-discovery']).toBe('hit')
    expect([a.count, b.count]).toEqual([1, 2])
    expect(after.discovery.stats()).toMatchObject({ hits: 1, probes: 0 })
    expect(await after.discovery.clear()).toBe(1)
  })
})

// Locally a missing redis-server skips this block; under CI startRedis() throws and the test fails.
describe.skipIf(!process.env.CI && !redisServerInstalled())('remembered routes in Redis', () => { // skipped only when redis-server is not installed locally: apt-get install -y redis-server
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(() => redis?.stop())

  it('are shared by two gateway instances', async () => {
    const [a, b] = await upstreams()
    const stores = [await redisStore({ url: redis.url, keyPrefix: 'gw:' }), await redisStore({ url: redis.url, keyPrefix: 'gw:' })]
    for (const s of stores) cleanups.push(() => s.close())
    const one = await instance([a.origin, b.origin], stores[0])
    const two = await instance([a.origin, b.origin], stores[1])
    expect((await send(`${one.url}/shared?x=1`)).headers['x-switchboard-discovery']).toBe('probe')
    expect([a.count, b.count]).toEqual([1, 1])
    await one.remembered()
    const res = await send(`${two.url}/shared?x=1`)
    expect(res.body).toBe('b')
    expect(res.headers['x-switchboard-discovery']).toBe('hit')
    expect([a.count, b.count]).toEqual([1, 2])
    // Clearing on one instance (the admin call) forgets for the whole fleet.
    expect(await two.discovery.clear()).toBe(1)
    expect((await send(`${one.url}/shared?x=1`)).headers['x-switchboard-discovery']).toBe('probe')
    expect([a.count, b.count]).toEqual([2, 3])
  })
})
