import { describe, expect, it } from 'vitest'
import {
  assessStored,
  currentAge,
  freshnessLifetime,
  isStorable,
  notModified,
  parseCacheControl,
  staleWindows,
  varyKey,
  varyNames,
  type PolicyResponse,
  type Usability,
} from '../src/index.ts'

const T0 = Date.parse('Mon, 23 Nov 2026 12:00:00 GMT')
const httpDate = (ms: number): string => new Date(ms).toUTCString()
const res = (status: number, headers: Record<string, string>, at = T0): PolicyResponse => ({
  status,
  headers: { date: httpDate(at), ...headers },
  requestTime: at,
  responseTime: at,
})
const GET = { method: 'GET', headers: {} }

describe('parseCacheControl', () => {
  it('lowercases names, unquotes values, keeps commas inside quotes, first occurrence wins', () => {
    expect({ ...parseCacheControl('Public, MAX-AGE=60, no-cache="set-cookie, x-a", max-age=5') }).toEqual({
      public: true,
      'max-age': '60',
      'no-cache': 'set-cookie, x-a',
    })
    expect({ ...parseCacheControl(['max-age=1', 's-maxage=2']) }).toEqual({ 'max-age': '1', 's-maxage': '2' })
    expect({ ...parseCacheControl(undefined) }).toEqual({})
  })
})

describe('isStorable (shared cache, RFC 9111 §3)', () => {
  const cases: [string, { method?: string; req?: Record<string, string> }, PolicyResponse, boolean][] = [
    ['max-age', {}, res(200, { 'cache-control': 'max-age=60' }), true],
    ['heuristic 200 without directives', {}, res(200, {}), true],
    ['heuristic 404', {}, res(404, {}), true],
    ['302 without explicit freshness', {}, res(302, {}), false],
    ['302 with max-age', {}, res(302, { 'cache-control': 'max-age=60' }), true],
    ['500 with Expires', {}, res(500, { expires: httpDate(T0 + 60_000) }), true],
    ['206 never', {}, res(206, { 'cache-control': 'max-age=60' }), false],
    ['304 never', {}, res(304, { 'cache-control': 'max-age=60' }), false],
    ['POST never', { method: 'POST' }, res(200, { 'cache-control': 'max-age=60' }), false],
    ['HEAD is not stored (served from GET entries)', { method: 'HEAD' }, res(200, { 'cache-control': 'max-age=60' }), false],
    ['no-store', {}, res(200, { 'cache-control': 'no-store, max-age=60' }), false],
    ['private', {}, res(200, { 'cache-control': 'private, max-age=60' }), false],
    ['request no-store', { req: { 'cache-control': 'no-store' } }, res(200, { 'cache-control': 'max-age=60' }), false],
    ['Authorization alone', { req: { authorization: 'Bearer x' } }, res(200, { 'cache-control': 'max-age=60' }), false],
    ['Authorization + public', { req: { authorization: 'Bearer x' } }, res(200, { 'cache-control': 'public, max-age=60' }), true],
    ['Authorization + s-maxage', { req: { authorization: 'Bearer x' } }, res(200, { 'cache-control': 's-maxage=60' }), true],
    ['Authorization + must-revalidate', { req: { authorization: 'Bearer x' } }, res(200, { 'cache-control': 'must-revalidate, max-age=60' }), true],
    ['Set-Cookie', {}, res(200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=1' }), false],
    ['Vary: *', {}, res(200, { 'cache-control': 'max-age=60', vary: '*' }), false],
    ['no-cache is storable (revalidated on use)', {}, res(200, { 'cache-control': 'no-cache', etag: '"a"' }), true],
    // RFC 9111 §3, §5.2.2.3 must-understand
    ['must-understand + no-store on an understood status', {}, res(200, { 'cache-control': 'must-understand, no-store, max-age=60' }), true],
    ['must-understand on an unknown status', {}, res(299, { 'cache-control': 'must-understand, max-age=60' }), false],
    ['must-understand + no-store on an unknown status', {}, res(299, { 'cache-control': 'must-understand, no-store, max-age=60' }), false],
    ['unknown status with explicit freshness, no must-understand', {}, res(299, { 'cache-control': 'max-age=60' }), true],
    ['status above 599 never', {}, res(600, { 'cache-control': 'max-age=60' }), false],
    ['status 0 never', {}, res(0, { 'cache-control': 'max-age=60' }), false],
    ['1xx never', {}, res(103, { 'cache-control': 'max-age=60' }), false],
  ]
  it.each(cases)('%s', (_name, r, response, expected) => {
    expect(isStorable({ method: r.method ?? 'GET', headers: r.req ?? {} }, response)).toBe(expected)
  })
})

describe('freshnessLifetime (RFC 9111 §4.2.1)', () => {
  const cases: [string, PolicyResponse, number, number?][] = [
    ['s-maxage beats max-age', res(200, { 'cache-control': 'max-age=60, s-maxage=5' }), 5000],
    ['max-age beats Expires', res(200, { 'cache-control': 'max-age=60', expires: httpDate(T0 + 5000) }), 60_000],
    ['Expires minus Date', res(200, { expires: httpDate(T0 + 30_000) }), 30_000],
    ['invalid Expires means stale', res(200, { expires: '0' }), 0],
    ['malformed max-age means stale', res(200, { 'cache-control': 'max-age=abc' }), 0],
    ['heuristic: 10% of Date − Last-Modified', res(200, { 'last-modified': httpDate(T0 - 100_000) }), 10_000],
    ['heuristic capped at 24 h', res(200, { 'last-modified': httpDate(T0 - 1000 * 86_400_000) }), 86_400_000],
    ['no heuristic for 302', res(302, { 'last-modified': httpDate(T0 - 100_000) }), 0],
    ['heuristic status without Last-Modified', res(200, {}), 0],
    ['defaultTtlMs replaces the heuristic', res(200, { 'last-modified': httpDate(T0 - 100_000) }), 7000, 7000],
    ['defaultTtlMs never overrides max-age', res(200, { 'cache-control': 'max-age=2' }), 2000, 7000],
    ['defaultTtlMs never applies to non-heuristic statuses', res(302, {}), 0, 7000],
  ]
  it.each(cases)('%s', (_name, response, expected, defaultTtlMs) => {
    expect(freshnessLifetime(response, { defaultTtlMs })).toBe(expected)
  })
})

describe('currentAge (RFC 9111 §4.2.3)', () => {
  it('adds resident time to the Age header', () => {
    expect(currentAge(res(200, { age: '10' }), T0 + 5000)).toBe(15_000)
  })
  it('uses apparent age when Date lies in the past', () => {
    const r = { ...res(200, {}, T0 - 20_000), requestTime: T0, responseTime: T0 }
    expect(currentAge(r, T0)).toBe(20_000)
  })
  it('adds the response delay to the Age header', () => {
    const r: PolicyResponse = { status: 200, headers: { date: httpDate(T0), age: '3' }, requestTime: T0, responseTime: T0 + 2000 }
    expect(currentAge(r, T0 + 2000)).toBe(5000)
  })
  it('ignores a malformed Age', () => {
    expect(currentAge(res(200, { age: 'soon' }), T0 + 1000)).toBe(1000)
  })
  // RFC 9111 §5.1: a list-based Age counts by its first member; an invalid one is ignored.
  it.each([
    ['10, 20', 10_000],
    ['10,20', 10_000],
    [' 7 ', 7_000],
    ['-1', 0],
    ['1.5', 0],
    ['abc', 0],
    ['', 0],
    ['abc, 10', 0],
    ['1e3', 0],
    ['99999999999999', 2 ** 31 * 1000],
  ])('Age: %j counts as %d ms', (age, expected) => {
    expect(currentAge(res(200, { age }), T0)).toBe(expected)
  })
  it('uses the first of repeated Age fields', () => {
    const r: PolicyResponse = { status: 200, headers: { date: httpDate(T0), age: ['4', '30'] }, requestTime: T0, responseTime: T0 }
    expect(currentAge(r, T0)).toBe(4000)
  })
})

describe('assessStored', () => {
  const swr = res(200, { 'cache-control': 'max-age=10, stale-while-revalidate=20, stale-if-error=100' })
  const cases: [string, Record<string, string>, PolicyResponse, number, Usability][] = [
    ['fresh', {}, res(200, { 'cache-control': 'max-age=10' }), 9_000, 'fresh'],
    ['stale past max-age', {}, res(200, { 'cache-control': 'max-age=10' }), 10_000, 'revalidate'],
    ['Age header counts', {}, res(200, { 'cache-control': 'max-age=10', age: '9' }), 2_000, 'revalidate'],
    ['no-cache response always revalidates', {}, res(200, { 'cache-control': 'no-cache, max-age=100' }), 0, 'revalidate'],
    ['client no-cache', { 'cache-control': 'no-cache' }, res(200, { 'cache-control': 'max-age=100' }), 0, 'revalidate'],
    ['client Pragma: no-cache', { pragma: 'no-cache' }, res(200, { 'cache-control': 'max-age=100' }), 0, 'revalidate'],
    ['Pragma ignored next to Cache-Control', { pragma: 'no-cache', 'cache-control': 'max-stale' }, res(200, { 'cache-control': 'max-age=100' }), 0, 'fresh'],
    ['client max-age=0', { 'cache-control': 'max-age=0' }, res(200, { 'cache-control': 'max-age=100' }), 0, 'revalidate'],
    ['client max-age=5 on an 8 s old response', { 'cache-control': 'max-age=5' }, res(200, { 'cache-control': 'max-age=100' }), 8_000, 'revalidate'],
    ['client max-age=5 on a 3 s old response', { 'cache-control': 'max-age=5' }, res(200, { 'cache-control': 'max-age=100' }), 3_000, 'fresh'],
    ['client min-fresh', { 'cache-control': 'min-fresh=50' }, res(200, { 'cache-control': 'max-age=100' }), 60_000, 'revalidate'],
    ['client max-stale', { 'cache-control': 'max-stale=30' }, res(200, { 'cache-control': 'max-age=10' }), 30_000, 'stale'],
    ['client max-stale exceeded', { 'cache-control': 'max-stale=30' }, res(200, { 'cache-control': 'max-age=10' }), 50_000, 'revalidate'],
    ['max-stale vs must-revalidate', { 'cache-control': 'max-stale' }, res(200, { 'cache-control': 'max-age=10, must-revalidate' }), 50_000, 'revalidate'],
    ['inside stale-while-revalidate', {}, swr, 25_000, 'stale-while-revalidate'],
    ['past stale-while-revalidate', {}, swr, 31_000, 'revalidate'],
    ['swr disabled by s-maxage', {}, res(200, { 'cache-control': 's-maxage=10, stale-while-revalidate=20' }), 15_000, 'revalidate'],
    ['max-stale vs proxy-revalidate (§5.2.2.8)', { 'cache-control': 'max-stale' }, res(200, { 'cache-control': 'max-age=10, proxy-revalidate' }), 50_000, 'revalidate'],
    ['max-stale vs s-maxage (§5.2.2.10)', { 'cache-control': 'max-stale' }, res(200, { 'cache-control': 's-maxage=10' }), 50_000, 'revalidate'],
    ['max-stale vs no-cache (§5.2.2.4)', { 'cache-control': 'max-stale' }, res(200, { 'cache-control': 'no-cache, max-age=10' }), 50_000, 'revalidate'],
    ['Authorization without permission', { authorization: 'x' }, res(200, { 'cache-control': 'max-age=10' }), 0, 'unusable'],
    ['Authorization with public', { authorization: 'x' }, res(200, { 'cache-control': 'public, max-age=10' }), 0, 'fresh'],
  ]
  it.each(cases)('%s', (_name, headers, stored, elapsed, expected) => {
    expect(assessStored({ method: 'GET', headers }, stored, T0 + elapsed).usability).toBe(expected)
  })

  it('stale-if-error holds inside its window only, and never with must-revalidate', () => {
    expect(assessStored(GET, swr, T0 + 50_000).staleIfError).toBe(true)
    expect(assessStored(GET, swr, T0 + 111_000).staleIfError).toBe(false)
    const strict = res(200, { 'cache-control': 'max-age=10, must-revalidate, stale-if-error=100' })
    expect(assessStored(GET, strict, T0 + 50_000).staleIfError).toBe(false)
    expect(staleWindows(strict.headers)).toEqual({ whileRevalidateMs: 0, ifErrorMs: 0 })
  })
})

describe('Vary', () => {
  it('lists names sorted and lowercased; * never matches', () => {
    expect(varyNames({ vary: 'Accept-Language, accept-encoding' })).toEqual(['accept-encoding', 'accept-language'])
    expect(varyNames({ vary: 'accept, *' })).toBe('*')
    expect(varyKey('*', {})).toBeUndefined()
  })
  it('normalises listed values', () => {
    const names = ['accept-encoding', 'x-tenant']
    const a = varyKey(names, { 'accept-encoding': 'br,  GZIP', 'x-tenant': 'A' })
    expect(varyKey(names, { 'accept-encoding': 'gzip , br', 'x-tenant': 'A' })).toBe(a)
    expect(varyKey(names, { 'accept-encoding': 'gzip, br', 'x-tenant': 'a' })).not.toBe(a)
  })
  it('tells an absent header from an empty one', () => {
    expect(varyKey(['x-a'], {})).not.toBe(varyKey(['x-a'], { 'x-a': '' }))
  })
})

describe('notModified', () => {
  const stored = { etag: 'W/"v1"', 'last-modified': httpDate(T0 - 60_000), date: httpDate(T0) }
  const cases: [string, Record<string, string>, boolean][] = [
    ['weak comparison', { 'if-none-match': '"v1"' }, true],
    ['in a list', { 'if-none-match': '"x", W/"v1"' }, true],
    ['*', { 'if-none-match': '*' }, true],
    ['different tag', { 'if-none-match': '"v2"' }, false],
    ['If-None-Match wins over If-Modified-Since', { 'if-none-match': '"v2"', 'if-modified-since': httpDate(T0) }, false],
    ['not modified since', { 'if-modified-since': httpDate(T0 - 30_000) }, true],
    ['modified since', { 'if-modified-since': httpDate(T0 - 120_000) }, false],
    ['garbage date', { 'if-modified-since': 'yesterday-ish' }, false],
  ]
  it.each(cases)('%s', (_name, headers, expected) => {
    expect(notModified(headers, stored)).toBe(expected)
  })
})
