import { request as httpRequest, Agent } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { definePolicy, OptionReader, UnauthorizedError } from '@switchboard/core'
import { GatewayRegistry, parseConfig, type UpstreamInterceptor, createDispatch, retryInterceptor } from '../src/index.ts'
import { rawRequest, startGateway, startUpstream, statusOf, type TestGateway, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

/** A registry with a policy type that answers 401 unless `x-key: ok` is sent. */
function testRegistry(): GatewayRegistry {
  const registry = new GatewayRegistry()
  registry.registerPolicy(
    definePolicy({
      name: 'need-key',
      parse: (raw, at) => {
        const r = new OptionReader(raw, at)
        r.done()
        return {}
      },
      create: () => async (ex, next) => {
        if (ex.request.headers['x-key'] !== 'ok') throw new UnauthorizedError()
        await next()
      },
    }),
  )
  return registry
}

describe('server policies decorate every answer', () => {
  it('adds the request id to 200, 304, 401, 404, 413, 502, 503, 504, health, admin and discovery answers', async () => {
    const up = await upstream((req, res) => {
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2_000)
      if (req.url === '/etag') {
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"' })
          return void res.end()
        }
        res.writeHead(200, { etag: '"v1"', 'content-length': '2' })
        return void res.end('ok')
      }
      res.end('ok')
    })
    const disco = await upstream((_req, res) => res.end('found by discovery'))
    const registry = testRegistry()
    const raw = {
      policies: { trace: { use: 'request-id' }, key: { use: 'need-key' } },
      server: { policies: ['trace'], limits: { maxRequestBodySize: 10 }, shutdownTimeout: '1s' },
      admin: true,
      discovery: { endpoints: [disco.url], store: { driver: 'memory' } },
      upstreams: {
        live: { targets: [up.url], timeouts: { response: '200ms' } },
        dead: { targets: ['http://127.0.0.1:9'], retries: 0 },
        down: {
          targets: ['http://127.0.0.1:9'],
          healthCheck: { interval: '50ms', timeout: '50ms', unhealthyThreshold: 1, path: '/' },
        },
      },
      routes: [
        { name: 'private', match: { path: '/private/*' }, upstream: 'live', policies: ['key'] },
        { name: 'dead', match: { path: '/dead' }, upstream: 'dead' },
        { name: 'down', match: { path: '/down' }, upstream: 'down' },
        { name: 'live', match: { path: '/live/*' }, upstream: 'live', rewrite: { stripPrefix: '/live' } },
      ],
    }
    const gw = await gateway(raw, { registry })
    // Wait until the health checker has put `down` out of rotation.
    for (let i = 0; i < 100 && gw.gateway.upstream('down')!.candidates().length > 0; i++) await new Promise((r) => setTimeout(r, 20))
    const cases: Array<[string, RequestInit | undefined, number]> = [
      ['/live/x', undefined, 200],
      ['/live/etag', { headers: { 'if-none-match': '"v1"' } }, 304],
      ['/private/x', undefined, 401],
      ['/private/x', { headers: { 'x-key': 'ok' } }, 200],
      ['/live/upload', { method: 'POST', body: 'more than ten bytes' }, 413],
      ['/dead', undefined, 502],
      ['/down', undefined, 503],
      ['/live/slow', undefined, 504],
      ['/health', undefined, 503],
      ['/admin/routes', undefined, 200],
      ['/not/routed', undefined, 200],
    ]
    for (const [path, init, status] of cases) {
      const res = await fetch(gw.url + path, init)
      await res.arrayBuffer()
      expect([path, res.status]).toEqual([path, status])
      expect([path, res.headers.get('x-request-id')]).toEqual([path, expect.stringMatching(/^[0-9a-f-]{36}$/)])
    }
    const viaDiscovery = await fetch(`${gw.url}/anything`)
    expect(await viaDiscovery.text()).toBe('found by discovery')
    expect(viaDiscovery.headers.get('x-request-id')).toBeTruthy()
  })

  it('keeps a well-formed incoming request id and sends it upstream; replaces a hostile one', async () => {
    const up = await upstream()
    const gw = await gateway({
      policies: { trace: { use: 'request-id' } },
      server: { policies: ['trace'] },
      upstreams: { a: { targets: [up.url] } },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }],
    })
    const kept = await fetch(`${gw.url}/x`, { headers: { 'x-request-id': 'abc-123' } })
    expect(kept.headers.get('x-request-id')).toBe('abc-123')
    expect(up.requests[0].headers['x-request-id']).toBe('abc-123')
    const hostile = await fetch(`${gw.url}/x`, { headers: { 'x-request-id': 'a'.repeat(500) } })
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('the headers policy edits both ways, on upstream answers and on gateway errors', async () => {
    const up = await upstream((_req, res) => {
      res.setHeader('server', 'secret-backend/1.0')
      res.end('ok')
    })
    const gw = await gateway({
      policies: { edit: { use: 'headers', request: { set: { 'x-from': 'gw' }, remove: ['cookie'] }, response: { set: { 'x-served-by': 'switchboard' }, remove: ['server'] } } },
      server: { policies: ['edit'] },
      upstreams: { a: { targets: [up.url] } },
      routes: [{ name: 'a', match: { path: '/a/*' }, upstream: 'a' }],
    })
    const res = await fetch(`${gw.url}/a/x`, { headers: { cookie: 'sid=1' } })
    expect(res.headers.get('server')).toBeNull()
    expect(res.headers.get('x-served-by')).toBe('switchboard')
    expect(up.requests[0].headers['x-from']).toBe('gw')
    expect(up.requests[0].headers.cookie).toBeUndefined()
    const missing = await fetch(`${gw.url}/nowhere`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get('x-served-by')).toBe('switchboard')
  })

  it('server policies run in order, before route policies, and unwind in reverse', async () => {
    const trail: string[] = []
    const registry = new GatewayRegistry()
    registry.registerPolicy(
      definePolicy({
        name: 'trail',
        parse: (raw, at) => ({ tag: new OptionReader(raw, at).string('tag', '?') }),
        create: (o) => async (_ex, next) => {
          trail.push(`${o.tag} in`)
          await next()
          trail.push(`${o.tag} out`)
        },
      }),
    )
    const up = await upstream()
    const gw = await gateway(
      {
        policies: { s1: { use: 'trail', tag: 's1' }, s2: { use: 'trail', tag: 's2' }, r1: { use: 'trail', tag: 'r1' } },
        server: { policies: ['s1', 's2'] },
        upstreams: { a: { targets: [up.url] } },
        routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a', policies: ['r1'] }],
      },
      { registry },
    )
    await (await fetch(`${gw.url}/x`)).text()
    expect(trail).toEqual(['s1 in', 's2 in', 'r1 in', 'r1 out', 's2 out', 's1 out'])
  })
})

describe('reload', () => {
  it('a keep-alive connection sees the new config on its next request; unchanged upstreams keep their pool', async () => {
    const a = await upstream(undefined, { name: 'a' })
    const b = await upstream(undefined, { name: 'b' })
    const raw = (extra: Record<string, unknown>[]) => ({
      upstreams: { a: { targets: [a.url] }, b: { targets: [b.url] } },
      routes: [{ name: 'a', match: { path: '/a/*' }, upstream: 'a' }, ...extra],
    })
    const gw = await gateway(raw([]))
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    cleanup.push(async () => agent.destroy())
    const get = (path: string) =>
      new Promise<{ status: number; body: string; socket: unknown }>((resolve, reject) => {
        const req = httpRequest(`${gw.url}${path}`, { agent }, (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body, socket: res.socket }))
        })
        req.on('error', reject)
        req.end()
      })
    const first = await get('/b/x')
    expect(first.status).toBe(404)
    await get('/a/warm')
    const poolA = gw.gateway.upstream('a')
    const connectionsBefore = a.connections
    const summary = await gw.gateway.reload(parseConfig(raw([{ name: 'b', match: { path: '/b/*' }, upstream: 'b' }])))
    expect(summary.added).toEqual(['route b'])
    const second = await get('/b/x')
    expect(second.status).toBe(200)
    expect(JSON.parse(second.body).upstream).toBe('b')
    expect(second.socket).toBe(first.socket)
    await get('/a/again')
    expect(gw.gateway.upstream('a')).toBe(poolA)
    expect(a.connections).toBe(connectionsBefore)
  })

  it('a config that fails to build is refused and the old one keeps serving', async () => {
    const up = await upstream()
    const gw = await gateway({ upstreams: { a: { targets: [up.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }] })
    const bad = { upstreams: { a: { targets: [up.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }], store: { driver: 'sqlite', path: '/nonexistent-dir/x/y.db' } }
    await expect(gw.gateway.reload(parseConfig(bad))).rejects.toThrow(/nonexistent-dir/)
    expect((await fetch(`${gw.url}/still`)).status).toBe(200)
  })

  it('an in-flight request finishes on the old runtime while the new one serves new requests', async () => {
    let release: () => void = () => {}
    const slow = await upstream((_req, res) => {
      release = () => res.end('old finished')
    })
    const fresh = await upstream((_req, res) => res.end('new'))
    const gw = await gateway({ upstreams: { a: { targets: [slow.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }] })
    const pending = fetch(`${gw.url}/x`).then((r) => r.text())
    for (let i = 0; i < 100 && slow.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    await gw.gateway.reload(parseConfig({ upstreams: { a: { targets: [fresh.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }] }))
    expect(await (await fetch(`${gw.url}/y`)).text()).toBe('new')
    release()
    expect(await pending).toBe('old finished')
  })
})

describe('one upstream call', () => {
  it('discovery probes count in the discovery endpoints\' stats like any request', async () => {
    const d1 = await upstream((_req, res) => {
      res.statusCode = 404
      res.end()
    })
    const d2 = await upstream((_req, res) => res.end('here'))
    const gw = await gateway({ discovery: { endpoints: [d1.url, d2.url], store: { driver: 'memory' } } })
    expect(await (await fetch(`${gw.url}/thing`)).text()).toBe('here')
    const stats = gw.gateway.upstreamStats()['(discovery)'] as Array<{ url: string; stats: { totalRequests: number } }>
    const total = (url: string) => (stats.find((s) => s.url === url) as any)?.totalRequests ?? (stats.find((s) => s.url === url) as any)?.stats?.totalRequests
    expect(total(d1.url)).toBe(1)
    expect(total(d2.url)).toBe(1)
  })

  it('interceptors wrap the dispatch outermost-first', async () => {
    const trail: string[] = []
    const tag = (name: string): UpstreamInterceptor => (next) => async (call) => {
      trail.push(`${name}>`)
      try {
        return await next(call)
      } finally {
        trail.push(`<${name}`)
      }
    }
    const dispatch = createDispatch([tag('outer'), retryInterceptor, tag('inner')])
    const up = await upstream()
    const gw = await gateway({ upstreams: { a: { targets: [up.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }] })
    const u = gw.gateway.upstream('a')!
    const result = await dispatch({
      upstream: u,
      request: { method: 'GET', target: '/', headers: {}, clientIp: '127.0.0.1' },
      kind: 'fetch',
      retryable: true,
      tried: [],
      send: async (ep) => ep.url,
      judge: () => ({ ok: true }),
      committed: () => false,
    })
    expect(result).toBe(up.url)
    expect(trail).toEqual(['outer>', 'inner>', '<inner', '<outer'])
  })
})

describe('raw request checks', () => {
  it('refuses a Host that could smuggle a path into cache and discovery keys', async () => {
    const up = await upstream()
    const gw = await gateway({ upstreams: { a: { targets: [up.url] } }, routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a', cache: true }] })
    for (const host of ['localhost:8080/cache', 'a b', 'x@y', 'h?x', 'host:99999', 'host:0x50']) {
      const { text } = await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\n\r\n`, { idleMs: 300 })
      expect([host, statusOf(text)]).toEqual([host, 400])
    }
    expect(up.requests).toHaveLength(0)
  })
})

describe('trusted proxies', () => {
  const whoRegistry = (): GatewayRegistry => {
    const registry = new GatewayRegistry()
    registry.registerPolicy(
      definePolicy({
        name: 'who',
        parse: () => ({}),
        create: () => async (ex, next) => {
          ex.responseHeaders['x-client-ip'] = ex.request.clientIp
          await next()
        },
      }),
    )
    return registry
  }
  const config = (trusted: string[]) => ({
    policies: { who: { use: 'who' } },
    server: { policies: ['who'], trustedProxies: trusted },
    upstreams: { a: { targets: ['http://127.0.0.1:1'] } },
    routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }],
  })

  it('a trusted front proxy: the client address comes from X-Forwarded-For and the chain is extended', async () => {
    const up = await upstream()
    const raw = config(['127.0.0.0/8', '10.0.0.0/8'])
    ;(raw.upstreams.a.targets as string[])[0] = up.url
    const gw = await gateway(raw, { registry: whoRegistry() })
    const res = await fetch(`${gw.url}/x`, { headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.9, 10.1.2.3', 'x-forwarded-proto': 'https' } })
    expect(res.headers.get('x-client-ip')).toBe('203.0.113.9')
    expect(up.requests[0].headers['x-forwarded-for']).toBe('198.51.100.7, 203.0.113.9, 10.1.2.3, 127.0.0.1')
    expect(up.requests[0].headers['x-forwarded-proto']).toBe('https')
  })

  it('an untrusted client: its forwarding headers are dropped and replaced', async () => {
    const up = await upstream()
    const raw = config([])
    ;(raw.upstreams.a.targets as string[])[0] = up.url
    const gw = await gateway(raw, { registry: whoRegistry() })
    const res = await fetch(`${gw.url}/x`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-prefix': '/evil', forwarded: 'for=1.2.3.4' } })
    expect(res.headers.get('x-client-ip')).toMatch(/127\.0\.0\.1$/)
    expect(up.requests[0].headers['x-forwarded-for']).toMatch(/^(::ffff:)?127\.0\.0\.1$/)
    expect(up.requests[0].headers['x-forwarded-prefix']).toBeUndefined()
    expect(up.requests[0].headers.forwarded).toBeUndefined()
  })
})
