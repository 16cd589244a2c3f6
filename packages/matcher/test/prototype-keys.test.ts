// Names such as `constructor`, `__proto__` and `toString` must never resolve to Object.prototype members.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createMatcher, validateRoute, type RouteDefinition, type RouteMatch } from '../src/index.ts'

const route = (name: string, match: RouteMatch): RouteDefinition<string> => ({ name, match, data: name })
const own = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o))

describe('prototype-named keys, in process', () => {
  it('accepts routes named after Object.prototype members and still finds duplicates', () => {
    const m = createMatcher([route('constructor', { path: '/a' }), route('__proto__', { path: '/b' }), route('toString', { path: '/c' })])
    expect(m.match({ method: 'GET', path: '/a' })?.route.name).toBe('constructor')
    expect(m.match({ method: 'GET', path: '/b' })?.route.name).toBe('__proto__')
    expect(m.match({ method: 'GET', path: '/c' })?.route.name).toBe('toString')
    expect(() => createMatcher([route('toString', { path: '/a' }), route('toString', { path: '/b' })])).toThrow(/route "toString": name: duplicate/)
  })

  it('returns params named constructor and __proto__ as own keys, and no inherited ones', () => {
    const m = createMatcher([route('p', { path: '/p/:constructor/:__proto__' }), route('w', { path: '/w/*__proto__' })])
    const hit = m.match({ method: 'GET', path: '/p/a/b' })!
    expect(own(hit.params)).toEqual({ constructor: 'a', ['__proto__']: 'b' })
    expect(hit.params.constructor).toBe('a')
    expect(Object.getPrototypeOf(hit.params)).toBeNull()
    expect(m.match({ method: 'GET', path: '/w/x/y' })!.params.__proto__).toBe('x/y')
    expect(hit.params.toString).toBeUndefined()
    expect(hit.params.hasOwnProperty).toBeUndefined()
  })

  it('returns a regex group named __proto__ as a param', () => {
    const m = createMatcher([route('r', { pathRegex: '^/r/(?<__proto__>[a-z]+)/(?<constructor>[0-9]+)$' })])
    expect(own(m.match({ method: 'GET', path: '/r/abc/12' })!.params)).toEqual({ ['__proto__']: 'abc', constructor: '12' })
  })

  it('does not let a header condition named constructor or __proto__ see Object.prototype', () => {
    const m = createMatcher([
      route('ctor', { path: '/h', headers: { constructor: true as const } }),
      route('proto', { path: '/h', headers: JSON.parse('{"__proto__": true}') }),
      route('fallback', { path: '/*' }),
    ])
    expect(m.match({ method: 'GET', path: '/h', headers: {} })?.route.name).toBe('fallback')
    expect(m.match({ method: 'GET', path: '/h', headers: { accept: '*/*' } })?.route.name).toBe('fallback')
    expect(m.match({ method: 'GET', path: '/h', headers: { constructor: 'x' } })?.route.name).toBe('ctor')
    expect(m.match({ method: 'GET', path: '/h', headers: JSON.parse('{"__proto__": "x"}') })?.route.name).toBe('proto')
    expect(m.allowedMethods({ method: 'GET', path: '/h', headers: {} })).toEqual(['*'])
  })

  it('matches query keys named __proto__ and constructor only when the request has them', () => {
    const m = createMatcher([
      route('proto', { path: '/q', query: JSON.parse('{"__proto__": "x"}') }),
      route('ctor', { path: '/q', query: { constructor: true as const } }),
      route('fallback', { path: '/*' }),
    ])
    expect(validateRoute(m.routes[0])).toEqual([])
    expect(m.match({ method: 'GET', path: '/q?__proto__=x' })?.route.name).toBe('proto')
    expect(m.match({ method: 'GET', path: '/q?__proto__=y' })?.route.name).toBe('fallback')
    expect(m.match({ method: 'GET', path: '/q?constructor' })?.route.name).toBe('ctor')
    expect(m.match({ method: 'GET', path: '/q' })?.route.name).toBe('fallback')
  })
})

describe('prototype-named keys over a real socket', () => {
  let server: Server | undefined
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    server = undefined
  })

  it('routes node:http requests by their real header object and query', async () => {
    const m = createMatcher([
      route('params', { path: '/p/:constructor/:__proto__', query: JSON.parse('{"__proto__": "x"}') }),
      route('header', { path: '/h', headers: { constructor: true as const, __proto__x: /^(?:yes|no)$/ } }),
      route('toString', { path: '/*' }),
    ])
    server = createServer((req, res) => {
      const hit = m.match({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ route: hit?.route.name, params: hit?.params }))
    })
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const get = async (path: string, headers: Record<string, string> = {}): Promise<unknown> => (await fetch(base + path, { headers })).json()

    expect(await get('/p/a/b?__proto__=x')).toEqual({ route: 'params', params: { constructor: 'a', ['__proto__']: 'b' } })
    expect(await get('/p/a/b?__proto__=y')).toEqual({ route: 'toString', params: { '*': 'p/a/b' } })
    expect(await get('/h')).toEqual({ route: 'toString', params: { '*': 'h' } })
    expect(await get('/h', { constructor: '1', __proto__x: 'yes' })).toEqual({ route: 'header', params: {} })
  })
})
