import { describe, expect, it } from 'vitest'
import { createMatcher, normalizePath } from '../src/index.ts'

describe('normalizePath', () => {
  it.each([
    ['/', '/'],
    ['/users', '/users'],
    ['/users/', '/users/'],
    ['/file.json', '/file.json'],
    ['/a/.hidden', '/a/.hidden'],
    ['/a/..b', '/a/..b'],
  ])('keeps the clean path %s as %s (same string)', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected)
  })

  it.each([
    ['/%61dmin', '/admin'],
    ['/%41%7a%30-%2E%5f%7E', '/Az0-._~'],
    ['/a%2fb', '/a%2Fb'], // reserved: stays encoded, upper-case hex
    ['/a%5cb', '/a%5Cb'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
  ])('decodes only unreserved escapes: %s → %s', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected)
  })

  it.each([
    ['/public/../admin', '/admin'],
    ['/public/./../admin', '/admin'],
    ['/a/b/../../admin', '/admin'],
    ['/a/./b', '/a/b'],
    ['/a/.', '/a/'],
    ['/a/..', '/'],
    ['/.', '/'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/public/%2E./admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['/public/%2e/admin', '/public/admin'],
  ])('resolves dot segments (RFC 3986 §5.2.4): %s → %s', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected)
  })

  it.each([
    ['//admin', '/admin'],
    ['/a//b', '/a/b'],
    ['/a///', '/a/'],
    ['///', '/'],
    ['/a//b/%2e%2e/c;x=1', '/a/c;x=1'], // the .. removes b either way
    ['/a//b/..', '/a/'],
  ])('collapses empty segments, keeps a trailing slash: %s → %s', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected)
  })

  it('never turns %2F, %5C or a backslash into a separator', () => {
    expect(normalizePath('/public%2Fadmin')).toBe('/public%2Fadmin')
    expect(normalizePath('/public\\admin')).toBe('/public\\admin')
    expect(normalizePath('/a/b%5Cc')).toBe('/a/b%5Cc')
  })

  it.each([
    ['', 'empty'],
    ['users', 'relative'],
    ['*', 'asterisk-form'],
    ['http://x/a', 'absolute-form'],
    ['/a\0b', 'NUL'],
    ['/a%00b', '%00'],
    ['/a\nb', 'control character'],
    ['/a\x7fb', 'DEL'],
    ['/a%', 'truncated escape'],
    ['/a%2', 'truncated escape'],
    ['/a%zz', 'non-hex escape'],
    ['/a%g0', 'non-hex escape'],
    ['/..', '.. above root'],
    ['/a/../..', '.. above root'],
    ['/%2e%2e/etc/passwd', 'encoded .. above root'],
    ['/a/../../b', '.. above root'],
    ['/public/..%2Fadmin', '..%2F hidden dot segment'],
    ['/public/..%2fadmin', '..%2f hidden dot segment'],
    ['/public/%2e%2e%2fadmin', 'fully encoded ../'],
    ['/public/..\\admin', '..\\ hidden dot segment'],
    ['/public/..%5Cadmin', '..%5C hidden dot segment'],
    ['/public/x%2F..', 'trailing %2F..'],
    ['/a//../admin', '.. removing an empty segment (origins disagree)'],
    ['//..', '.. removing an empty segment'],
    ['/public/..;/admin', '..; (Tomcat drops ;params)'],
    ['/public/..;jsessionid=1/admin', '..;param'],
    ['/public/.;x/admin', '.;param'],
    ['/public/..%3B/admin', '..%3B'],
    ['/public/%2e%2e%3bx/admin', 'encoded ..;'],
    ['/a?b', 'query in path'],
    ['/a#b', 'fragment'],
  ])('refuses %j (%s)', (raw) => {
    expect(normalizePath(raw)).toBeUndefined()
  })

  it('keeps ordinary ; parameters and dots inside names', () => {
    expect(normalizePath('/a;v=1/b')).toBe('/a;v=1/b')
    expect(normalizePath('/a/x;..')).toBe('/a/x;..')
    expect(normalizePath('/a/.../b')).toBe('/a/.../b')
    expect(normalizePath('/a/x..%2Fy')).toBe('/a/x..%2Fy')
  })

  it('refuses a non-string without throwing', () => {
    expect(normalizePath(undefined as unknown as string)).toBeUndefined()
  })
})

describe('matching uses the normalised path', () => {
  const matcher = createMatcher([
    { name: 'admin', match: { path: '/admin/*' }, data: 'protected' },
    { name: 'admin-exact', match: { path: '/admin' }, data: 'protected' },
    { name: 'public', match: { path: '/public/*' }, data: 'open' },
    { name: 'files', match: { path: '/files/:name' }, data: 'files' },
  ])
  const route = (path: string): string | undefined => matcher.match({ method: 'GET', path })?.route.name

  it.each([
    ['/public/../admin', 'admin-exact'],
    ['/public/../admin/x', 'admin'],
    ['/public/%2e%2e/admin/x', 'admin'],
    ['/%61dmin', 'admin-exact'],
    ['/%61dmin/secret', 'admin'],
    ['//admin/secret', 'admin'],
    ['/public/./../admin/', 'admin'],
  ])('%s goes to %s, never to the public route', (path, expected) => {
    expect(route(path)).toBe(expected)
  })

  it('matches nothing for a path normalizePath refuses', () => {
    expect(route('/public/..%2Fadmin')).toBeUndefined()
    expect(route('/public/%00')).toBeUndefined()
    expect(route('/../admin')).toBeUndefined()
  })

  it('keeps an encoded slash inside one param, decoded', () => {
    expect(matcher.match({ method: 'GET', path: '/files/a%2Fb' })?.params).toEqual({ name: 'a/b' })
  })

  it('matches a static pattern written with escapes against its normalised form', () => {
    const m = createMatcher([{ name: 'tilde', match: { path: '/%7euser/%2fx' }, data: 1 }])
    expect(m.match({ method: 'GET', path: '/~user/%2Fx' })?.route.name).toBe('tilde')
    expect(m.match({ method: 'GET', path: '/%7Euser/%2fx' })?.route.name).toBe('tilde')
  })
})
