import { describe, expect, it } from 'vitest'
import { createMatcher, validateRoute, type RouteDefinition, type RouteMatch } from '../src/index.ts'

const def = (match: RouteMatch, extra: Partial<RouteDefinition<unknown>> = {}): RouteDefinition<unknown> => ({ name: 'r', match, data: null, ...extra })
const fields = (match: RouteMatch): string[] => validateRoute(def(match)).map((i) => i.field)

describe('validateRoute', () => {
  it('returns [] for a route createMatcher accepts', () => {
    const ok = def({
      path: '/users/:id/files/*rest',
      methods: ['GET', 'post'],
      host: ['api.example.com', '*.example.org', '[::1]', '10.0.0.1', 'example.net.'],
      headers: { 'x-tenant': /^[a-z]+$/, accept: true },
      query: { page: '1' },
      payload: [{ a: 1 }],
    })
    expect(validateRoute(ok)).toEqual([])
    expect(() => createMatcher([ok as RouteDefinition<null>])).not.toThrow()
  })

  it.each([
    ['/users/:', /empty param name/],
    ['/users/:id/:id', /"\/users\/:id\/:id" repeats the param name "id"/],
    ['/a/:x/*x', /repeats the param name "x"/],
    ['/a/*/b', /"\*" that is not the last segment/],
    ['/a/*rest/b', /"\*" that is not the last segment/],
    ['/a/b*', /"\*" inside a segment/],
    ['/users/:1d', /invalid param name "1d"/],
    ['/users/{id}', /contains "\{", which a request path cannot carry unencoded; write it percent-encoded \(%7B\), or use ":name"/],
    ['/a b', /a space or control character \(U\+0020\).*%20/],
    ['/caf\u00e9', /"\u00e9".*\(%C3%A9\)/],
    ['/a|b', /"\|".*\(%7C\)/],
    ['/a?x=1', /"\?" \(match the query with match\.query\)/],
    ['/a%zz', /malformed percent-encoding/],
    ['users', /must be a string starting with "\/"/],
  ])('reports path %j', (path, message) => {
    const issues = validateRoute(def({ path }))
    expect(issues.length).toBeGreaterThan(0)
    expect(issues.map((i) => i.field)).toEqual(issues.map(() => 'match.path'))
    expect(issues[0].message).toMatch(message)
  })

  it('reports every problem of one path', () => {
    expect(validateRoute(def({ path: '/:id/:id/*/x{' })).map((i) => i.message)).toEqual([
      '"/:id/:id/*/x{" contains "{", which a request path cannot carry unencoded; write it percent-encoded (%7B), or use ":name" for a param',
      '"/:id/:id/*/x{" repeats the param name "id"',
      '"/:id/:id/*/x{" has a "*" that is not the last segment; a wildcard may only end the pattern',
    ])
  })

  it('accepts a trailing "//" only without strictTrailingSlash', () => {
    expect(validateRoute(def({ path: '/a//' }))).toHaveLength(1)
    expect(validateRoute(def({ path: '/a//' }), { strictTrailingSlash: false })).toEqual([])
  })

  it('reports regex syntax errors and unsafe regexes', () => {
    expect(validateRoute(def({ pathRegex: '(unclosed' }))).toEqual([{ field: 'match.pathRegex', message: expect.stringMatching(/^invalid regular expression/) }])
    expect(validateRoute(def({ pathRegex: '^/(a+)+$' }))).toEqual([
      { field: 'match.pathRegex', message: expect.stringMatching(/^"\^\/\(a\+\)\+\$" repeats a group/) },
    ])
    expect(fields({ pathRegex: '' })).toEqual(['match.pathRegex'])
    expect(fields({ path: '/', pathRegex: '^/' })).toEqual(['match'])
  })

  it.each([
    ['*.*.example.com', /"\*" may only be the whole first label/],
    ['exa mple.com', /only letters, digits/],
    ['*example.com', /"\*" may only be the whole first label/],
    ['a.*.com', /"\*" may only be the whole first label/],
    ['*', /"\*" may only be the whole first label/],
    ['*.', /empty label/],
    ['a..b.com', /empty label/],
    ['-a.example.com', /starts or ends with "-"/],
    ['x'.repeat(64) + '.com', /longer than 63/],
    ['example.com:99999', /":99999" is not a port \(0-65535\)/],
    ['example.com:8080', /ports are ignored in matching/],
    ['example.com:', /":" is not a port/],
    ['https://example.com', /is not a port|only letters/],
    ['b\u00fccher.de', /ASCII \(xn--\) form/],
    ['[::1]:99999', /is not a port/],
    ['[0:0::1]', /canonical form "\[::1\]"/],
    ['[zz::1]', /invalid IPv6 host/],
  ])('reports host %j', (host, message) => {
    expect(validateRoute(def({ host }))).toEqual([{ field: 'match.host', message: expect.stringMatching(message) }])
  })

  it('names the offending element of a host list', () => {
    expect(validateRoute(def({ host: ['ok.example.com', '*example.com', 'fine.org', 'bad host'] })).map((i) => i.field)).toEqual([
      'match.host[1]',
      'match.host[3]',
    ])
    expect(fields({ host: [] })).toEqual(['match.host'])
  })

  it('reports bad method names', () => {
    expect(validateRoute(def({ methods: ['GET', 'GET POST', '', 'DELETE', 7 as unknown as string] }))).toEqual([
      { field: 'match.methods[1]', message: 'invalid method "GET POST"' },
      { field: 'match.methods[2]', message: 'invalid method ""' },
      { field: 'match.methods[4]', message: 'invalid method 7' },
    ])
    expect(fields({ methods: [] })).toEqual(['match.methods'])
  })

  it('reports header and query conditions by name', () => {
    expect(
      validateRoute(def({ headers: { 'x-tenant': /(a|a)*/, 'bad name': 'x', ok: true, n: 1 as unknown as string }, query: { q: /(?=.*x)/ } })),
    ).toEqual([
      { field: 'match.headers.x-tenant', message: expect.stringMatching(/^regex \/\(a\|a\)\*\/ repeats a group/) },
      { field: 'match.headers.bad name', message: '"bad name" is not a valid header name' },
      { field: 'match.headers.n', message: 'must be true, a string or a RegExp' },
      { field: 'match.query.q', message: expect.stringMatching(/lookahead or lookbehind containing a quantifier/) },
    ])
    expect(fields({ headers: [] as unknown as Record<string, string> })).toEqual(['match.headers'])
    expect(fields({ query: { '': 'x' } })).toEqual(['match.query'])
  })

  it('reports name, priority, match and payload problems, all at once', () => {
    expect(validateRoute({ name: '', match: { path: 'x', payload: [] }, priority: Number.NaN, data: 1 })).toEqual([
      { field: 'name', message: 'must be a non-empty string' },
      { field: 'priority', message: 'must be a finite number' },
      { field: 'match.path', message: 'must be a string starting with "/"' },
      { field: 'match.payload', message: 'must be a non-empty array of JSON values' },
    ])
    expect(validateRoute({ name: 'm', match: null as unknown as RouteMatch, data: 1 })).toEqual([{ field: 'match', message: 'must be an object' }])
    expect(validateRoute(null as unknown as RouteDefinition<unknown>)).toEqual([{ field: '', message: 'must be an object' }])
    expect(fields({ payload: [{ ok: 1 }, () => 1] })).toEqual(['match.payload[1]'])
  })

  it('is what createMatcher throws, every problem in one message', () => {
    const route = def({ path: '/users/:id/:id', host: '*example.com', methods: ['GE T'] }, { name: 'users' }) as RouteDefinition<null>
    const issues = validateRoute(route)
    expect(issues.map((i) => i.field)).toEqual(['match.path', 'match.methods[0]', 'match.host'])
    expect(() => createMatcher([route])).toThrow(TypeError)
    expect(() => createMatcher([route])).toThrow(`route "users": ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`)
  })
})
