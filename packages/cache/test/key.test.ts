import { describe, expect, it } from 'vitest'
import { cacheUrl, purgeUrl } from '../src/key.ts'

describe('cache key URL (built from parsed parts)', () => {
  it('lowercases the host and drops the default port (RFC 3986 §6.2.2.1, §6.2.3)', () => {
    expect(cacheUrl('http', 'API.Example:80', '/a?b=1')).toBe('http://api.example/a?b=1')
    expect(cacheUrl('http', 'api.example:', '/a')).toBe('http://api.example/a')
    expect(cacheUrl('https', 'api.example:443', '/a')).toBe('https://api.example/a')
    expect(cacheUrl('https', 'api.example:80', '/a')).toBe('https://api.example:80/a')
    expect(cacheUrl('http', 'api.example:08080', '/a')).toBe('http://api.example:8080/a')
    expect(cacheUrl('http', '[::1]:80', '/a')).toBe('http://[::1]/a')
    expect(cacheUrl('http', '[::1]:8080', '/a')).toBe('http://[::1]:8080/a')
    expect(cacheUrl('http', 'xn--bcher-kva.example%2e', '/')).toBe('http://xn--bcher-kva.example%2e/')
  })

  it('refuses a Host outside RFC 3986 authority syntax, so Host "a:8080/cache" + "/x" never meets "a:8080" + "/cache/x"', () => {
    const good = cacheUrl('http', 'localhost:8080', '/cache/x')
    expect(good).toBe('http://localhost:8080/cache/x')
    expect(cacheUrl('http', 'localhost:8080/cache', '/x')).toBeUndefined()
    for (const host of ['a/b', 'a?b', 'a#b', 'user@a', 'a b', 'a\\b', 'a:80:80', 'a:x', 'a:99999', '[::1', '[::1]x', 'a%zz', 'a\r\nb']) {
      expect(cacheUrl('http', host, '/x'), host).toBeUndefined()
    }
  })

  it('refuses targets that are not origin-form', () => {
    expect(cacheUrl('http', 'a', 'http://b/x')).toBeUndefined()
    expect(cacheUrl('http', 'a', '*')).toBeUndefined()
    expect(cacheUrl('http', 'a', '/x y')).toBeUndefined()
    expect(cacheUrl('http', 'a', '/x#f')).toBeUndefined()
  })

  it('maps purge URLs and prefixes onto the same layout', () => {
    expect(purgeUrl('http://API.local:80/users/1', false)).toBe('http://api.local/users/1')
    expect(purgeUrl('http://api.local', false)).toBe('http://api.local/')
    expect(purgeUrl('HTTPS://api.local:443', true)).toBe('https://api.local')
    expect(purgeUrl('not a url', true)).toBe('not a url')
  })
})
