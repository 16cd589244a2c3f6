import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeJson, type Store } from '@switchboard/core'
import { memoryStore } from '@switchboard/store'
import { createDiscovery, type Discovery, type DiscoveryEvent, type DiscoveryOptions } from '../src/index.ts'
import {
  answer,
  createTestTransport,
  deadOrigin,
  open,
  send,
  startProxy,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from './harness.ts'
import { useDiscoverySetup } from './fixtures.ts'

const { cleanups, setup } = useDiscoverySetup()

const counts = (upstreams: Upstream[]): number[] => upstreams.map((u) => u.count)

describe('discovery over real upstreams', () => {
  it('forwards to the first endpoint that answers 200 and leaves later ones alone', async () => {
    const s = await setup([answer(404, 'a'), answer(500, 'b'), answer(200, 'c', { 'x-from': 'c' }), answer(200, 'd')])
    const res = await send(s.url('/things?x=1'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('c')
    expect(res.headers['x-from']).toBe('c')
    expect(res.headers['x-switchboard-discovery']).toBe('probe')
    expect(counts(s.upstreams)).toEqual([1, 1, 1, 0])
    expect(s.upstreams[2].requests[0].url).toBe('/things?x=1')
    expect(s.events.map((e) => [e.type, e.reason])).toEqual([
      ['probed', 'status 404'],
      ['probed', 'status 500'],
      ['probed', 'status 200'],
      ['remembered', undefined],
    ])
    expect(s.discovery.stats()).toEqual({ hits: 0, misses: 1, probes: 3, remembered: 1, forgotten: 0, evicted: 0 })
  })

  it('passes the last answer through when no endpoint says 200, and remembers nothing', async () => {
    const s = await setup([answer(500, 'first'), answer(404, 'last')])
    const res = await send(s.url('/missing'))
    expect(res.status).toBe(404)
    expect(res.body).toBe('last')
    expect(await s.discovery.list()).toEqual([])
    const again = await send(s.url('/missing'))
    expect(again.status).toBe(404)
    expect(counts(s.upstreams)).toEqual([2, 2])
  })

  it('ends the search at any 2xx by default and remembers it', async () => {
    const s = await setup([answer(204, ''), answer(200, 'ok')])
    const res = await send(s.url('/x'))
    expect(res.status).toBe(204)
    expect(counts(s.upstreams)).toEqual([1, 0])
    expect((await s.discovery.list()).map((r) => r.endpoint)).toEqual([s.upstreams[0].origin])
  })

  it('successStatuses: [200] restores first-200 (other 2xx mean "not this endpoint")', async () => {
    const s = await setup([answer(204, ''), answer(200, 'ok')], { successStatuses: [200] })
    const res = await send(s.url('/x'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('ok')
    expect(counts(s.upstreams)).toEqual([1, 1])
  })

  it('sends the last endpoint that answered when later endpoints are unreachable', async () => {
    const s = await setup([answer(404, 'not here'), 'dead'])
    const res = await send(s.url('/x'))
    expect(res.status).toBe(404)
    expect(res.body).toBe('not here')
    expect(s.events.at(-1)).toMatchObject({ type: 'probed', reason: 'ERR_BAD_GATEWAY' })
  })

  it('answers 502 ERR_BAD_GATEWAY when no endpoint is reachable', async () => {
    const s = await setup(['dead', 'dead'])
    const res = await send(s.url('/x'))
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body).error.code).toBe('ERR_BAD_GATEWAY')
    expect(s.discovery.stats().probes).toBe(2)
  })

  it('skips an unreachable endpoint and keeps probing', async () => {
    const s = await setup(['dead', answer(200, 'alive')])
    const res = await send(s.url('/x'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('alive')
  })

  it('cancels responses it does not send, releasing their connections', async () => {
    let closed!: Promise<void>
    const held: UpstreamHandler = (_req, res) => {
      closed = new Promise((resolve) => res.once('close', () => resolve()))
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.write('a body that never ends') // no end(): only a cancel frees this connection
    }
    const s = await setup([held, answer(200, 'ok')])
    const res = await send(s.url('/x'))
    expect(res.body).toBe('ok')
    await closed // resolves only when the proxy closed the half-read response
    expect(counts(s.upstreams)).toEqual([1, 1])
  })

  it('streams the chosen response instead of buffering it', async () => {
    let finish!: () => void
    const streaming: UpstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first;')
      finish = () => res.end('second')
    }
    const s = await setup([answer(404), streaming])
    const res = await open(s.url('/stream'))
    expect(res.statusCode).toBe(200)
    const chunks: string[] = []
    for await (const chunk of res) {
      chunks.push(String(chunk))
      // The upstream ends only after the client already holds the first chunk.
      if (chunks.length === 1) finish()
    }
    expect(chunks.join('')).toBe('first;second')
  })
})

describe('remembered routes', () => {
  it('uses a remembered route without probing: the other endpoints receive nothing', async () => {
    const s = await setup([answer(404), answer(200, 'b'), answer(200, 'c')])
    await send(s.url('/r'))
    expect(counts(s.upstreams)).toEqual([1, 1, 0])
    for (let i = 0; i < 3; i++) {
      const res = await send(s.url('/r'))
      expect(res.status).toBe(200)
      expect(res.body).toBe('b')
      expect(res.headers['x-switchboard-discovery']).toBe('hit')
    }
    expect(counts(s.upstreams)).toEqual([1, 4, 0])
    expect(s.discovery.stats()).toEqual({ hits: 3, misses: 1, probes: 2, remembered: 1, forgotten: 0, evicted: 0 })
    expect(s.events.filter((e) => e.type === 'hit')).toHaveLength(3)
  })

  it('keys routes by method and path; the query is forwarded but not keyed', async () => {
    const s = await setup([answer(404), answer(200)])
    await send(s.url('/r?q=1'))
    await send(s.url('/r?q=2'))
    await send(s.url('/r?q=1'), { method: 'DELETE' })
    await send(s.url('/r?q=3'))
    expect(counts(s.upstreams)).toEqual([2, 4])
    expect(s.upstreams[1].requests.map((r) => r.url)).toEqual(['/r?q=1', '/r?q=2', '/r?q=1', '/r?q=3'])
    const keys = (await s.discovery.list()).map((r) => r.key.split(' #')[0]).sort()
    expect(keys).toEqual(['DELETE /r', 'GET /r'])
  })

  it('keyQuery: true keys routes by method, path and query', async () => {
    const s = await setup([answer(404), answer(200)], { keyQuery: true })
    await send(s.url('/r?q=1'))
    await send(s.url('/r?q=2'))
    await send(s.url('/r?q=1'), { method: 'DELETE' })
    await send(s.url('/r?q=1'))
    expect(counts(s.upstreams)).toEqual([3, 4])
    const keys = (await s.discovery.list()).map((r) => r.key.split(' #')[0]).sort()
    expect(keys).toEqual(['DELETE /r?q=1', 'GET /r?q=1', 'GET /r?q=2'])
  })

  it('stores the route under the namespace with the winning endpoint', async () => {
    const s = await setup([answer(404), answer(200)], { namespace: 'disc:' })
    await send(s.url('/n'))
    const keys = await s.store.keys('disc:')
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatch(/^disc:GET \/n #[0-9a-f]{64}$/)
    expect(decodeJson(await s.store.get(keys[0]) as Uint8Array)).toEqual({ endpoint: s.upstreams[1].origin })
    expect(await s.discovery.list()).toEqual([{ key: keys[0].slice('disc:'.length), endpoint: s.upstreams[1].origin }])
  })

  it('expires remembered routes after ttlMs (injected clock)', async () => {
    let now = 1_000_000
    const store = memoryStore({ now: () => now })
    const s = await setup([answer(404), answer(200)], { store, ttlMs: 60_000 })
    await send(s.url('/t'))
    now += 59_999
    expect((await send(s.url('/t'))).headers['x-switchboard-discovery']).toBe('hit')
    expect(counts(s.upstreams)).toEqual([1, 2])
    now += 1 // hits do not extend the TTL: it ran out 60 s after the route was remembered
    expect((await send(s.url('/t'))).headers['x-switchboard-discovery']).toBe('probe')
    expect(counts(s.upstreams)).toEqual([2, 3])
  })

  it('forgets a route whose endpoint starts failing and re-probes in the same request', async () => {
    const s = await setup([answer(404, 'a'), answer(200, 'b'), answer(200, 'c')])
    await send(s.url('/f'))
    expect(counts(s.upstreams)).toEqual([1, 1, 0])
    s.upstreams[1].handle(answer(500, 'b is broken'))
    const res = await send(s.url('/f'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('c')
    // b failed once as the remembered endpoint and was not asked again while probing.
    expect(counts(s.upstreams)).toEqual([2, 2, 1])
    expect(s.events.filter((e) => e.type === 'forgotten')).toEqual([
      { type: 'forgotten', key: expect.stringMatching(/^GET \/f #/), endpoint: s.upstreams[1].origin, reason: 'status 500' },
    ])
    expect((await s.discovery.list()).map((r) => r.endpoint)).toEqual([s.upstreams[2].origin])
    await send(s.url('/f'))
    expect(counts(s.upstreams)).toEqual([2, 2, 2])
    expect(s.discovery.stats()).toMatchObject({ hits: 1, misses: 2, remembered: 2, forgotten: 1 })
  })

  it('forgets a route whose endpoint became unreachable', async () => {
    const s = await setup([answer(404), answer(200, 'b'), answer(200, 'c')])
    await send(s.url('/u'))
    await s.upstreams[1].close()
    const res = await send(s.url('/u'))
    expect(res.body).toBe('c')
    expect(s.events.find((e) => e.type === 'forgotten')?.reason).toBe('ERR_BAD_GATEWAY')
  })

  it('passes the failing answer through when the remembered endpoint was the only one left', async () => {
    const s = await setup([answer(200, 'ok')])
    await send(s.url('/solo'))
    s.upstreams[0].handle(answer(503, 'down'))
    const res = await send(s.url('/solo'))
    expect(res.status).toBe(503)
    expect(res.body).toBe('down')
    expect(counts(s.upstreams)).toEqual([2])
    expect(await s.discovery.list()).toEqual([])
  })

  it('when the others do not say 200 either, sends the last answer among them', async () => {
    const s = await setup([answer(404, 'a'), answer(200, 'b'), answer(404, 'c')])
    await send(s.url('/l'))
    s.upstreams[1].handle(answer(500, 'b is broken'))
    const res = await send(s.url('/l'))
    expect(res.status).toBe(404)
    expect(res.body).toBe('c')
    expect(counts(s.upstreams)).toEqual([2, 2, 1])
  })

  it('forgets a remembered endpoint that is no longer configured', async () => {
    const store = memoryStore()
    const old = await setup([answer(200, 'old')], { store })
    await send(old.url('/moved'))
    const s = await setup([answer(404), answer(200, 'new')], { store })
    const res = await send(s.url('/moved'))
    expect(res.body).toBe('new')
    expect(s.events[0]).toMatchObject({ type: 'forgotten', endpoint: old.upstreams[0].origin, reason: 'not configured' })
    expect(old.upstreams[0].count).toBe(1)
  })

  it('forget(prefix), clear() and list() manage remembered routes', async () => {
    const s = await setup([answer(404), answer(200)])
    await send(s.url('/a'))
    await send(s.url('/a/b'))
    await send(s.url('/c'))
    expect(await s.discovery.list()).toHaveLength(3)
    expect(await s.discovery.list('GET /a')).toHaveLength(2)
    expect(await s.discovery.forget('GET /a/')).toBe(1)
    expect((await s.discovery.list()).map((r) => r.key.split(' #')[0]).sort()).toEqual(['GET /a', 'GET /c'])
    expect(await s.discovery.clear()).toBe(2)
    expect(await s.discovery.list()).toEqual([])
    await send(s.url('/a'))
    expect(counts(s.upstreams)).toEqual([4, 4])
  })
})

describe('request bodies', () => {
  it('replays the body byte for byte to every endpoint it tries (replay: all)', async () => {
    const s = await setup([answer(404), answer(200, 'b'), answer(200, 'c')], { replay: 'all' })
    const body = randomBytes(64 * 1024)
    body[0] = 0xff // never valid UTF-8: hashed raw
    const res = await send(s.url('/upload'), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body })
    expect(res.body).toBe('b')
    expect(s.upstreams[0].requests[0].body.equals(body)).toBe(true)
    expect(s.upstreams[1].requests[0].body.equals(body)).toBe(true)
    expect(s.upstreams[1].requests[0].headers['content-length']).toBe(String(body.length))
    const hit = await send(s.url('/upload'), { method: 'POST', body })
    expect(hit.headers['x-switchboard-discovery']).toBe('hit')
    expect(s.upstreams[1].requests[1].body.equals(body)).toBe(true)
  })

  it('buffers a chunked upload and replays it with a length', async () => {
    const s = await setup([answer(404), answer(200)])
    const res = await send(s.url('/chunked'), { method: 'PUT', body: 'streamed body', chunked: true })
    expect(res.status).toBe(200)
    expect(s.upstreams.map((u) => u.requests[0].body.toString())).toEqual(['streamed body', 'streamed body'])
  })

  it('answers 413 ERR_PAYLOAD_TOO_LARGE past maxBodyBytes and contacts no endpoint', async () => {
    const s = await setup([answer(200)], { maxBodyBytes: 1024 })
    const declared = await send(s.url('/big'), { method: 'POST', body: 'x'.repeat(1025) })
    expect(declared.status).toBe(413)
    expect(JSON.parse(declared.body).error.code).toBe('ERR_PAYLOAD_TOO_LARGE')
    const chunked = await send(s.url('/big'), { method: 'POST', body: 'x'.repeat(4096), chunked: true })
    expect(chunked.status).toBe(413)
    expect(s.upstreams[0].count).toBe(0)
    const atLimit = await send(s.url('/big'), { method: 'POST', body: 'x'.repeat(1024) })
    expect(atLimit.status).toBe(200)
    expect(s.upstreams[0].requests[0].body.length).toBe(1024)
  })

  it('remembers JSON payloads regardless of key order and whitespace', async () => {
    const s = await setup([answer(404), answer(200)], { replay: 'all' })
    const post = (body: string) => send(s.url('/json'), { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect((await post('{"name":"log_file.log","path":"c:/logs","opts":{"a":1,"b":[1,2]}}')).headers['x-switchboard-discovery']).toBe('probe')
    expect((await post('{ "opts": { "b": [1, 2], "a": 1 }, "path": "c:/logs", "name": "log_file.log" }')).headers['x-switchboard-discovery']).toBe('hit')
    // Different values (or array order) are a different route.
    expect((await post('{"name":"log_file.log","path":"c:/logs","opts":{"a":1,"b":[2,1]}}')).headers['x-switchboard-discovery']).toBe('probe')
    expect(counts(s.upstreams)).toEqual([2, 3])
    // The bytes sent upstream are the client's, not the canonical form.
    expect(s.upstreams[1].requests[1].body.toString()).toBe('{ "opts": { "b": [1, 2], "a": 1 }, "path": "c:/logs", "name": "log_file.log" }')
  })
})

describe('options and failure modes (in-process)', () => {
  const transport = { send: () => Promise.reject(new Error('unused')) }

  it('rejects bad options naming the option', () => {
    const store = memoryStore()
    const base = { endpoints: ['http://127.0.0.1:1'], store, transport }
    expect(() => createDiscovery({ ...base, endpoints: [] })).toThrow('discovery.endpoints must be a non-empty list')
    expect(() => createDiscovery({ ...base, endpoints: ['ftp://x'] })).toThrow('discovery.endpoints[0] must be an http(s) URL')
    expect(() => createDiscovery({ ...base, endpoints: ['http://a', 'http://a'] })).toThrow('must not repeat')
    expect(() => createDiscovery({ ...base, ttlMs: 0 })).toThrow(RangeError)
    expect(() => createDiscovery({ ...base, ttlMs: 1.5 })).toThrow('discovery.ttlMs must be a positive integer')
    expect(() => createDiscovery({ ...base, maxBodyBytes: -1 })).toThrow('discovery.maxBodyBytes')
    expect(() => createDiscovery({ ...base, header: 'bad header' })).toThrow('discovery.header')
    expect(() => createDiscovery({ ...base, store: undefined as unknown as Store })).toThrow('discovery.store')
    expect(() => createDiscovery({ ...base, transport: {} as never })).toThrow('discovery.transport')
  })

  it('keeps serving by probing when the store fails, and reports the failure', async () => {
    const real = memoryStore()
    const down = (): Promise<never> => Promise.reject(new Error('store down'))
    const broken: Store = {
      name: 'broken',
      get: down,
      set: down,
      setIfAbsent: down,
      compareAndSet: down,
      delete: down,
      increment: down,
      keys: (prefix, options) => real.keys(prefix, options),
      clear: (prefix) => real.clear(prefix),
      close: () => real.close(),
    }
    const errors: unknown[] = []
    const s = await setup([answer(404), answer(200, 'ok')], { store: broken, onStoreError: (e) => errors.push(e) })
    const res = await send(s.url('/s'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('ok')
    expect(errors.map(String)).toEqual(['Error: store down', 'Error: store down'])
    expect(s.discovery.stats()).toMatchObject({ remembered: 0, misses: 1 })
  })

  it('header: false adds no header; isSuccess overrides successStatuses', async () => {
    const s = await setup([answer(204, ''), answer(201, 'created')], { header: false, successStatuses: ['2xx'], isSuccess: (st) => st === 201 })
    const res = await send(s.url('/h'), { method: 'PUT', body: 'x' })
    expect(res.status).toBe(201)
    expect(res.headers['x-switchboard-discovery']).toBeUndefined()
    expect(await s.discovery.list()).toHaveLength(1)
  })

  it('an observer that throws does not fail the request', async () => {
    const s = await setup([answer(200, 'fine')], { onEvent: () => { throw new Error('observer bug') } })
    expect((await send(s.url('/o'))).body).toBe('fine')
  })
})

describe('the README example transport (fetch)', () => {
  it('discovers, remembers and replays a JSON body', async () => {
    const { fetchTransport } = await import('./fetch-transport.ts')
    const s = await setup([answer(404), answer(200, 'found')], { transport: fetchTransport, replay: 'all' })
    const body = '{"name":"backup_log.log","path":"d:/backup/logs"}'
    const res = await send(s.url('/get_log_files'), { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(res.status).toBe(200)
    expect(res.body).toBe('found')
    expect((await send(s.url('/get_log_files'), { method: 'POST', body })).headers['x-switchboard-discovery']).toBe('hit')
    expect(counts(s.upstreams)).toEqual([1, 2])
    expect(s.upstreams[1].requests.map((r) => r.body.toString())).toEqual([body, body])
  })
})
