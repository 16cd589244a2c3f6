import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '@switchboard/core'
import { loadConfigText, parseConfig } from '../src/index.ts'

const CONTRACT = readFileSync(new URL('../../../apps/gateway/examples/gateway.yaml', import.meta.url), 'utf8')

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('config: the public contract', () => {
  it('parses the contract config from PRODUCT.md with its values', () => {
    const c = loadConfigText(CONTRACT, { file: 'gateway.yaml' })
    expect(c.server).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      limits: { maxHeaderBytes: 16384, headersTimeoutMs: 10_000, bodyIdleTimeoutMs: 30_000 },
    })
    expect(c.upstreams.backend.balancer).toEqual({ strategy: 'round-robin', options: {} })
    expect(c.upstreams.backend.targets).toEqual([
      { url: 'http://127.0.0.1:3000', weight: 1, priority: 0 },
      { url: 'http://127.0.0.1:3001', weight: 2, priority: 0 },
    ])
    expect(c.upstreams.backend.timeouts).toEqual({ connectMs: 2000, responseMs: 30_000, idleMs: 60_000 })
    expect(c.routes.map((r) => [r.name, r.match.path, r.upstream])).toEqual([
      ['api', '/api/*', 'backend'],
      ['everything-else', '/*', 'backend'],
    ])
    expect(c.store).toEqual({ driver: 'memory' })
  })

  it('fills defaults: p2c balancer, limits, health path, no health checks', () => {
    const c = parseConfig({
      upstreams: { a: { targets: ['http://127.0.0.1:1'] } },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }],
    })
    expect(c.upstreams.a.balancer.strategy).toBe('p2c')
    expect(c.server.limits.maxBodyBytes).toBe(1024 * 1024)
    expect(c.server.healthPath).toBe('/health')
    expect(c.upstreams.a.healthCheck).toBeUndefined()
    expect(c.upstreams.a.outlierDetection).toBeUndefined()
  })

  it('reads healthCheck and balancer options', () => {
    const c = parseConfig({
      upstreams: {
        a: {
          balancer: { strategy: 'consistent-hash', options: { key: { header: 'x-user' } } },
          targets: [{ url: 'http://127.0.0.1:1/base/' }],
          healthCheck: { path: '/healthz', interval: '5s', unhealthyThreshold: 2, expectStatus: [200, '3xx'] },
        },
      },
      routes: [{ name: 'all', match: { path: '/*', methods: ['get', 'POST'] }, upstream: 'a', cache: { ttl: '60s', maxObjectSize: '1mb' } }],
    })
    expect(c.upstreams.a.balancer).toEqual({ strategy: 'consistent-hash', options: { key: { header: 'x-user' } } })
    expect(c.upstreams.a.targets[0].url).toBe('http://127.0.0.1:1/base')
    expect(c.upstreams.a.healthCheck).toMatchObject({ path: '/healthz', method: 'HEAD', intervalMs: 5000, unhealthyThreshold: 2, expectStatus: [200, '3xx'] })
    expect(c.routes[0].match.methods).toEqual(['GET', 'POST'])
    expect(c.routes[0].cache).toEqual({ ttlMs: 60_000, maxObjectBytes: 1024 * 1024, keyHeaders: [] })
  })
})

describe('config: ${ENV} expansion', () => {
  it('expands variables and defaults in string values', () => {
    const c = loadConfigText(
      `upstreams:\n  a:\n    targets: ["http://\${HOST}:\${UP_PORT:-3000}"]\nroutes:\n  - { name: all, match: { path: /* }, upstream: a, requestHeaders: { set: { authorization: "Bearer \${SECRET}" } } }\n`,
      { env: { HOST: '127.0.0.1', SECRET: 's3cr3t' } },
    )
    expect(c.upstreams.a.targets[0].url).toBe('http://127.0.0.1:3000')
    expect(c.routes[0].requestHeaders?.set.authorization).toBe('Bearer s3cr3t')
  })

  it('refuses a missing variable and names the key path', () => {
    const err = configError(() =>
      loadConfigText('upstreams:\n  a:\n    targets: ["http://${NOPE}:1"]\nroutes: [{ name: r, match: { path: /* }, upstream: a }]\n', {
        file: 'gw.yaml',
        env: {},
      }),
    )
    expect(err.message).toBe('gw.yaml: upstreams.a.targets[0].url: expected environment variable NOPE to be set, got nothing')
  })
})

describe('config: bad input names the file, key path and expectation', () => {
  const base = () => ({
    upstreams: { backend: { targets: [{ url: 'http://127.0.0.1:3000' }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'backend' }],
  })

  it.each([
    ['a target URL that is not http', (c: any) => (c.upstreams.backend.targets[0].url = 'ftp://x'), 'upstreams.backend.targets[0].url', 'an http:// or https:// URL'],
    ['a bad duration', (c: any) => (c.upstreams.backend.timeouts = { connect: '2 weeks' }), 'upstreams.backend.timeouts.connect', 'a duration'],
    ['a bad size', (c: any) => (c.server = { limits: { maxHeaderBytes: 'big' } }), 'server.limits.maxHeaderBytes', 'a size'],
    ['pipeBodies that is not a boolean', (c: any) => (c.server = { pipeBodies: 'yes' }), 'server.pipeBodies', 'true or false'],
    ['an unknown upstream', (c: any) => (c.routes[0].upstream = 'nope'), 'routes[0].upstream', 'the name of an upstream (backend)'],
    ['an unknown key (typo)', (c: any) => (c.upstreams.backend.timeout = {}), 'upstreams.backend.timeout', 'one of the known keys'],
    ['a negative weight', (c: any) => (c.upstreams.backend.targets[0].weight = -1), 'upstreams.backend.targets[0].weight', 'a number'],
    ['no targets', (c: any) => (c.upstreams.backend.targets = []), 'upstreams.backend.targets', 'at least one target'],
    ['a route without a path', (c: any) => (c.routes[0].match = {}), 'routes[0].match.path', 'a path pattern'],
    ['a bad port', (c: any) => (c.server = { port: 70000 }), 'server.port', 'a port number'],
    ['a duplicate route name', (c: any) => c.routes.push({ ...c.routes[0] }), 'routes[1].name', 'a name no other route uses'],
    ['a bad store driver', (c: any) => (c.store = { driver: 'mongo' }), 'store.driver', 'memory, redis, sqlite'],
    ['a header value with CRLF', (c: any) => (c.routes[0].requestHeaders = { set: { 'x-a': 'a\r\nb: c' } }), 'routes[0].requestHeaders.set.x-a', 'a header value without CR, LF'],
    ['an unknown balancer', (c: any) => (c.upstreams.backend.balancer = 'fastest'), 'upstreams.backend.balancer', 'a balancer name (consistent-hash, first-available'],
    ['bad balancer options', (c: any) => (c.upstreams.backend.balancer = { strategy: 'consistent-hash', options: { key: { header: 7 } } }), 'upstreams.backend.balancer.options.key.header', 'valid options for consistent-hash'],
    ['an ejection cap below the base', (c: any) => (c.upstreams.backend.outlierDetection = { baseEjectionTime: '1m', maxEjectionTime: '10s' }), 'upstreams.backend.outlierDetection.maxEjectionTime', 'a duration at least as long'],
    ['a bad websocket limit', (c: any) => (c.routes[0].websocket = { maxMessageSize: 'huge' }), 'routes[0].websocket.maxMessageSize', 'a size'],
    ['a bad health status', (c: any) => (c.upstreams.backend.healthCheck = { expectStatus: ['ok'] }), 'upstreams.backend.healthCheck.expectStatus[0]', 'a status code'],
  ])('%s', (_label, mutate, path, expected) => {
    const c = base()
    mutate(c)
    const err = configError(() => parseConfig(c, { file: 'gw.yaml' }))
    expect(err.path).toBe(path)
    expect(err.message).toContain(`gw.yaml: ${path}: expected ${expected}`)
  })

  it('reports YAML syntax errors with the file name', () => {
    const err = configError(() => loadConfigText('upstreams: [unclosed', { file: 'broken.yaml' }))
    expect(err.message).toMatch(/^broken\.yaml: \(root\): expected valid YAML/)
  })

  it('refuses duplicate keys in YAML', () => {
    expect(() => loadConfigText('routes: []\nroutes: []\n', { file: 'dup.yaml' })).toThrow(ConfigError)
  })
})
