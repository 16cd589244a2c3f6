import { describe, expect, it } from 'vitest'
import { createMatcher, type MatchInput, type RouteDefinition, type RouteMatch } from '../src/index.ts'

const route = (name: string, match: RouteMatch, priority?: number): RouteDefinition<string> => ({
  name,
  match,
  data: name,
  ...(priority === undefined ? {} : { priority }),
})
const get = (path: string, extra: Partial<MatchInput> = {}): MatchInput => ({ method: 'GET', path, ...extra })

describe('path patterns', () => {
  const matcher = createMatcher([
    route('root', { path: '/' }),
    route('users', { path: '/users' }),
    route('users-slash', { path: '/users/' }),
    route('user', { path: '/users/:id' }),
    route('post', { path: '/users/:id/posts/:postId' }),
    route('api', { path: '/api/*' }),
    route('files', { path: '/files/*rest' }),
  ])
  const name = (path: string): string | undefined => matcher.match(get(path))?.route.name

  it('matches exact static paths', () => {
    expect(name('/')).toBe('root')
    expect(name('/users')).toBe('users')
    expect(name('/nope')).toBeUndefined()
    expect(name('/Users')).toBeUndefined() // case-sensitive
  })

  it('treats /users and /users/ as different paths by default', () => {
    expect(name('/users/')).toBe('users-slash')
  })

  it('extracts one non-empty segment per param', () => {
    expect(matcher.match(get('/users/42'))?.params).toEqual({ id: '42' })
    expect(matcher.match(get('/users/42/posts/7'))?.params).toEqual({ id: '42', postId: '7' })
    expect(name('/users/42/posts/')).toBeUndefined()
    expect(name('/users/42/extra')).toBeUndefined()
  })

  it('decodes params and rejects the route on an undecodable escape', () => {
    expect(matcher.match(get('/users/j%C3%BCrgen%20x'))?.params).toEqual({ id: 'jürgen x' })
    expect(matcher.match(get('/users/%FF'))).toBeUndefined()
  })

  it('matches a prefix wildcard with and without a remainder', () => {
    expect(matcher.match(get('/api'))?.params).toEqual({ '*': '' })
    expect(matcher.match(get('/api/'))?.params).toEqual({ '*': '' })
    expect(matcher.match(get('/api/x'))?.params).toEqual({ '*': 'x' })
    expect(matcher.match(get('/api/x/y/'))?.params).toEqual({ '*': 'x/y/' })
    expect(name('/apix')).toBeUndefined()
  })

  it('names a wildcard and decodes its remainder', () => {
    expect(matcher.match(get('/files/a/b%20c.txt'))?.params).toEqual({ rest: 'a/b c.txt' })
  })

  it('matches every path, including /, with /*', () => {
    const all = createMatcher([route('all', { path: '/*' })])
    expect(all.match(get('/'))?.params).toEqual({ '*': '' })
    expect(all.match(get('/a/b'))?.params).toEqual({ '*': 'a/b' })
  })

  it('matches every path when a route has no path condition, without params', () => {
    const any = createMatcher([route('any', { methods: ['GET'] })])
    expect(any.match(get('/x/y'))).toEqual({ route: any.routes[0], params: {} })
  })

  it('ignores a trailing slash on both sides with strictTrailingSlash: false', () => {
    const loose = createMatcher([route('users', { path: '/users' }), route('user', { path: '/users/:id/' }), route('root', { path: '/' })], {
      strictTrailingSlash: false,
    })
    expect(loose.match(get('/users/'))?.route.name).toBe('users')
    expect(loose.match(get('/users'))?.route.name).toBe('users')
    expect(loose.match(get('/users/1'))?.route.name).toBe('user')
    expect(loose.match(get('/'))?.route.name).toBe('root')
  })

  it('compares static segments case-insensitively with caseSensitive: false', () => {
    const m = createMatcher([route('admin', { path: '/admin/*' }), route('user', { path: '/Users/:id' }), route('public', { path: '/*' })], {
      caseSensitive: false,
    })
    expect(m.match(get('/ADMIN/x'))?.route.name).toBe('admin')
    expect(m.match(get('/%41dmin/x'))?.route.name).toBe('admin')
    expect(m.match(get('/users/MiXeD'))).toMatchObject({ route: { name: 'user' }, params: { id: 'MiXeD' } })
    expect(m.match(get('/other'))?.route.name).toBe('public')
    expect(matcher.match(get('/USERS'))).toBeUndefined() // the default stays case-sensitive
  })

  it('splits a query off the path when no query is given', () => {
    const m = createMatcher([route('q', { path: '/search', query: { q: 'x' } })])
    expect(m.match(get('/search?q=x'))?.route.name).toBe('q')
    expect(m.match(get('/search?q=x', { query: '?q=y' }))).toBeUndefined()
  })

  it('exposes the routes as given', () => {
    expect(matcher.routes.map((r) => r.name)).toEqual(['root', 'users', 'users-slash', 'user', 'post', 'api', 'files'])
    expect(Object.isFrozen(matcher.routes)).toBe(true)
  })
})

describe('precedence', () => {
  it('prefers static over param over wildcard, whatever the definition order', () => {
    const m = createMatcher([route('wild', { path: '/users/*' }), route('param', { path: '/users/:id' }), route('static', { path: '/users/me' })])
    expect(m.match(get('/users/me'))?.route.name).toBe('static')
    expect(m.match(get('/users/42'))?.route.name).toBe('param')
    expect(m.match(get('/users/42/x'))?.route.name).toBe('wild')
  })

  it('prefers the longer static prefix', () => {
    const m = createMatcher([route('short', { path: '/a/*' }), route('long', { path: '/a/b/*' }), route('param-first', { path: '/a/:x/c' })])
    expect(m.match(get('/a/b/c'))?.route.name).toBe('long')
    expect(m.match(get('/a/z/c'))?.route.name).toBe('param-first')
    expect(m.match(get('/a/z/d'))?.route.name).toBe('short')
  })

  it('prefers an exact match over a wildcard matching the same path', () => {
    const m = createMatcher([route('wild', { path: '/api/*' }), route('exact', { path: '/api' })])
    expect(m.match(get('/api'))?.route.name).toBe('exact')
    expect(m.match(get('/api/'))?.route.name).toBe('wild')
  })

  it('backtracks from a static branch that dead-ends to a param branch', () => {
    const m = createMatcher([route('static', { path: '/a/b/c' }), route('param', { path: '/a/:x/d' })])
    expect(m.match(get('/a/b/d'))).toMatchObject({ route: { name: 'param' }, params: { x: 'b' } })
  })

  it('keeps definition order among equals', () => {
    const m = createMatcher([route('first', { path: '/x/:a' }), route('second', { path: '/x/:b' })])
    expect(m.match(get('/x/1'))).toMatchObject({ route: { name: 'first' }, params: { a: '1' } })
  })

  it('lets an explicit priority beat specificity', () => {
    const m = createMatcher([route('static', { path: '/users/me' }), route('wild', { path: '/*' }, 10), route('param', { path: '/users/:id' }, 5)])
    expect(m.match(get('/users/me'))?.route.name).toBe('wild')
    const m2 = createMatcher([route('static', { path: '/users/me' }), route('param', { path: '/users/:id' }, 5)])
    expect(m2.match(get('/users/me'))?.route.name).toBe('param')
    expect(m2.match(get('/users/x'))?.route.name).toBe('param')
  })

  it('ranks a negative priority below the default', () => {
    const m = createMatcher([route('low', { path: '/users/me' }, -1), route('wild', { path: '/users/*' })])
    expect(m.match(get('/users/me'))?.route.name).toBe('wild')
  })

  it('orders regex routes by priority around the tree', () => {
    const m = createMatcher([
      route('tree', { path: '/v1/:x' }),
      route('regex-low', { pathRegex: '^/v1/' }),
      route('regex-high', { pathRegex: /^\/v1\/(?<ver>special)$/ }, 1),
      route('regex-only', { pathRegex: '^/v2/(?<rest>.+)$' }),
    ])
    expect(m.match(get('/v1/abc'))?.route.name).toBe('tree') // equal priority: path patterns first
    expect(m.match(get('/v1/abc/def'))?.route.name).toBe('regex-low')
    expect(m.match(get('/v1/special'))).toMatchObject({ route: { name: 'regex-high' }, params: { ver: 'special' } })
    expect(m.match(get('/v2/a%20b/c'))?.params).toEqual({ rest: 'a b/c' })
  })

  it('tests regexes against the normalised path', () => {
    const m = createMatcher([route('admin', { pathRegex: '^/admin(/|$)' }), route('public', { pathRegex: /^\/public\//g })])
    expect(m.match(get('/public/../admin/x'))?.route.name).toBe('admin')
    expect(m.match(get('/public/a'))?.route.name).toBe('public')
    expect(m.match(get('/public/a'))?.route.name).toBe('public') // no lastIndex state from the g flag
  })

  it('rejects a regex route whose group does not decode', () => {
    const m = createMatcher([route('r', { pathRegex: '^/r/(?<v>[^/]+)$' }, 1), route('fallback', {}), route('wild', { path: '/*' }, 2)])
    expect(m.match(get('/r/%FF'))?.route.name).toBe('fallback') // '/*' fails too: its remainder does not decode
    expect(m.match(get('/r/%C3%BC'))?.route.name).toBe('wild')
  })
})

describe('fall-through on failing conditions', () => {
  const m = createMatcher([
    route('get-user', { path: '/users/:id', methods: ['GET', 'HEAD'] }),
    route('post-user', { path: '/users/:id', methods: ['post'] }),
    route('users-any', { path: '/users/*' }),
    route('fallback', { path: '/*', methods: ['GET'] }),
  ])

  it('picks the candidate whose method matches', () => {
    expect(m.match({ method: 'GET', path: '/users/1' })?.route.name).toBe('get-user')
    expect(m.match({ method: 'post', path: '/users/1' })?.route.name).toBe('post-user')
    expect(m.match({ method: 'DELETE', path: '/users/1' })).toMatchObject({ route: { name: 'users-any' }, params: { '*': '1' } })
    expect(m.match({ method: 'DELETE', path: '/other' })).toBeUndefined()
  })

  it('lists the methods a path allows, for a 405 answer', () => {
    const strict = createMatcher([route('a', { path: '/x/:id', methods: ['GET'] }), route('b', { path: '/x/*', methods: ['PUT', 'GET'] })])
    expect(strict.allowedMethods({ method: 'DELETE', path: '/x/1' })).toEqual(['GET', 'PUT'])
    expect(strict.allowedMethods({ method: 'DELETE', path: '/y' })).toEqual([])
    expect(m.allowedMethods({ method: 'DELETE', path: '/users/1' })).toEqual(['*', 'GET', 'HEAD', 'POST'])
    expect(strict.allowedMethods({ method: 'GET', path: '/../x' })).toEqual([])
  })

  it('falls through a failing host, header, query or payload condition to a less specific route', () => {
    const c = createMatcher([
      route('host', { path: '/a', host: 'a.example.com' }),
      route('header', { path: '/a', headers: { 'x-beta': '1' } }),
      route('query', { path: '/a', query: { v: '2' } }),
      route('payload', { path: '/a', payload: [{ op: 'x' }] }),
      route('param', { path: '/:p' }),
    ])
    expect(c.match(get('/a', { host: 'a.example.com' }))?.route.name).toBe('host')
    expect(c.match(get('/a', { headers: { 'x-beta': '1' } }))?.route.name).toBe('header')
    expect(c.match(get('/a', { query: 'v=2' }))?.route.name).toBe('query')
    expect(c.match(get('/a', { body: { op: 'x' } }))?.route.name).toBe('payload')
    expect(c.match(get('/a', { body: { op: 'y' }, query: 'v=3' }))?.route.name).toBe('param')
  })

  it('falls through a higher-priority candidate whose conditions fail', () => {
    const c = createMatcher([route('beta', { path: '/*', headers: { 'x-beta': true } }, 10), route('normal', { path: '/a' })])
    expect(c.match(get('/a'))?.route.name).toBe('normal')
    expect(c.match(get('/a', { headers: { 'x-beta': '' } }))?.route.name).toBe('beta')
  })
})

describe('host condition', () => {
  const m = createMatcher([
    route('api', { path: '/*', host: 'API.example.com' }),
    route('wild', { path: '/*', host: ['*.example.com', 'example.org.'] }),
    route('v6', { path: '/*', host: '[::1]' }),
  ])
  const host = (h: string | undefined, headers?: Record<string, string>): string | undefined =>
    m.match({ method: 'GET', path: '/', host: h, headers })?.route.name

  it('matches exact names case-insensitively, ignoring the port and a trailing dot', () => {
    expect(host('api.example.com')).toBe('api')
    expect(host('Api.Example.Com:8443')).toBe('api')
    expect(host('api.example.com.')).toBe('api')
    expect(host('example.org')).toBe('wild')
    expect(host('[::1]:8080')).toBe('v6')
  })

  it('matches a wildcard on any subdomain depth, not the apex or a look-alike', () => {
    expect(host('a.example.com')).toBe('wild')
    expect(host('a.b.example.com')).toBe('wild')
    expect(host('example.com')).toBeUndefined()
    expect(host('badexample.com')).toBeUndefined()
    expect(host('example.com.evil.net')).toBeUndefined()
  })

  it('falls back to the host header, and fails without any host', () => {
    expect(host(undefined, { host: 'x.example.com:80' })).toBe('wild')
    expect(host(undefined)).toBeUndefined()
    expect(host('')).toBeUndefined()
  })
})

describe('header and query conditions', () => {
  const m = createMatcher([
    route('all', {
      path: '/h',
      headers: { 'X-Tenant': 'acme', 'x-present': true, accept: /json/ },
      query: { page: /^\d+$/, flag: true, mode: 'full' },
    }),
  ])
  const ok = { 'x-tenant': 'acme', 'x-present': '', accept: 'application/json' }

  it('requires every header condition', () => {
    expect(m.match(get('/h', { headers: ok, query: 'page=2&flag&mode=full' }))?.route.name).toBe('all')
    expect(m.match(get('/h', { headers: { ...ok, 'x-tenant': 'Acme' }, query: 'page=2&flag&mode=full' }))).toBeUndefined()
    expect(m.match(get('/h', { headers: { ...ok, 'x-present': undefined }, query: 'page=2&flag&mode=full' }))).toBeUndefined()
    expect(m.match(get('/h', { headers: { ...ok, accept: 'text/html' }, query: 'page=2&flag&mode=full' }))).toBeUndefined()
    expect(m.match(get('/h', { query: 'page=2&flag&mode=full' }))).toBeUndefined()
  })

  it('joins a repeated header with ", " before testing it', () => {
    const r = createMatcher([route('r', { path: '/', headers: { via: 'a, b' } })])
    expect(r.match(get('/', { headers: { via: ['a', 'b'] } }))?.route.name).toBe('r')
  })

  it('requires every query condition, on the first decoded value', () => {
    const h = { headers: ok }
    expect(m.match(get('/h', { ...h, query: '?mode=full&flag=&page=10' }))?.route.name).toBe('all')
    expect(m.match(get('/h', { ...h, query: 'mode=ful%6C&flag&page=1' }))?.route.name).toBe('all')
    expect(m.match(get('/h', { ...h, query: 'mode=full&page=1' }))).toBeUndefined()
    expect(m.match(get('/h', { ...h, query: 'mode=full&flag&page=x' }))).toBeUndefined()
    expect(m.match(get('/h', { ...h, query: 'mode=lite&mode=full&flag&page=1' }))).toBeUndefined()
    expect(m.match(get('/h', h))).toBeUndefined()
  })

  it('does not keep RegExp state between requests', () => {
    const r = createMatcher([route('r', { path: '/', headers: { a: /x/g } })])
    for (let i = 0; i < 3; i++) expect(r.match(get('/', { headers: { a: 'x' } }))?.route.name).toBe('r')
  })
})

describe('payload condition', () => {
  const m = createMatcher([
    route('create', { path: '/rpc', methods: ['POST'], payload: [{ op: 'create', item: { id: 1, tags: ['a', 'b'] } }, { op: 'ping' }] }),
    route('scalar', { path: '/scalar', payload: ['1', 2, null, true] }),
    route('rpc', { path: '/rpc' }),
  ])
  const post = (path: string, body: unknown): string | undefined => m.match({ method: 'POST', path, body })?.route.name

  it('compares objects regardless of key order, nested', () => {
    expect(post('/rpc', { item: { tags: ['a', 'b'], id: 1 }, op: 'create' })).toBe('create')
    expect(post('/rpc', { op: 'ping' })).toBe('create')
    expect(post('/rpc', JSON.parse('{"op":"ping"}'))).toBe('create')
  })

  it('requires every key, no extra keys, and arrays in order', () => {
    expect(post('/rpc', { op: 'create', item: { id: 1, tags: ['b', 'a'] } })).toBe('rpc')
    expect(post('/rpc', { op: 'create', item: { id: 1 } })).toBe('rpc')
    expect(post('/rpc', { op: 'ping', extra: 1 })).toBe('rpc')
    expect(post('/rpc', { op: 'create', item: { id: 1, tags: ['a', 'b', 'c'] } })).toBe('rpc')
    expect(post('/rpc', [{ op: 'ping' }])).toBe('rpc')
  })

  it('tells numbers from strings and null from absent', () => {
    expect(post('/rpc', { op: 'create', item: { id: '1', tags: ['a', 'b'] } })).toBe('rpc')
    expect(post('/scalar', '1')).toBe('scalar')
    expect(post('/scalar', 1)).toBeUndefined()
    expect(post('/scalar', 2)).toBe('scalar')
    expect(post('/scalar', '2')).toBeUndefined()
    expect(post('/scalar', null)).toBe('scalar')
    expect(post('/scalar', true)).toBe('scalar')
    expect(post('/scalar', undefined)).toBeUndefined()
    expect(post('/rpc', { op: 'ping', gone: undefined })).toBe('create') // as JSON would see it
  })

  it('ignores bodies that are not plain JSON or nest too deep, without throwing', () => {
    expect(post('/rpc', new Map([['op', 'ping']]))).toBe('rpc')
    expect(post('/scalar', Number.NaN)).toBeUndefined()
    let deep: unknown = 1
    for (let i = 0; i < 10_000; i++) deep = [deep]
    expect(post('/rpc', deep)).toBe('rpc')
    const cyclic: Record<string, unknown> = { op: 'ping' }
    cyclic.self = cyclic
    expect(post('/rpc', cyclic)).toBe('rpc')
  })

  it('only applies the payload after the other conditions', () => {
    expect(m.match({ method: 'GET', path: '/rpc', body: { op: 'ping' } })?.route.name).toBe('rpc')
  })
})

describe('needsBody', () => {
  const m = createMatcher([
    route('rpc', { path: '/rpc', methods: ['POST'], payload: [{ op: 'ping' }] }),
    route('rpc-fallback', { path: '/rpc' }),
    route('static', { path: '/plain' }),
    route('payload-low', { path: '/*', payload: [1] }),
  ])

  it('is true when a payload route is the best candidate before the body is known', () => {
    expect(m.needsBody({ method: 'POST', path: '/rpc' })).toBe(true)
    expect(m.needsBody({ method: 'POST', path: '/other' })).toBe(true)
  })

  it('is false when a route without payload wins anyway, or nothing could match', () => {
    expect(m.needsBody({ method: 'GET', path: '/rpc' })).toBe(false)
    expect(m.needsBody({ method: 'POST', path: '/plain' })).toBe(false)
    expect(m.needsBody({ method: 'POST', path: '/../x' })).toBe(false)
  })

  it('is false without any payload route', () => {
    expect(createMatcher([route('a', { path: '/*' })]).needsBody(get('/x'))).toBe(false)
  })

  it('drives the two-step flow: match without body, then with it', () => {
    const input: MatchInput = { method: 'POST', path: '/rpc' }
    expect(m.match(input)?.route.name).toBe('rpc-fallback')
    expect(m.needsBody(input)).toBe(true)
    expect(m.match({ ...input, body: { op: 'ping' } })?.route.name).toBe('rpc')
    expect(m.match({ ...input, body: { op: 'other' } })?.route.name).toBe('rpc-fallback')
  })
})

describe('validation at createMatcher time', () => {
  const bad = (match: RouteMatch): (() => unknown) => () => createMatcher([route('ok', { path: '/' }), route('ok2', { path: '/x' }), route('bad', match)])

  it.each([
    ['users', /route "bad": match\.path: must be a string starting with "\/"/],
    ['/users/:id/:id', /route "bad": match\.path: "\/users\/:id\/:id" repeats the param name "id"/],
    ['/files/*rest/:rest', /route "bad": match\.path: .*"\*" that is not the last segment/],
    ['/files/*/x', /route "bad": match\.path: .*not the last segment/],
    ['/a/:x/*x', /repeats the param name "x"/],
    ['/files/a*', /"\*" inside a segment/],
    ['/users/:', /empty param name/],
    ['/users/:1d', /invalid param name "1d"/],
    ['/files/*re-st', /invalid wildcard name/],
    ['/a//b', /empty segment/],
    ['/a/../b', /has a "\.\." segment/],
    ['/a?b', /contains "\?"/],
    ['/a%zz', /malformed percent-encoding/],
  ])('rejects path %j naming the route', (path, message) => {
    expect(bad({ path })).toThrow(TypeError)
    expect(bad({ path })).toThrow(message)
  })

  it('rejects an invalid regex', () => {
    expect(bad({ pathRegex: '(unclosed' })).toThrow(/route "bad": match\.pathRegex: invalid regular expression/)
    expect(bad({ path: '/', pathRegex: '^/' })).toThrow(/route "bad": match: set either path or pathRegex/)
  })

  it('rejects duplicate route names', () => {
    expect(() => createMatcher([route('a', { path: '/' }), route('b', { path: '/b' }), route('a', { path: '/c' })])).toThrow(
      'route "a": name: duplicate route name (routes[0] and routes[2])',
    )
  })

  it('rejects bad conditions', () => {
    expect(bad({ methods: [] })).toThrow(/route "bad": match\.methods/)
    expect(bad({ methods: ['GET POST'] })).toThrow(/route "bad": match\.methods\[0\]: invalid method "GET POST"/)
    expect(bad({ host: 'api.example.com:8080' })).toThrow(/route "bad": match\.host: invalid host/)
    expect(bad({ host: ['ok.com', '*.'] })).toThrow(/route "bad": match\.host\[1\]/)
    expect(bad({ host: 'a.*.com' })).toThrow(/route "bad": match\.host/)
    expect(bad({ headers: { a: 1 as unknown as string } })).toThrow(/route "bad": match\.headers\.a/)
    expect(bad({ query: [] as unknown as Record<string, string> })).toThrow(/route "bad": match\.query/)
    expect(bad({ payload: [] })).toThrow(/route "bad": match\.payload/)
    expect(bad({ payload: [{ a: () => 1 }] })).toThrow(/route "bad": match\.payload\[0\]/)
    expect(bad({ payload: [Number.POSITIVE_INFINITY] })).toThrow(/route "bad": match\.payload\[0\]/)
    expect(() => createMatcher([{ ...route('p', { path: '/' }), priority: Number.NaN }])).toThrow(/route "p": priority: must be a finite number/)
    expect(() => createMatcher([{ name: '', match: {}, data: 1 }])).toThrow(/^routes\[0\]: name: must be a non-empty string$/)
    expect(() => createMatcher([route('a', { path: '/' })], { strictTrailingSlash: 'no' as unknown as boolean })).toThrow(
      /options\.strictTrailingSlash/,
    )
    expect(() => createMatcher([], { caseSensitive: 1 as unknown as boolean })).toThrow(/options\.caseSensitive/)
  })

  it('accepts an empty route list and matches nothing', () => {
    const m = createMatcher([])
    expect(m.match(get('/'))).toBeUndefined()
    expect(m.needsBody(get('/'))).toBe(false)
  })
})
