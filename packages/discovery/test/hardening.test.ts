// Hardening items 11-13 (remembered routes across identities, state-changing requests, bounded
// growth) over real upstreams and a real proxy on 127.0.0.1:0.
import { afterEach, describe, expect, it } from 'vitest'
import { encodeJson, encodeText, type Exchange, type Store, type UpstreamResponse } from '@switchboard/core'
import { memoryStore } from '@switchboard/store'
import {
  createDiscovery,
  payloadHash,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryOptions,
  type DiscoveryTransport,
} from '../src/index.ts'
import {
  answer,
  createTestTransport,
  deadOrigin,
  send,
  startProxy,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from './harness.ts'
import { useDiscoverySetup } from './fixtures.ts'

const { cleanups, setup } = useDiscoverySetup()

const counts = (upstreams: Upstream[]): number[] => upstreams.map((u) => u.count)

/** Answers 200 only when `header` has `value`, else 404. */
const servesOnly =
  (header: string, value: string, body: string): UpstreamHandler =>
  (req, res) => {
    const ok = req.headers[header] === value
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' })
    res.end(ok ? body : 'not here')
  }

/** A Store that counts writes, delegating to a memory store. */
function countingStore(): Store & { sets: number } {
  const inner = memoryStore()
  const store = {
    name: 'counting',
    sets: 0,
    get: (key: string) => inner.get(key),
    set: (key: string, value: Uint8Array, options?: { ttlMs?: number }) => {
      store.sets++
      return inner.set(key, value, options)
    },
    setIfAbsent: inner.setIfAbsent.bind(inner),
    compareAndSet: inner.compareAndSet.bind(inner),
    delete: (key: string) => inner.delete(key),
    increment: inner.increment.bind(inner),
    keys: (prefix: string, options?: { limit?: number }) => inner.keys(prefix, options),
    clear: (prefix?: string) => inner.clear(prefix),
    close: () => inner.close(),
  }
  return store
}

describe('remembered routes across identities (item 11)', () => {
  it('keyHeaders gives each identity its own route, keyed by a hash of the value', async () => {
    const s = await setup([servesOnly('x-tenant', 'tenant-alpha', 'A'), servesOnly('x-tenant', 'tenant-beta', 'B')], {
      keyHeaders: ['X-Tenant'],
    })
    const as = (tenant: string) => send(s.url('/orders'), { headers: { 'x-tenant': tenant } })
    expect((await as('tenant-alpha')).body).toBe('A')
    expect((await as('tenant-beta')).body).toBe('B')
    expect(counts(s.upstreams)).toEqual([2, 1])
    for (let i = 0; i < 2; i++) {
      const a = await as('tenant-alpha')
      expect([a.body, a.headers['x-switchboard-discovery']]).toEqual(['A', 'hit'])
      const b = await as('tenant-beta')
      expect([b.body, b.headers['x-switchboard-discovery']]).toEqual(['B', 'hit'])
    }
    // Each identity went straight to its own endpoint: no cross-identity churn.
    expect(counts(s.upstreams)).toEqual([4, 3])
    expect(s.events.filter((e) => e.type === 'forgotten')).toEqual([])
    const routes = await s.discovery.list()
    expect(routes).toHaveLength(2)
    for (const r of routes) expect(r.key).toMatch(/^GET \/orders #[0-9a-f]{64} @[0-9a-f]{64}$/)
    expect(routes.some((r) => r.key.includes('tenant'))).toBe(false)
  })

  it('without keyHeaders one identity\'s route is used for the other (why the option exists)', async () => {
    const s = await setup([servesOnly('x-tenant', 'tenant-alpha', 'A'), servesOnly('x-tenant', 'tenant-beta', 'B')])
    await send(s.url('/orders'), { headers: { 'x-tenant': 'tenant-alpha' } })
    await send(s.url('/orders'), { headers: { 'x-tenant': 'tenant-beta' } })
    expect(s.events.filter((e) => e.type === 'forgotten')).toHaveLength(1)
  })

  it('an absent key header is keyed apart from an empty one, and the secret never reaches the key', async () => {
    const s = await setup([answer(404), answer(200, 'ok')], { keyHeaders: ['authorization'] })
    await send(s.url('/me'))
    await send(s.url('/me'), { headers: { authorization: '' } })
    await send(s.url('/me'), { headers: { authorization: 'Bearer secret-token' } })
    const keys = (await s.discovery.list()).map((r) => r.key)
    expect(new Set(keys).size).toBe(3)
    expect(keys.some((k) => k.includes('secret'))).toBe(false)
  })

  it('a 401 from the first endpoint ends the search, reaches the client and is not remembered', async () => {
    const guarded: UpstreamHandler = (req, res) => {
      const ok = req.headers.authorization === 'Bearer good'
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
      res.end(ok ? 'your profile' : 'log in first')
    }
    const s = await setup([guarded, answer(200, 'catch-all')])
    const probe = await send(s.url('/profile'))
    expect([probe.status, probe.body, probe.headers['www-authenticate']]).toEqual([401, 'log in first', 'Bearer'])
    expect(counts(s.upstreams)).toEqual([1, 0])
    expect(await s.discovery.list()).toEqual([])
    // The authenticated request is not pinned to the catch-all.
    const real = await send(s.url('/profile'), { headers: { authorization: 'Bearer good' } })
    expect([real.status, real.body]).toEqual([200, 'your profile'])
    expect(counts(s.upstreams)).toEqual([2, 0])
    expect((await s.discovery.list()).map((r) => r.endpoint)).toEqual([s.upstreams[0].origin])
  })

  it('a 403 ends the search too, even after a 404, and even when successStatuses lists it', async () => {
    const s = await setup([answer(404, 'a'), answer(403, 'forbidden'), answer(200, 'c')], { successStatuses: ['2xx', 403] })
    const res = await send(s.url('/admin'))
    expect([res.status, res.body]).toEqual([403, 'forbidden'])
    expect(counts(s.upstreams)).toEqual([1, 1, 0])
    expect(await s.discovery.list()).toEqual([])
    expect(s.discovery.stats()).toMatchObject({ remembered: 0, probes: 2 })
  })

  it('a remembered endpoint answering 401 passes it through and keeps the route', async () => {
    const s = await setup([answer(404), answer(200, 'b'), answer(200, 'c')])
    await send(s.url('/doc'))
    s.upstreams[1].handle(answer(401, 'expired'))
    const res = await send(s.url('/doc'))
    expect([res.status, res.body, res.headers['x-switchboard-discovery']]).toEqual([401, 'expired', 'hit'])
    expect(counts(s.upstreams)).toEqual([1, 2, 0])
    expect((await s.discovery.list()).map((r) => r.endpoint)).toEqual([s.upstreams[1].origin])
    expect(s.events.at(-1)).toEqual({ type: 'hit', key: expect.stringMatching(/^GET \/doc #/), endpoint: s.upstreams[1].origin, reason: 'status 401' })
  })
})

describe('state-changing requests (item 12)', () => {
  it('a POST answered 201 by the first endpoint is not replayed, even with replay: all', async () => {
    for (const replay of ['idempotent', 'all'] as const) {
      const s = await setup([answer(201, 'created'), answer(404, 'no')], { replay })
      const res = await send(s.url('/items'), { method: 'POST', body: '{"name":"x"}' })
      expect([res.status, res.body]).toEqual([201, 'created'])
      expect(counts(s.upstreams)).toEqual([1, 0])
    }
  })

  it('a POST goes to the first endpoint only and its answer is returned, whatever it is', async () => {
    const s = await setup([answer(404, 'a'), answer(200, 'b')])
    const res = await send(s.url('/items'), { method: 'POST', body: 'x' })
    expect([res.status, res.body]).toEqual([404, 'a'])
    expect(counts(s.upstreams)).toEqual([1, 0])
    expect(await s.discovery.list()).toEqual([])
    expect(s.discovery.stats()).toMatchObject({ misses: 1, probes: 1 })
  })

  it('a PATCH whose first endpoint is unreachable fails 502 without trying the next, and reports it', async () => {
    const s = await setup(['dead', answer(200, 'b')])
    const res = await send(s.url('/items/1'), { method: 'PATCH', body: 'x' })
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body).error.code).toBe('ERR_BAD_GATEWAY')
    expect(counts(s.upstreams)).toEqual([0])
    expect(s.events).toEqual([{ type: 'probed', key: expect.stringMatching(/^PATCH \/items\/1 #/), endpoint: s.endpoints[0], reason: 'ERR_BAD_GATEWAY' }])
  })

  it('a POST with a remembered route goes only there; when it fails, that answer is returned and the route forgotten', async () => {
    const s = await setup([answer(200, 'a'), answer(200, 'b')])
    const body = '{"job":1}'
    // Remembered earlier (say by an instance with replay: all); key format `METHOD path #sha256(body)`.
    await s.store.set(`routes:POST /jobs #${await payloadHash(encodeText(body))}`, encodeJson({ endpoint: s.upstreams[1].origin }))
    const hit = await send(s.url('/jobs'), { method: 'POST', body })
    expect([hit.body, hit.headers['x-switchboard-discovery']]).toEqual(['b', 'hit'])
    s.upstreams[1].handle(answer(500, 'b broke'))
    const failed = await send(s.url('/jobs'), { method: 'POST', body })
    expect([failed.status, failed.body]).toEqual([500, 'b broke'])
    expect(counts(s.upstreams)).toEqual([0, 2])
    expect(await s.discovery.list()).toEqual([])
  })

  it('replay: all probes POSTs in order (the SingleEndpointRouter behaviour)', async () => {
    const s = await setup([answer(404, 'a'), answer(200, 'b')], { replay: 'all' })
    const res = await send(s.url('/items'), { method: 'POST', body: 'x' })
    expect(res.body).toBe('b')
    expect(counts(s.upstreams)).toEqual([1, 1])
  })

  it('idempotent methods (PUT, DELETE, OPTIONS, HEAD) are probed by default', async () => {
    const s = await setup([answer(404, 'a'), answer(200, 'b')])
    for (const method of ['PUT', 'DELETE', 'OPTIONS', 'HEAD']) {
      const res = await send(s.url('/thing'), { method, body: method === 'PUT' ? 'x' : undefined })
      expect(res.status).toBe(200)
    }
    expect(counts(s.upstreams)).toEqual([4, 4])
  })

  it('rejects bad successStatuses and replay, naming the option', () => {
    const base = { endpoints: ['http://127.0.0.1:1'], store: memoryStore(), transport: { send: () => Promise.reject(new Error('unused')) } }
    expect(() => createDiscovery({ ...base, successStatuses: [] })).toThrow('discovery.successStatuses must be a non-empty list')
    expect(() => createDiscovery({ ...base, successStatuses: [200, '6xx' as never] })).toThrow('discovery.successStatuses[1]')
    expect(() => createDiscovery({ ...base, successStatuses: [99] })).toThrow('discovery.successStatuses[0]')
    expect(() => createDiscovery({ ...base, replay: 'some' as never })).toThrow('discovery.replay')
    expect(() => createDiscovery({ ...base, keyHeaders: ['bad header'] })).toThrow('discovery.keyHeaders[0]')
    expect(() => createDiscovery({ ...base, keyQuery: 'yes' as never })).toThrow('discovery.keyQuery')
    expect(() => createDiscovery({ ...base, maxEntries: 0 })).toThrow('discovery.maxEntries must be a positive integer')
    expect(() => createDiscovery({ ...base, successStatuses: [200, '3XX' as never], keyHeaders: ['constructor', '__proto__'] })).not.toThrow()
  })
})

describe('bounded growth (item 13)', () => {
  it('unique query strings from one client make one route by default', async () => {
    const s = await setup([answer(404), answer(200)])
    for (let i = 0; i < 40; i++) await send(s.url(`/search?q=${i}`))
    expect(await s.store.keys('routes:')).toHaveLength(1)
    expect(counts(s.upstreams)).toEqual([1, 40])
    expect(s.upstreams[1].requests.at(-1)?.url).toBe('/search?q=39')
  })

  it('maxEntries bounds the routes one instance holds in the store', async () => {
    const s = await setup([answer(404), answer(200)], { maxEntries: 5 })
    for (let i = 0; i < 40; i++) await send(s.url(`/p${i}`))
    const keys = await s.store.keys('routes:')
    expect(keys).toHaveLength(5)
    expect(keys.map((k) => k.split(' ')[1]).sort()).toEqual(['/p35', '/p36', '/p37', '/p38', '/p39'])
    expect(s.discovery.stats()).toMatchObject({ remembered: 40, evicted: 35 })
    expect(s.events.filter((e) => e.type === 'forgotten' && e.reason === 'evicted')).toHaveLength(35)
  })

  it('evicts the least recently used route: a hit refreshes it without writing to the store', async () => {
    const store = countingStore()
    const s = await setup([answer(404), answer(200)], { maxEntries: 2, store })
    await send(s.url('/a'))
    await send(s.url('/b'))
    expect(store.sets).toBe(2)
    expect((await send(s.url('/a'))).headers['x-switchboard-discovery']).toBe('hit')
    expect(store.sets).toBe(2) // hits do not write
    await send(s.url('/c'))
    expect((await s.store.keys('routes:')).map((k) => k.split(' ')[1]).sort()).toEqual(['/a', '/c'])
  })

  it('forget() and clear() free their slots in the index', async () => {
    const s = await setup([answer(404), answer(200)], { maxEntries: 2 })
    await send(s.url('/a'))
    await send(s.url('/b'))
    expect(await s.discovery.clear()).toBe(2)
    await send(s.url('/c'))
    await send(s.url('/d'))
    expect(s.discovery.stats().evicted).toBe(0)
    expect(await s.discovery.forget('GET /c')).toBe(1)
    await send(s.url('/e'))
    expect(s.discovery.stats().evicted).toBe(0)
    expect((await s.store.keys('routes:')).map((k) => k.split(' ')[1]).sort()).toEqual(['/d', '/e'])
  })
})

describe('probes and body replay (item 4)', () => {
  it('every endpoint receives the same buffered bytes, never the client stream', async () => {
    const real = createTestTransport()
    cleanups.push(() => real.close())
    const bodies: (Uint8Array | undefined)[] = []
    const spy: DiscoveryTransport = {
      send(ex, url, body): Promise<UpstreamResponse> {
        bodies.push(body)
        return real.send(ex, url, body)
      },
    }
    const s = await setup([answer(404), 'dead', answer(200, 'ok')], { transport: spy, maxBodyBytes: 64 })
    const res = await send(s.url('/put'), { method: 'PUT', body: 'x'.repeat(64), chunked: true })
    expect(res.body).toBe('ok')
    expect(bodies).toHaveLength(3)
    expect(bodies.every((b) => b === bodies[0])).toBe(true)
    expect(bodies[0]?.byteLength).toBe(64)
    expect(s.upstreams.map((u) => u.requests[0].body.toString())).toEqual(['x'.repeat(64), 'x'.repeat(64)])
    expect(s.events.filter((e) => e.type === 'probed').map((e) => e.reason)).toEqual(['status 404', 'ERR_BAD_GATEWAY', 'status 200'])
  })
})

describe('Object.prototype names in config (item 5)', () => {
  it('keyHeaders named constructor, __proto__ or toString key on the request\'s own headers only', async () => {
    const s = await setup([answer(404), answer(200, 'ok')], { keyHeaders: ['constructor', '__proto__', 'toString'] })
    const plain = await send(s.url('/k'))
    expect(plain.status).toBe(200)
    expect((await send(s.url('/k'))).headers['x-switchboard-discovery']).toBe('hit')
    // Without Object.hasOwn, an absent `constructor` header would read as Object and key like this value.
    const spoof = await send(s.url('/k'), { headers: { constructor: String(Object) } })
    expect(spoof.headers['x-switchboard-discovery']).toBe('probe')
    expect((await send(s.url('/k'), { headers: { tostring: 'x' } })).headers['x-switchboard-discovery']).toBe('probe')
    expect(await s.discovery.list()).toHaveLength(3)
  })

  it('a header option named __proto__ is set as an own response header (in-process)', async () => {
    const seen: Record<string, string | string[]>[] = []
    const ex = {
      request: { method: 'GET', target: '/', path: '/', query: '', headers: {}, clientIp: '', protocol: 'http', host: '' },
      upstreamTarget: '/',
      respond: async (_status: number, headers: Record<string, string | string[]>) => void seen.push(headers),
    } as unknown as Exchange
    const transport: DiscoveryTransport = {
      send: async (): Promise<UpstreamResponse> => ({ status: 200, headers: { 'x-up': '1' }, body: (async function* () {})(), cancel: () => {} }),
    }
    const discovery = createDiscovery({ endpoints: ['http://127.0.0.1:1'], store: memoryStore(), transport, header: '__proto__' })
    await discovery.middleware()(ex, () => Promise.resolve())
    expect(Object.hasOwn(seen[0], '__proto__')).toBe(true)
    expect(Object.entries(seen[0])).toEqual([['x-up', '1'], ['__proto__', 'probe']])
  })
})
