// The HTTP cache wired into the gateway: routes with `cache:` in config, real upstreams that count
// their requests, real Redis for two instances sharing hits.
import { request as httpRequest } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from '@switchboard/store/redis'
import { startRedis } from '../../../scripts/redis-server.mjs'
import { simpleConfig, startGateway, startUpstream, type TestGateway, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

/** A GET with exactly these headers (fetch would add cache-control: no-cache to conditional requests). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
      .on('error', reject)
      .end()
  })
}

let counter = 0
const cacheable = (maxAge = 60) =>
  (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    counter++
    const body = `v${counter} ${req.url}`
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': `max-age=${maxAge}`, etag: `"e${counter}"` })
    res.end(body)
  }

describe('gateway: route cache', () => {
  it('serves a cacheable GET from the cache the second time (X-Cache MISS then HIT, Age)', async () => {
    const up = await upstream(cacheable())
    const gw = await gateway(simpleConfig([up.url], { route: { cache: true } }))
    const first = await fetch(`${gw.url}/item`)
    expect(first.headers.get('x-cache')).toBe('MISS')
    const firstBody = await first.text()
    const second = await fetch(`${gw.url}/item`)
    expect(second.headers.get('x-cache')).toBe('HIT')
    expect(second.headers.get('age')).toMatch(/^\d+$/)
    expect(await second.text()).toBe(firstBody)
    expect(up.requests).toHaveLength(1)
    expect(gw.gateway.cacheStats()).toMatchObject({ hits: 1, misses: 1 })
  })

  it('applies ttl only when the upstream gives no freshness, and never caches routes without cache:', async () => {
    let n = 0
    const up = await upstream((_req, res) => res.end(`plain ${++n}`))
    const gw = await gateway({
      upstreams: { a: { targets: [up.url] } },
      routes: [
        { name: 'cached', match: { path: '/c/*' }, upstream: 'a', cache: { ttl: '60s', maxObjectSize: '1kb' } },
        { name: 'plain', match: { path: '/*' }, upstream: 'a' },
      ],
    })
    expect(await (await fetch(`${gw.url}/c/x`)).text()).toBe('plain 1')
    expect(await (await fetch(`${gw.url}/c/x`)).text()).toBe('plain 1')
    expect(await (await fetch(`${gw.url}/p`)).text()).toBe('plain 2')
    expect(await (await fetch(`${gw.url}/p`)).text()).toBe('plain 3')
  })

  it('keeps tenants apart with cache.keyHeaders', async () => {
    const up = await upstream(cacheable())
    const gw = await gateway(simpleConfig([up.url], { route: { cache: { ttl: '1m', keyHeaders: ['X-Tenant'] } } }))
    const a1 = await get(`${gw.url}/t`, { 'x-tenant': 'a' })
    const b1 = await get(`${gw.url}/t`, { 'x-tenant': 'b' })
    const a2 = await get(`${gw.url}/t`, { 'x-tenant': 'a' })
    expect(b1.body).not.toBe(a1.body)
    expect([a2.body, a2.headers['x-cache']]).toEqual([a1.body, 'HIT'])
    expect(up.requests).toHaveLength(2)
  })

  it('answers a conditional request with 304 from the cache', async () => {
    const up = await upstream(cacheable())
    const gw = await gateway(simpleConfig([up.url], { route: { cache: true } }))
    const first = await fetch(`${gw.url}/cond`)
    const etag = first.headers.get('etag')!
    await first.text()
    const res = await get(`${gw.url}/cond`, { 'if-none-match': etag })
    expect([res.status, res.headers['x-cache'], res.headers.etag, res.body]).toEqual([304, 'HIT', etag, ''])
    expect(up.requests).toHaveLength(1)
  })

  it('coalesces 100 concurrent identical misses into one upstream request', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const up = await upstream((_req, res) => {
      void held.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' })
        res.end('shared')
      })
    })
    const gw = await gateway(simpleConfig([up.url], { route: { cache: true } }))
    const all = Array.from({ length: 100 }, () => fetch(`${gw.url}/burst`).then((r) => r.text()))
    while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, 100))
    release()
    const bodies = await Promise.all(all)
    expect(bodies.every((b) => b === 'shared')).toBe(true)
    expect(up.requests).toHaveLength(1)
  })

  it('invalidates on a successful POST to the same URI and purges through the admin API', async () => {
    const up = await upstream((req, res) => {
      counter++
      if (req.method === 'POST') return void res.end('posted')
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.end(`v${counter}`)
    })
    const gw = await gateway({ ...simpleConfig([up.url], { route: { cache: true } }), admin: true })
    const a = await (await fetch(`${gw.url}/doc`)).text()
    expect(await (await fetch(`${gw.url}/doc`)).text()).toBe(a)
    await (await fetch(`${gw.url}/doc`, { method: 'POST', body: 'x' })).text()
    const b = await (await fetch(`${gw.url}/doc`)).text()
    expect(b).not.toBe(a)
    expect(await (await fetch(`${gw.url}/doc`)).text()).toBe(b)
    const purge = await fetch(`${gw.url}/admin/cache/purge`, { method: 'POST', body: '{"prefix":""}' })
    expect(purge.status).toBe(200)
    expect((await purge.json()).purged).toBeGreaterThan(0)
    const c = await (await fetch(`${gw.url}/doc`)).text()
    expect(c).not.toBe(b)
  })
})

describe('gateway: cache shared by two instances through Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('a response cached by one gateway is a hit on the other', async () => {
    const up = await upstream(cacheable())
    const storeA = await redisStore({ url: redis!.url })
    const storeB = await redisStore({ url: redis!.url })
    cleanup.push(() => storeA.close(), () => storeB.close())
    const config = simpleConfig([up.url], { route: { cache: true } })
    const gwA = await gateway(config, { store: storeA })
    const gwB = await gateway(config, { store: storeB })
    // Both instances sit behind one public name, so clients send the same Host to either.
    const host = { host: 'api.example' }
    const first = await get(`${gwA.url}/shared`, host)
    expect(first.headers['x-cache']).toBe('MISS')
    // The store write completes just after the response ends: wait for it to land in Redis.
    for (let i = 0; i < 100 && (await storeB.keys('cache:')).length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    const hit = await get(`${gwB.url}/shared`, host)
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.body).toBe(first.body)
    expect(up.requests).toHaveLength(1)
  })

  it('keeps serving, uncached, when its Redis goes away (failMode open)', async () => {
    const own = await startRedis()
    let stopped = false
    cleanup.push(async () => {
      if (!stopped) await own.stop()
    })
    const up = await upstream(cacheable())
    const store = await redisStore({ url: own.url, failMode: 'open' })
    cleanup.push(() => store.close())
    const gw = await gateway(simpleConfig([up.url], { route: { cache: true } }), { store })
    expect((await get(`${gw.url}/r`)).status).toBe(200)
    await own.stop()
    stopped = true
    const results = await Promise.all([1, 2, 3].map(() => get(`${gw.url}/r2`)))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200])
    expect(up.requests.length).toBeGreaterThanOrEqual(3)
  })
})
