import type http from 'node:http'
import net from 'node:net'
import type { Middleware, Store } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { createStore, memoryStore } from '@switchboard/store'
import { afterEach, describe, expect, it } from 'vitest'
import { redisServerInstalled, startRedis } from '../../../scripts/redis-server.mjs'
import { decodeRecord } from '../src/entry.ts'
import {
  cache,
  createHttpCache,
  DEFAULT_COALESCE_BODY_WAIT_MS,
  DEFAULT_COALESCE_WAIT_MS,
  type CacheOptions,
  type HttpCache,
} from '../src/index.ts'
import { open, send, startHarness, startUpstream, type Harness, type Upstream, type UpstreamHandler } from './harness.ts'

let offset = 0
const now = (): number => Date.now() + offset
const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  offset = 0
  while (cleanups.length) await cleanups.pop()!()
})

interface Setup {
  upstream: Upstream
  proxy: Harness
  cache: HttpCache
  get(path: string, headers?: Record<string, string>): ReturnType<typeof send>
}

async function setup(handler: UpstreamHandler, options: Partial<CacheOptions> = {}, extra: Middleware[] = []): Promise<Setup> {
  const upstream = await startUpstream(dated(handler))
  cleanups.push(() => upstream.close())
  const httpCache = createHttpCache({ store: memoryStore(), now, ...options })
  cleanups.push(() => httpCache.idle())
  const proxy = await startHarness([...extra, httpCache.middleware()], () => upstream.origin)
  cleanups.push(() => proxy.close())
  return { upstream, proxy, cache: httpCache, get: (path, headers) => send(proxy.origin + path, { headers }) }
}

/** The upstream's Date follows the injected clock, as a real origin's would follow the real one. */
const dated =
  (handler: UpstreamHandler): UpstreamHandler =>
  (req, res, n) => {
    res.setHeader('date', new Date(now()).toUTCString())
    handler(req, res, n)
  }

/** Replies `v<n>` with the given headers. */
const reply =
  (headers: Record<string, string> | ((req: http.IncomingMessage, n: number) => Record<string, string>), status = 200): UpstreamHandler =>
  (req, res, n) => {
    res.writeHead(status, typeof headers === 'function' ? headers(req, n) : headers)
    res.end(`v${n}`)
  }

/** Waits (bounded, no wall-clock assertion) until `cond()` holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(cond()).toBe(true)
}

describe('cache middleware over real HTTP', () => {
  it('stores a fresh response and serves it with Age and X-Cache: HIT', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60', 'content-type': 'text/plain' }))
    const first = await s.get('/a')
    expect(first.headers['x-cache']).toBe('MISS')
    expect(first.body).toBe('v1')
    offset = 5000
    const second = await s.get('/a')
    expect(second).toMatchObject({ status: 200, body: 'v1' })
    expect(second.headers['x-cache']).toBe('HIT')
    expect(Number(second.headers.age)).toBeGreaterThanOrEqual(5)
    expect(second.headers['content-type']).toBe('text/plain')
    expect(s.upstream.count).toBe(1)
    expect(s.cache.stats()).toMatchObject({ hits: 1, misses: 1, stores: 1 })
  })

  it('answers HEAD from a stored GET without a body', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }))
    await s.get('/a')
    const head = await send(`${s.proxy.origin}/a`, { method: 'HEAD' })
    expect(head.headers['x-cache']).toBe('HIT')
    expect(head.headers['content-length']).toBe('2')
    expect(head.body).toBe('')
    expect(s.upstream.count).toBe(1)
  })

  it('does not store no-store, private, Set-Cookie or non-heuristic statuses without freshness', async () => {
    const s = await setup(
      reply((req): Record<string, string> => {
        if (req.url === '/no-store') return { 'cache-control': 'no-store' }
        if (req.url === '/private') return { 'cache-control': 'private, max-age=60' }
        if (req.url === '/cookie') return { 'cache-control': 'max-age=60', 'set-cookie': 'sid=1' }
        return {}
      }),
    )
    for (const path of ['/no-store', '/private', '/cookie']) {
      await s.get(path)
      expect((await s.get(path)).headers['x-cache']).toBe('MISS')
    }
    expect(s.upstream.count).toBe(6)
    expect(s.cache.stats().stores).toBe(0)
  })

  it('uses ttlMs only when the upstream gives no freshness', async () => {
    const s = await setup(
      reply((req): Record<string, string> => (req.url === '/short' ? { 'cache-control': 'max-age=1' } : {})),
      { ttlMs: 60_000 },
    )
    await s.get('/plain')
    expect((await s.get('/plain')).headers['x-cache']).toBe('HIT')
    await s.get('/short')
    offset = 2000
    expect((await s.get('/short')).headers['x-cache']).toBe('MISS')
    expect((await s.get('/plain')).headers['x-cache']).toBe('HIT')
  })

  it('keys on Vary headers and never matches Vary: *', async () => {
    const s = await setup(reply((req) => ({ 'cache-control': 'max-age=60', vary: req.url === '/star' ? '*' : 'Accept-Language' })))
    expect((await s.get('/v', { 'accept-language': 'en' })).body).toBe('v1')
    expect((await s.get('/v', { 'accept-language': 'fr' })).body).toBe('v2')
    const en = await s.get('/v', { 'accept-language': 'en' })
    expect(en).toMatchObject({ body: 'v1' })
    expect(en.headers['x-cache']).toBe('HIT')
    expect((await s.get('/v', { 'accept-language': 'fr' })).body).toBe('v2')
    await s.get('/star')
    expect((await s.get('/star')).headers['x-cache']).toBe('MISS')
    expect(s.upstream.count).toBe(4)
  })

  it('keeps keyHeaders and the key hook apart', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }), { keyHeaders: ['X-Tenant'] })
    expect((await s.get('/k', { 'x-tenant': 'a' })).body).toBe('v1')
    expect((await s.get('/k', { 'x-tenant': 'b' })).body).toBe('v2')
    expect((await s.get('/k', { 'x-tenant': 'a' })).body).toBe('v1')
    expect(s.upstream.count).toBe(2)
  })

  it('stores Authorization requests only when public / s-maxage / must-revalidate allow it', async () => {
    const s = await setup(reply((req) => ({ 'cache-control': req.url === '/public' ? 'public, max-age=60' : 'max-age=60' })))
    const auth = { authorization: 'Bearer t' }
    await s.get('/secret', auth)
    expect((await s.get('/secret', auth)).headers['x-cache']).toBe('MISS')
    await s.get('/public', auth)
    expect((await s.get('/public', auth)).headers['x-cache']).toBe('HIT')
    // A response stored without Authorization is not served to a request that carries it.
    await s.get('/open')
    expect((await s.get('/open', auth)).headers['x-cache']).toBe('MISS')
    expect(s.upstream.count).toBe(5)
  })

  it('answers matching conditional requests with 304 from a fresh entry', async () => {
    const lastModified = new Date(Date.now() - 3_600_000).toUTCString()
    const s = await setup(reply({ 'cache-control': 'max-age=60', etag: '"e1"', 'last-modified': lastModified }))
    await s.get('/c')
    const inm = await s.get('/c', { 'if-none-match': 'W/"zz", W/"e1"' })
    expect(inm.status).toBe(304)
    expect(inm.body).toBe('')
    expect(inm.headers).toMatchObject({ etag: '"e1"', 'cache-control': 'max-age=60', 'x-cache': 'HIT' })
    expect(inm.headers.date).toBeDefined()
    expect((await s.get('/c', { 'if-modified-since': new Date().toUTCString() })).status).toBe(304)
    const changed = await s.get('/c', { 'if-none-match': '"other"' })
    expect(changed).toMatchObject({ status: 200, body: 'v1' })
    expect(s.upstream.count).toBe(1)
  })

  it('fetches the full body on a conditional miss so the entry can be stored', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60', etag: '"e1"' }))
    const first = await s.get('/c', { 'if-none-match': '"e1"' })
    expect(first).toMatchObject({ status: 200, body: 'v1' })
    expect(s.upstream.requests[0].headers['if-none-match']).toBeUndefined()
    expect((await s.get('/c', { 'if-none-match': '"e1"' })).status).toBe(304)
  })

  it('revalidates stale entries with the stored validators: 304 refreshes, 200 replaces', async () => {
    let etag = '"e1"'
    const s = await setup((req, res, n) => {
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, 'cache-control': 'max-age=10' })
        return res.end()
      }
      res.writeHead(200, { etag, 'cache-control': 'max-age=10', 'x-origin': 'yes' })
      res.end(`v${n}`)
    })
    await s.get('/r')
    offset = 20_000
    const revalidated = await s.get('/r')
    expect(revalidated).toMatchObject({ status: 200, body: 'v1' })
    expect(revalidated.headers['x-cache']).toBe('REVALIDATED')
    expect(revalidated.headers['x-origin']).toBe('yes')
    expect(s.upstream.requests[1].headers['if-none-match']).toBe('"e1"')
    expect((await s.get('/r')).headers['x-cache']).toBe('HIT')

    etag = '"e2"'
    offset = 40_000
    const replaced = await s.get('/r')
    expect(replaced).toMatchObject({ status: 200, body: 'v3' })
    expect(replaced.headers['x-cache']).toBe('MISS')
    const hit = await s.get('/r')
    expect(hit).toMatchObject({ body: 'v3' })
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(s.upstream.count).toBe(3)
    expect(s.cache.stats()).toMatchObject({ revalidated: 1 })
  })

  it('revalidates a stale entry for HEAD and stores the refreshed GET response', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=1' }))
    await s.get('/h')
    offset = 5000
    const head = await send(`${s.proxy.origin}/h`, { method: 'HEAD' })
    expect(head).toMatchObject({ status: 200, body: '' })
    expect(s.upstream.requests[1].method).toBe('GET')
    const hit = await s.get('/h')
    expect(hit).toMatchObject({ body: 'v2' })
    expect(hit.headers['x-cache']).toBe('HIT')
  })

  it('revalidates a no-cache response on every use', async () => {
    const s = await setup((req, res, n) => {
      if (req.headers['if-none-match'] === '"n"') {
        res.writeHead(304, { etag: '"n"' })
        return res.end()
      }
      res.writeHead(200, { 'cache-control': 'no-cache', etag: '"n"' })
      res.end(`v${n}`)
    })
    await s.get('/nc')
    for (let i = 0; i < 2; i++) {
      const r = await s.get('/nc')
      expect(r).toMatchObject({ body: 'v1' })
      expect(r.headers['x-cache']).toBe('REVALIDATED')
    }
    expect(s.upstream.count).toBe(3)
  })

  it('normalises Vary values and adds the key hook to the key', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60', vary: 'Accept-Encoding' }), {
      key: (ex) => (ex.request.headers['x-plan'] === 'pro' ? 'pro' : 'free'),
    })
    await s.get('/z', { 'accept-encoding': 'gzip, br' })
    expect((await s.get('/z', { 'accept-encoding': 'BR,gzip' })).headers['x-cache']).toBe('HIT')
    expect((await s.get('/z', { 'accept-encoding': 'identity' })).headers['x-cache']).toBe('MISS')
    expect((await s.get('/z', { 'accept-encoding': 'gzip,br', 'x-plan': 'pro' })).headers['x-cache']).toBe('MISS')
    expect((await s.get('/z', { 'accept-encoding': 'gzip,br', 'x-plan': 'free' })).headers['x-cache']).toBe('HIT')
    expect(s.upstream.count).toBe(3)
  })

  it('honours request no-cache and only-if-cached', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }))
    const none = await s.get('/o', { 'cache-control': 'only-if-cached' })
    expect(none.status).toBe(504)
    expect(JSON.parse(none.body).error.code).toBe('ERR_NOT_CACHED')
    await s.get('/o')
    expect((await s.get('/o', { 'cache-control': 'only-if-cached' })).body).toBe('v1')
    const forced = await s.get('/o', { 'cache-control': 'no-cache' })
    expect(forced.body).toBe('v2')
    expect((await s.get('/o')).body).toBe('v2')
    expect(s.upstream.count).toBe(2)
  })

  it('stale-while-revalidate serves STALE and refreshes once in the background', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup((_req, res, n) => {
      void (n === 1 ? Promise.resolve() : gate).then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', date: new Date(now()).toUTCString() })
        res.end(`v${n}`)
      })
    })
    await s.get('/s')
    offset = 5000
    const stale = await s.get('/s')
    expect(stale).toMatchObject({ body: 'v1' })
    expect(stale.headers['x-cache']).toBe('STALE')
    expect((await s.get('/s')).headers['x-cache']).toBe('STALE') // the refresh is still in flight
    release()
    await s.cache.idle()
    expect(s.upstream.count).toBe(2)
    const fresh = await s.get('/s')
    expect(fresh).toMatchObject({ body: 'v2' })
    expect(fresh.headers['x-cache']).toBe('HIT')
  })

  it('stale-if-error serves STALE on a 5xx and on an unreachable upstream', async () => {
    let mode: 'ok' | '500' | 'reset' = 'ok'
    const s = await setup((_req, res, n) => {
      if (mode === 'reset') return res.socket?.destroy()
      res.writeHead(mode === 'ok' ? 200 : 500, { 'cache-control': 'max-age=1, stale-if-error=60' })
      res.end(`v${n}`)
    })
    await s.get('/e')
    offset = 5000
    mode = '500'
    const on500 = await s.get('/e')
    expect(on500).toMatchObject({ status: 200, body: 'v1' })
    expect(on500.headers['x-cache']).toBe('STALE')
    mode = 'reset'
    const onReset = await s.get('/e')
    expect(onReset).toMatchObject({ status: 200, body: 'v1' })
    expect(onReset.headers['x-cache']).toBe('STALE')
    offset = 120_000 // past the window: the error goes through
    expect((await s.get('/e')).status).toBe(502)
  })

  it('passes 5xx through when the response gives no stale-if-error', async () => {
    let fail = false
    const s = await setup((_req, res, n) => {
      res.writeHead(fail ? 503 : 200, { 'cache-control': 'max-age=1', etag: '"x"' })
      res.end(`v${n}`)
    })
    await s.get('/p')
    offset = 5000
    fail = true
    const failed = await s.get('/p')
    expect(failed).toMatchObject({ status: 503, body: 'v2' })
  })

  it('invalidates the target, Location and Content-Location after a successful unsafe request', async () => {
    const s = await setup((req, res, n) => {
      if (req.method === 'POST') {
        const status = req.url === '/fail' ? 500 : 201
        res.writeHead(status, { location: '/items/1', 'content-location': 'http://elsewhere.example/items/2' })
        return res.end()
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept' })
      res.end(`v${n}`)
    })
    const post = (path: string) => send(s.proxy.origin + path, { method: 'POST', body: 'x' })
    await s.get('/list')
    await s.get('/list', { accept: 'text/html' })
    await s.get('/items/1')
    await s.get('/fail')
    const created = await post('/list')
    expect(created.status).toBe(201)
    expect(created.headers['x-cache']).toBe('BYPASS')
    expect((await s.get('/list')).headers['x-cache']).toBe('MISS')
    expect((await s.get('/list', { accept: 'text/html' })).headers['x-cache']).toBe('MISS')
    expect((await s.get('/items/1')).headers['x-cache']).toBe('MISS')
    expect((await post('/fail')).status).toBe(500)
    expect((await s.get('/fail')).headers['x-cache']).toBe('HIT')
  })

  it('coalesces 100 concurrent identical misses into one upstream request', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup((_req, res, n) => {
      void gate.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.end(`v${n}`)
      })
    })
    const all = Promise.all(Array.from({ length: 100 }, () => s.get('/hot')))
    await until(() => s.cache.stats().coalesced === 99)
    release()
    const responses = await all
    expect(s.upstream.count).toBe(1)
    expect(responses.every((r) => r.status === 200 && r.body === 'v1')).toBe(true)
    expect(responses.filter((r) => r.headers['x-cache'] === 'MISS')).toHaveLength(1)
    expect(responses.filter((r) => r.headers['x-cache'] === 'HIT')).toHaveLength(99)
  })

  it('coalesces concurrent revalidations of a no-cache entry', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup((req, res, n) => {
      void (n === 1 ? Promise.resolve() : gate).then(() => {
        if (req.headers['if-none-match'] === '"n"') {
          res.writeHead(304, { etag: '"n"', date: new Date(now()).toUTCString() })
          return res.end()
        }
        res.writeHead(200, { 'cache-control': 'no-cache', etag: '"n"', date: new Date(now()).toUTCString() })
        res.end(`v${n}`)
      })
    })
    await s.get('/ncc')
    const all = Promise.all(Array.from({ length: 10 }, () => s.get('/ncc')))
    await until(() => s.cache.stats().coalesced === 9)
    release()
    const responses = await all
    expect(responses.every((r) => r.body === 'v1')).toBe(true)
    expect(s.upstream.count).toBe(2)
  })

  it('lets followers go upstream when the leader response is not storable', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup((_req, res, n) => {
      void gate.then(() => {
        res.writeHead(200, { 'cache-control': 'private' })
        res.end(`v${n}`)
      })
    })
    const all = Promise.all(Array.from({ length: 5 }, () => s.get('/p')))
    await until(() => s.cache.stats().coalesced === 4)
    release()
    const bodies = (await all).map((r) => r.body).sort()
    expect(bodies).toEqual(['v1', 'v2', 'v3', 'v4', 'v5'])
    expect(s.upstream.count).toBe(5)
  })

  it('bounds the follower wait by coalesceWaitMs', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup(
      (_req, res, n) => {
        // Only the leader hangs; followers that gave up waiting are answered at once, uncacheable
        // so that each of them reaches the upstream.
        void (n === 1 ? gate : Promise.resolve()).then(() => {
          res.writeHead(200, { 'cache-control': n === 1 ? 'max-age=60' : 'no-store' })
          res.end(`v${n}`)
        })
      },
      { coalesceWaitMs: 1 },
    )
    const leader = s.get('/slow')
    await until(() => s.upstream.count === 1)
    const followers = await Promise.all([s.get('/slow'), s.get('/slow')])
    expect(followers.map((r) => r.body).sort()).toEqual(['v2', 'v3'])
    expect(s.cache.stats().coalesced).toBe(2)
    release()
    expect((await leader).body).toBe('v1')
  })

  it('coalesces nothing when coalesce is false', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup(
      (_req, res, n) => {
        void gate.then(() => {
          res.writeHead(200, { 'cache-control': 'max-age=60' })
          res.end(`v${n}`)
        })
      },
      { coalesce: false },
    )
    const all = Promise.all([s.get('/n'), s.get('/n'), s.get('/n')])
    await until(() => s.upstream.count === 3)
    release()
    await all
    expect(s.cache.stats().coalesced).toBe(0)
  })

  it('neither stores nor holds a response the upstream cuts mid-body (the tap hears onAbort)', async () => {
    const s = await setup(
      (_req, res, n) => {
        if (n > 1) {
          res.writeHead(200, { 'cache-control': 'max-age=60' })
          return res.end(`v${n}`)
        }
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '10' })
        res.write('abc', () => res.socket?.destroy())
      },
      // Without onAbort the cut leader would hold the next request for this bound, then count a timeout.
      { coalesceBodyWaitMs: 100 },
    )
    const cut = await open(s.proxy.origin + '/cut')
    let got = ''
    cut.on('data', (c: Buffer) => (got += c))
    cut.on('error', () => {})
    await new Promise((resolve) => cut.once('close', resolve))
    expect(cut.complete).toBe(false) // the client sees the cut, never a clean end
    expect(got.length).toBeLessThan(10)
    const next = await s.get('/cut')
    expect(next).toMatchObject({ status: 200, body: 'v2' })
    expect(next.headers['x-cache']).toBe('MISS')
    await s.cache.idle()
    expect(s.cache.stats()).toMatchObject({ stores: 1, coalesced: 0, coalesceTimeouts: 0 })
  })

  it('streams bodies over maxObjectBytes through uncached, without holding them back', async () => {
    let finish!: () => void
    const finished = new Promise<void>((r) => (finish = r))
    let upstreamDone = false
    const s = await setup(
      (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.write(Buffer.alloc(4096, 'a'))
        void finished.then(() => {
          upstreamDone = true
          res.end(Buffer.alloc(4096, 'b'))
        })
      },
      { maxObjectBytes: 1024 },
    )
    const res = await open(`${s.proxy.origin}/big`)
    expect(res.headers['x-cache']).toBe('MISS')
    let received = 0
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (received === 0) {
        expect(upstreamDone).toBe(false) // the first bytes arrived while the upstream was still sending
        finish()
      }
      received += chunk.length
    }
    expect(received).toBe(8192)
    const second = open(`${s.proxy.origin}/big`)
    const again = await second
    again.resume()
    expect(again.headers['x-cache']).toBe('MISS')
    await new Promise((r) => again.on('end', r))
    expect(s.upstream.count).toBe(2)
    expect(s.cache.stats().stores).toBe(0)
  })

  it('skips bodies whose Content-Length exceeds maxObjectBytes', async () => {
    const s = await setup(
      (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '2048' })
        res.end(Buffer.alloc(2048))
      },
      { maxObjectBytes: 1024 },
    )
    expect((await s.get('/cl')).body).toHaveLength(2048)
    expect((await s.get('/cl')).headers['x-cache']).toBe('MISS')
  })

  it('purges one URL or a prefix', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60', vary: 'Accept' }))
    const base = `http://${new URL(s.proxy.origin).host}`
    await s.get('/u/1')
    await s.get('/u/2')
    await s.get('/other')
    expect(await s.cache.purge(`${base}/u/1`)).toBe(true)
    expect((await s.get('/u/1')).headers['x-cache']).toBe('MISS')
    expect(await s.cache.purgePrefix(`${base}/u/`)).toBeGreaterThan(0)
    expect((await s.get('/u/2')).headers['x-cache']).toBe('MISS')
    expect((await s.get('/other')).headers['x-cache']).toBe('HIT')
  })

  it('sends RFC 9211 Cache-Status when asked', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }), { statusHeader: 'both' })
    expect((await s.get('/cs')).headers['cache-status']).toBe('switchboard; fwd=uri-miss')
    const hit = await s.get('/cs')
    expect(hit.headers['cache-status']).toMatch(/^switchboard; hit; ttl=\d+$/)
    expect(hit.headers['x-cache']).toBe('HIT')
  })

  it('rejects bad options by name', () => {
    expect(() => cache({ maxObjectBytes: -1, store: memoryStore() })).toThrow(/maxObjectBytes/)
    expect(() => cache({ ttlMs: Number.NaN, store: memoryStore() })).toThrow(/ttlMs/)
    expect(() => cache({ statusHeader: 'nope' as 'x-cache', store: memoryStore() })).toThrow(/statusHeader/)
  })
})

describe('instances sharing one store', () => {
  async function twoInstances(store: Store): Promise<{ upstream: Upstream; a: Harness; b: Harness; cacheA: HttpCache }> {
    const upstream = await startUpstream(dated(reply({ 'cache-control': 'max-age=60' })))
    cleanups.push(() => upstream.close())
    const cacheA = createHttpCache({ store, now })
    const a = await startHarness([cacheA.middleware()], () => upstream.origin)
    cleanups.push(() => a.close())
    const b = await startHarness([cache({ store, now })], () => upstream.origin)
    cleanups.push(() => b.close())
    return { upstream, a, b, cacheA }
  }

  it('shares hits through a memory store', async () => {
    const { upstream, a, b, cacheA } = await twoInstances(memoryStore())
    // Same Host header on both, as behind one load balancer.
    const host = { host: 'api.test' }
    expect((await send(`${a.origin}/x`, { headers: host })).headers['x-cache']).toBe('MISS')
    await cacheA.idle()
    const fromB = await send(`${b.origin}/x`, { headers: host })
    expect(fromB).toMatchObject({ body: 'v1' })
    expect(fromB.headers['x-cache']).toBe('HIT')
    expect(upstream.count).toBe(1)
  })

  it.skipIf(!process.env.CI && !redisServerInstalled())('shares hits through Redis', async () => { // skipped only when redis-server is not installed locally; CI installs it
    const store = await redisStore()
    const { upstream, a, b, cacheA } = await twoInstances(store)
    const host = { host: 'api.test' }
    await send(`${a.origin}/x`, { headers: host })
    await cacheA.idle() // the write to Redis may still be in flight when the client has its response
    const fromB = await send(`${b.origin}/x`, { headers: host })
    expect(fromB).toMatchObject({ body: 'v1' })
    expect(fromB.headers['x-cache']).toBe('HIT')
    expect(upstream.count).toBe(1)
  })

  it.skipIf(!process.env.CI && !redisServerInstalled())('coalesces over a Redis store: followers wait for the write', async () => { // skipped only when redis-server is not installed locally; CI installs it
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = await setup(
      (_req, res, n) => {
        void gate.then(() => {
          res.writeHead(200, { 'cache-control': 'max-age=60' })
          res.end(`v${n}`)
        })
      },
      { store: await redisStore() },
    )
    const all = Promise.all(Array.from({ length: 20 }, () => s.get('/hot')))
    await until(() => s.cache.stats().coalesced === 19)
    release()
    const responses = await all
    expect(responses.every((r) => r.body === 'v1')).toBe(true)
    expect(s.upstream.count).toBe(1)
  })
})

/** A Redis store on a throwaway redis-server, both closed after the test. */
async function redisStore(): Promise<Store> {
  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const store = await createStore(`${redis.url}?keyPrefix=cache-test:`)
  cleanups.push(() => store.close())
  return store
}

/** A raw HTTP/1.1 exchange on its own socket: for Host values an HTTP client would not send. */
function rawGet(origin: string, path: string, host: string): Promise<{ status: number; head: string; body: string }> {
  const { port } = new URL(origin)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    })
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const split = text.indexOf('\r\n\r\n')
      const head = text.slice(0, split).toLowerCase()
      let body = text.slice(split + 4)
      if (/\r\ntransfer-encoding: chunked/.test(head)) body = dechunk(body)
      resolve({ status: Number(head.split(' ')[1]), head, body })
    })
  })
}

function dechunk(text: string): string {
  let out = ''
  for (let at = 0; ; ) {
    const eol = text.indexOf('\r\n', at)
    const size = Number.parseInt(text.slice(at, eol), 16)
    if (!(size > 0)) return out
    out += text.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

describe('coalescing with a stalled leader (hardening item 20)', () => {
  it('defaults: 1 s for the leader head, 1 s for its stored entry after the head', () => {
    expect(DEFAULT_COALESCE_WAIT_MS).toBe(1_000)
    expect(DEFAULT_COALESCE_BODY_WAIT_MS).toBe(1_000)
    expect(() => cache({ coalesceBodyWaitMs: -1, store: memoryStore() })).toThrow(/coalesceBodyWaitMs/)
  })

  it('followers do not wait for a leader client that never reads its body', async () => {
    const big = Buffer.alloc(24 << 20, 'a') // far more than the loopback socket buffers hold
    const s = await setup(
      (_req, res, n) => {
        if (n === 1) {
          res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(big.length) })
          return res.end(big)
        }
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.end(`v${n}`)
      },
      // A head wait longer than the test timeout: only the body bound can release the followers.
      { maxObjectBytes: 64 << 20, coalesceWaitMs: 60_000, coalesceBodyWaitMs: 50 },
    )
    const { port } = new URL(s.proxy.origin)
    const leader = net.connect(Number(port), '127.0.0.1')
    cleanups.push(async () => void leader.destroy())
    leader.on('error', () => {})
    leader.pause() // never reads: the proxy's writes to it stall once the socket buffers are full
    leader.write(`GET /big HTTP/1.1\r\nHost: ${new URL(s.proxy.origin).host}\r\n\r\n`)
    await until(() => s.upstream.count === 1)
    const followers = await Promise.all([s.get('/big'), s.get('/big')])
    expect(followers.map((r) => r.status)).toEqual([200, 200])
    // Each follower gave up on the stalled leader and got a fresh answer: its own upstream fetch
    // (v2, v3), or, when the other follower's answer was stored a moment before its own wait
    // ended, that stored answer (v2, v2). Never the leader's body.
    for (const r of followers) expect(r.body).toMatch(/^v[23]$/)
    expect(s.upstream.count).toBeGreaterThanOrEqual(2)
    expect(s.cache.stats().coalesced).toBeGreaterThanOrEqual(2)
    expect(s.cache.stats().coalesceTimeouts).toBeGreaterThanOrEqual(1)
    // Premise: the leader's client is still stalled, so its entry could not have been complete.
    expect(leader.bytesRead).toBeLessThan(big.length)
  })

  it('followers go upstream when the leader gets no response head within coalesceWaitMs', async () => {
    const s = await setup(
      (_req, res, n) => {
        if (n === 1) return // the leader's upstream never answers (closed in afterEach)
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.end(`v${n}`)
      },
      { coalesceWaitMs: 20 },
    )
    const leader = s.get('/hang').catch(() => undefined)
    await until(() => s.upstream.count === 1)
    const first = await s.get('/hang')
    expect(first).toMatchObject({ status: 200, body: 'v2' })
    // The follower that gave up led its own request and stored it: later requests hit.
    const later = await s.get('/hang')
    expect(later).toMatchObject({ body: 'v2' })
    expect(later.headers['x-cache']).toBe('HIT')
    expect(s.cache.stats().coalesceTimeouts).toBe(1)
    void leader
  })
})

describe('RFC 9111 corner cases (hardening item 21)', () => {
  it('§5.1: Age "10, 20" counts as 10; an invalid Age is ignored', async () => {
    const s = await setup(reply((req): Record<string, string> => ({ 'cache-control': 'max-age=15', age: req.url === '/list' ? '10, 20' : '-1' })))
    await s.get('/list')
    await s.get('/neg')
    expect((await s.get('/list')).headers['x-cache']).toBe('HIT') // with 20 it would be stale already
    const neg = await s.get('/neg')
    expect(neg.headers['x-cache']).toBe('HIT')
    expect(Number(neg.headers.age)).toBeLessThan(10)
    offset = 6000 // 10 + 6 > 15: stale
    expect((await s.get('/list')).headers['x-cache']).toBe('MISS')
    expect((await s.get('/neg')).headers['x-cache']).toBe('HIT')
  })

  it('§5.2.2.2 / §5.2.2.8 / §5.2.2.10: stale must-revalidate, proxy-revalidate, s-maxage give 504 when the upstream is unreachable, even with stale-if-error', async () => {
    let down = false
    const directives: Record<string, string> = {
      '/mr': 'max-age=1, must-revalidate, stale-if-error=600',
      '/pr': 'max-age=1, proxy-revalidate, stale-if-error=600',
      '/sm': 's-maxage=1, stale-if-error=600',
      '/plain': 'max-age=1, stale-if-error=600',
    }
    const s = await setup((req, res, n) => {
      if (down) return res.socket?.destroy()
      res.writeHead(200, { 'cache-control': directives[req.url ?? ''] ?? 'no-store' })
      res.end(`v${n}`)
    })
    for (const path of Object.keys(directives)) await s.get(path)
    offset = 5000
    down = true
    for (const path of ['/mr', '/pr', '/sm']) {
      const r = await s.get(path, { 'cache-control': 'max-stale=600' })
      expect(r.status, path).toBe(504)
      expect(JSON.parse(r.body).error.code).toBe('ERR_MUST_REVALIDATE')
    }
    // The control: without those directives stale-if-error does serve the stale copy.
    const plain = await s.get('/plain')
    expect(plain).toMatchObject({ status: 200, body: 'v4' })
    expect(plain.headers['x-cache']).toBe('STALE')
  })

  it('§5.2.2.4: a stored no-cache response is never served unvalidated, not even with stale-if-error or max-stale', async () => {
    let down = false
    const s = await setup((_req, res, n) => {
      if (down) return res.socket?.destroy()
      res.writeHead(200, { 'cache-control': 'no-cache, max-age=600, stale-if-error=600', etag: '"n"' })
      res.end(`v${n}`)
    })
    await s.get('/nc')
    down = true
    expect((await s.get('/nc')).status).toBe(502)
    expect((await s.get('/nc', { 'cache-control': 'max-stale' })).status).toBe(502)
    expect(s.cache.stats().hits).toBe(0)
  })

  it('§5.2.2.3: must-understand stores understood statuses (ignoring no-store) and never unknown ones', async () => {
    const s = await setup((req, res, n) => {
      const unknown = req.url === '/unknown'
      res.writeHead(unknown ? 299 : 200, { 'cache-control': unknown ? 'must-understand, max-age=60' : 'must-understand, no-store, max-age=60' })
      res.end(`v${n}`)
    })
    await s.get('/known')
    expect((await s.get('/known')).headers['x-cache']).toBe('HIT')
    expect((await s.get('/unknown')).status).toBe(299)
    expect((await s.get('/unknown')).headers['x-cache']).toBe('MISS')
    expect(s.upstream.count).toBe(3)
  })

  it('§3.2 / §4.3.4: a 304 updates stored fields except Content-Length, Content-Encoding, Content-Range and proxy fields', async () => {
    const store = memoryStore()
    const s = await setup(
      (req, res, n) => {
        if (req.headers['if-none-match'] === '"e"') {
          res.writeHead(304, {
            etag: '"e"',
            'cache-control': 'max-age=60',
            'x-version': '2',
            'content-type': 'text/html',
            'content-length': '999',
            'content-encoding': 'br',
            'proxy-authenticate': 'Basic realm="p"',
          })
          return res.end()
        }
        res.writeHead(200, { etag: '"e"', 'cache-control': 'max-age=1', 'x-version': '1', 'content-type': 'text/plain', 'content-encoding': 'gzip' })
        res.end(`v${n}`)
      },
      { store },
    )
    await s.get('/u')
    offset = 5000
    const revalidated = await s.get('/u')
    expect(revalidated.headers['x-cache']).toBe('REVALIDATED')
    expect(revalidated.headers).toMatchObject({ 'x-version': '2', 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': '2' })
    expect(revalidated.headers['proxy-authenticate']).toBeUndefined()
    const stored = decodeRecord(await store.get(`cache:http://${new URL(s.proxy.origin).host}/u`))
    expect(stored?.kind).toBe('entry')
    if (stored?.kind !== 'entry') return
    expect(stored.headers['content-length']).toBeUndefined() // the 304's 999 never lands
    expect(stored.headers).toMatchObject({ 'x-version': '2', 'content-type': 'text/html', 'content-encoding': 'gzip', 'cache-control': 'max-age=60' })
    expect(stored.headers['proxy-authenticate']).toBeUndefined()
    expect(new TextDecoder().decode(stored.body)).toBe('v1')
    const hit = await s.get('/u')
    expect(hit).toMatchObject({ body: 'v1' })
    expect(hit.headers['x-cache']).toBe('HIT')
  })

  it('§3.3 / §3.4: Range requests go upstream untouched, and 206 responses are never stored', async () => {
    const s = await setup((req, res, n) => {
      if (req.headers.range === 'bytes=0-0') {
        res.writeHead(206, { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-0/2' })
        return res.end('v')
      }
      res.writeHead(req.url === '/odd' ? 206 : 200, { 'cache-control': 'max-age=60' })
      res.end(`v${n}`)
    })
    const partial = await s.get('/r', { range: 'bytes=0-0' })
    expect(partial).toMatchObject({ status: 206, body: 'v' })
    expect(partial.headers['x-cache']).toBe('BYPASS')
    expect(s.upstream.requests[0].headers.range).toBe('bytes=0-0')
    expect((await s.get('/r')).headers['x-cache']).toBe('MISS') // the 206 was not stored
    expect((await s.get('/r')).headers['x-cache']).toBe('HIT')
    // A stored 200 does not answer a Range request either: it goes upstream with its Range.
    expect((await s.get('/r', { range: 'bytes=0-0' })).status).toBe(206)
    expect(s.upstream.requests.at(-1)?.headers.range).toBe('bytes=0-0')
    // A 206 to a request without Range is not stored.
    await s.get('/odd')
    expect((await s.get('/odd')).headers['x-cache']).toBe('MISS')
    expect(s.upstream.count).toBe(5)
  })
})

describe('Set-Cookie (storeSetCookie)', () => {
  const cookie = reply({ 'cache-control': 'max-age=60', 'set-cookie': 'sid=1; Path=/' })

  it("'never' (default): a response with Set-Cookie is not stored", async () => {
    const s = await setup(cookie)
    const first = await s.get('/c')
    expect(first.headers['set-cookie']).toEqual(['sid=1; Path=/'])
    const second = await s.get('/c')
    expect(second).toMatchObject({ body: 'v2' })
    expect(second.headers['x-cache']).toBe('MISS')
    expect(s.cache.stats().stores).toBe(0)
  })

  it("'strip': stored without Set-Cookie; the first client still receives it", async () => {
    const store = memoryStore()
    const s = await setup(cookie, { storeSetCookie: 'strip', store })
    const first = await s.get('/c')
    expect(first.headers['set-cookie']).toEqual(['sid=1; Path=/'])
    const hit = await s.get('/c')
    expect(hit).toMatchObject({ body: 'v1' })
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers['set-cookie']).toBeUndefined()
    const stored = decodeRecord(await store.get(`cache:http://${new URL(s.proxy.origin).host}/c`))
    expect(stored?.kind).toBe('entry')
    if (stored?.kind === 'entry') expect(stored.headers['set-cookie']).toBeUndefined()
    expect(() => cache({ storeSetCookie: 'always' as 'never', store: memoryStore() })).toThrow(/storeSetCookie/)
  })

  it("'strip' still refuses what is unstorable for other reasons", async () => {
    const s = await setup(reply({ 'cache-control': 'private, max-age=60', 'set-cookie': 'sid=1' }), { storeSetCookie: 'strip' })
    await s.get('/p')
    expect((await s.get('/p')).headers['x-cache']).toBe('MISS')
  })
})

describe('cache key from a normalised Host (hardening item 10)', () => {
  it('a Host with "/" bypasses the cache and can never hit another URL\'s entry', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }))
    const stored = await rawGet(s.proxy.origin, '/cache/x', 'localhost:8080')
    expect(stored.body).toBe('v1')
    const smuggled = await rawGet(s.proxy.origin, '/x', 'localhost:8080/cache')
    expect(smuggled.body).toBe('v2')
    expect(smuggled.head).toContain('x-cache: bypass')
    // And in the other order: nothing the bad Host fetched was stored under any key.
    await rawGet(s.proxy.origin, '/y', 'localhost:8080/cache')
    expect((await rawGet(s.proxy.origin, '/cache/y', 'localhost:8080')).body).toBe('v4')
    expect(s.cache.stats().stores).toBe(2)
  })

  it('a lowercased Host without its default port shares the entry', async () => {
    const s = await setup(reply({ 'cache-control': 'max-age=60' }))
    await rawGet(s.proxy.origin, '/n', 'Api.Test:80')
    const hit = await rawGet(s.proxy.origin, '/n', 'api.test')
    expect(hit.body).toBe('v1')
    expect(hit.head).toContain('x-cache: hit')
    expect(await s.cache.purge('http://API.test:80/n')).toBe(true)
    expect((await rawGet(s.proxy.origin, '/n', 'api.test')).body).toBe('v2')
  })
})

describe('invalid upstream statuses on the revalidation path (hardening)', () => {
  it('a revalidation answered with status 600 is neither stored nor served: 502, or stale-if-error', async () => {
    const s = await setup((req, res, n) => {
      if (req.headers['if-none-match'] !== undefined) {
        // Written by hand: node:http refuses to send such a status line itself.
        res.socket?.end('HTTP/1.1 600 Odd\r\ncontent-length: 2\r\ncache-control: max-age=60\r\n\r\nzz')
        return
      }
      res.writeHead(200, { 'cache-control': req.url === '/sie' ? 'max-age=1, stale-if-error=60' : 'max-age=1', etag: '"a"' })
      res.end(`v${n}`)
    })
    await s.get('/bad')
    offset = 5000
    const bad = await s.get('/bad')
    expect(bad.status).toBe(502)
    expect(bad.body).not.toContain('zz')
    expect(s.cache.stats().stores).toBe(1)
    offset = 0
    await s.get('/sie')
    offset = 5000
    const stale = await s.get('/sie')
    expect(stale).toMatchObject({ status: 200, body: 'v3' })
    expect(stale.headers['x-cache']).toBe('STALE')
  })

  it('in process: statuses 0, 99, 101, 600 and 1000 from fetchUpstream never reach the store or the client', async () => {
    for (const status of [0, 99, 101, 600, 1000]) {
      const store = memoryStore()
      const httpCache = createHttpCache({ store, now })
      const mw = httpCache.middleware()
      const first = fakeExchange({ status: 200, headers: { 'cache-control': 'max-age=1', etag: '"a"' }, body: 'v1' })
      await mw(first.ex, async () => first.proxy())
      offset = 5000
      const again = fakeExchange({ status, headers: { 'cache-control': 'max-age=60' }, body: 'zz' })
      await expect(mw(again.ex, async () => again.proxy())).rejects.toMatchObject({ status: 502 })
      expect(again.responses).toEqual([])
      expect(again.cancelled).toBe(true)
      await httpCache.idle()
      const record = decodeRecord(await store.get('cache:http://gw/r'))
      expect(record?.kind === 'entry' && new TextDecoder().decode(record.body)).toBe('v1')
      offset = 0
    }
  })
})

/** An in-process exchange (the core test kit) whose upstream answers `reply`, beside the real-socket tests above. */
function fakeExchange(reply: { status: number; headers: Record<string, string>; body: string }) {
  const responses: number[] = []
  const state = { cancelled: false }
  const bytes = new TextEncoder().encode(reply.body)
  const ex = createTestExchange({
    target: '/r',
    headers: { host: 'gw' },
    upstream: () => ({
      status: reply.status,
      headers: { date: new Date(now()).toUTCString(), ...reply.headers },
      body: (async function* () {
        yield bytes
      })(),
      cancel: () => void (state.cancelled = true),
    }),
    onRespond: async (status, _headers, body) => {
      responses.push(status)
      for await (const chunk of body) void chunk
    },
  })
  return {
    ex,
    responses,
    get cancelled() {
      return state.cancelled
    },
    proxy: () => ex.deliver({ status: reply.status, headers: { date: new Date(now()).toUTCString(), ...reply.headers }, body: bytes }),
  }
}
