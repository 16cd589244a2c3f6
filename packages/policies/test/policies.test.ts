import { describe, expect, it } from 'vitest'
import { compose, ConfigError, type Exchange } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { builtinPolicies, headers, headersPolicy, REQUEST_ID_STATE, requestId, requestIdPolicy, rewrite, rewritePolicy, rewriteTarget } from '../src/index.ts'

const answer = (status = 200) => (ex: Exchange) => ex.respond(status, { server: 'backend', 'x-keep': '1' }, 'ok')

describe('headers', () => {
  it('edits the upstream request and the response, error responses included', async () => {
    const layer = headers({ request: { set: { 'X-From': 'gw' }, remove: ['Cookie'] }, response: { set: { 'x-served-by': 'sb' }, remove: ['Server'] } })
    const ex = createTestExchange({ headers: { cookie: 'a=1' } })
    await compose([layer], { terminal: answer() })(ex)
    expect(ex.upstreamHeaders).toEqual({ cookie: undefined, 'x-from': 'gw' })
    expect(ex.sent?.headers).toMatchObject({ 'x-served-by': 'sb', 'x-keep': '1' })
    expect(ex.sent?.headers.server).toBeUndefined()
    const failed = createTestExchange()
    await compose([layer], { terminal: async () => Promise.reject(new Error('boom')) })(failed)
    expect(failed.sent?.status).toBe(500)
    expect(failed.sent?.headers['x-served-by']).toBe('sb')
  })

  it('parses config with key paths', () => {
    expect(headersPolicy.parse({ request: { set: { 'x-a': 'b' } } }, 'policies.h')).toEqual({ request: { set: { 'x-a': 'b' }, remove: [] }, response: undefined })
    expect(() => headersPolicy.parse({ requestt: {} }, 'policies.h')).toThrow(ConfigError)
    expect(() => headersPolicy.parse({ request: { set: { 'bad name': 'x' } } }, 'policies.h')).toThrow(/policies\.h\.request\.set\.bad name: expected a valid header name/)
    expect(() => headersPolicy.parse({ response: { set: { 'x-a': 'line\r\nbreak' } } }, 'policies.h')).toThrow(/without CR, LF or NUL/)
  })
})

describe('rewrite', () => {
  it.each([
    ['/api/users?x=1', { stripPrefix: '/api' }, '/users?x=1'],
    ['/api', { stripPrefix: '/api' }, '/'],
    ['/apix/users', { stripPrefix: '/api' }, '/apix/users'],
    ['/api?x', { stripPrefix: '/api' }, '/?x'],
    ['/users', { addPrefix: '/v2/' }, '/v2/users'],
    ['/api/users', { stripPrefix: '/api/', addPrefix: '/v2' }, '/v2/users'],
  ])('%s with %o → %s', (target, options, expected) => {
    expect(rewriteTarget(target, options)).toBe(expected)
  })

  it('changes only the upstream target', async () => {
    const ex = createTestExchange({ target: '/api/x?y=1' })
    await compose([rewrite({ stripPrefix: '/api' })], { terminal: answer() })(ex)
    expect(ex.upstreamTarget).toBe('/x?y=1')
    expect(ex.request.target).toBe('/api/x?y=1')
  })

  it('runs in the route phase only and needs a prefix', () => {
    expect(rewritePolicy.phases).toEqual(['route'])
    expect(() => rewritePolicy.parse({}, 'policies.r')).toThrow(/policies\.r: expected stripPrefix or addPrefix/)
    expect(() => rewritePolicy.parse({ stripPrefix: 'api' }, 'policies.r')).toThrow(/policies\.r\.stripPrefix: expected a path prefix starting with \//)
  })
})

describe('request-id', () => {
  it('generates an id, sends it upstream and back, and stores it for later layers', async () => {
    const ex = createTestExchange()
    await compose([requestId({ generate: () => 'id-1' })], { terminal: answer(502) })(ex)
    expect(ex.upstreamHeaders['x-request-id']).toBe('id-1')
    expect(ex.sent?.headers['x-request-id']).toBe('id-1')
    expect(ex.state.get(REQUEST_ID_STATE)).toBe('id-1')
  })

  it('keeps a safe incoming id, replaces an unsafe one, and can be told to trust none', async () => {
    const keep = createTestExchange({ headers: { 'x-request-id': 'abc.123' } })
    await compose([requestId({ generate: () => 'new' })], { terminal: answer() })(keep)
    expect(keep.sent?.headers['x-request-id']).toBe('abc.123')
    const unsafe = createTestExchange({ headers: { 'x-request-id': 'a b\u0000' } })
    await compose([requestId({ generate: () => 'new' })], { terminal: answer() })(unsafe)
    expect(unsafe.sent?.headers['x-request-id']).toBe('new')
    const distrust = createTestExchange({ headers: { 'x-request-id': 'abc' } })
    await compose([requestId({ generate: () => 'new', trustIncoming: false })], { terminal: answer() })(distrust)
    expect(distrust.sent?.headers['x-request-id']).toBe('new')
  })

  it('parses its options', () => {
    expect(requestIdPolicy.parse({ header: 'X-Correlation-Id' }, 'p')).toEqual({ header: 'x-correlation-id', trustIncoming: true })
    expect(() => requestIdPolicy.parse({ header: 'bad header' }, 'p')).toThrow(/p\.header: expected a valid header name/)
  })
})

it('builtinPolicies lists every built-in type once', () => {
  expect(builtinPolicies.map((p) => p.name).sort()).toEqual(['body-limit', 'cors', 'headers', 'ip-filter', 'json-envelope', 'maintenance', 'rate-limit', 'request-id', 'rewrite', 'security-headers', 'token-budget'])
})
