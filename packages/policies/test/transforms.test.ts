import { describe, expect, it } from 'vitest'
import { compose, ConfigError, type Exchange, type UpstreamResponse } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { compileHeaderTemplate, headers, headersPolicy } from '../src/headers/index.ts'
import { rewrite, rewritePolicy, rewriteRegexIssue, rewriteTarget } from '../src/rewrite/index.ts'
import { securityHeaders, securityHeaderFields, securityHeadersPolicy } from '../src/security-headers/index.ts'
import { jsonEnvelope, jsonEnvelopePolicy } from '../src/json-envelope/index.ts'
import { BODY_LIMIT_STATE, bodyLimit, bodyLimitPolicy } from '../src/body-limit/index.ts'
import { REQUEST_ID_STATE, requestId } from '../src/request-id/index.ts'

const answer = (status = 200, h: Record<string, string | string[]> = { server: 'backend' }) => (ex: Exchange) => ex.respond(status, h, 'ok')
const enc = (s: string) => new TextEncoder().encode(s)

function upstreamOf(status: number, h: Record<string, string>, chunks: Array<string | Uint8Array>, seen?: { cancelled: boolean; pulled: number }): () => UpstreamResponse {
  return () => ({
    status,
    headers: { ...h },
    body: (async function* () {
      for (const c of chunks) {
        if (seen) seen.pulled++
        yield typeof c === 'string' ? enc(c) : c
      }
    })(),
    cancel() {
      if (seen) seen.cancelled = true
    },
  })
}

describe('headers: templates, add, rename', () => {
  it('expands request-time placeholders towards the upstream', async () => {
    const layer = headers({
      request: {
        set: { 'x-client': '{client.ip}', 'x-route': '{route.name}/{route.params.id}', 'x-rid': '{request.id}', 'x-echo': '{request.header.x-foo}', 'x-lit': '{{x}}' },
      },
    })
    const ex = createTestExchange({ headers: { 'x-foo': 'bar' }, clientIp: '10.1.2.3' })
    ex.route = { name: 'users', params: { id: '42' } }
    ex.state.set(REQUEST_ID_STATE, 'rid-1')
    await compose([layer], { terminal: answer() })(ex)
    expect(ex.upstreamHeaders).toMatchObject({ 'x-client': '10.1.2.3', 'x-route': 'users/42', 'x-rid': 'rid-1', 'x-echo': 'bar', 'x-lit': '{x}' })
  })

  it('drops values that would carry CR, LF or NUL, removing a client copy of a set field', async () => {
    const layer = headers({ request: { set: { 'x-user': '{route.params.u}' }, add: { 'x-list': '{route.params.u}' } }, response: { set: { 'x-back': '{route.params.u}' } } })
    const ex = createTestExchange({ headers: { 'x-user': 'admin', 'x-list': 'a' } })
    ex.route = { name: 'r', params: { u: 'evil\r\nx-injected: 1' } }
    await compose([layer], { terminal: answer() })(ex)
    expect(Object.hasOwn(ex.upstreamHeaders, 'x-user')).toBe(true)
    expect(ex.upstreamHeaders['x-user']).toBeUndefined()
    expect(Object.hasOwn(ex.upstreamHeaders, 'x-list')).toBe(false) // untouched: the client's 'a' is forwarded as is
    expect(ex.sent?.headers['x-back']).toBeUndefined()
    expect(JSON.stringify(ex.sent?.headers)).not.toContain('injected')
  })

  it('adds to and renames incoming request headers', async () => {
    const layer = headers({ request: { add: { 'x-tags': ['two', 'three'], 'x-new': 'n' }, rename: { 'x-old': 'x-renamed' }, remove: ['x-gone'] } })
    const ex = createTestExchange({ headers: { 'x-tags': 'one', 'x-old': 'v', 'x-gone': '1' } })
    await compose([layer], { terminal: answer() })(ex)
    expect(ex.upstreamHeaders).toEqual({ 'x-tags': 'one, two, three', 'x-new': 'n', 'x-renamed': 'v', 'x-old': undefined, 'x-gone': undefined })
  })

  it('adds, renames and sets response headers, on errors too, after inner layers', async () => {
    const layer = headers({ response: { add: { vary: 'origin', 'x-route': '{route.name}' }, rename: { server: 'x-origin-server' }, set: { 'x-id': '{request.id}' } } })
    const ex = createTestExchange()
    // request-id runs after headers here: the response value is read when the head is written.
    await compose([layer, requestId({ generate: () => 'late-id' })], {
      terminal: (e) => {
        e.route = { name: 'users', params: {} }
        return e.respond(200, { server: 'nginx', vary: 'accept' }, 'ok')
      },
    })(ex)
    expect(ex.sent?.headers).toMatchObject({ vary: ['accept', 'origin'], 'x-origin-server': 'nginx', 'x-id': 'late-id', 'x-route': 'users' })
    expect(ex.sent?.headers.server).toBeUndefined()
    const failed = createTestExchange()
    await compose([layer], { terminal: async () => Promise.reject(new Error('boom')) })(failed)
    expect(failed.sent?.status).toBe(500)
    expect(failed.sent?.headers.vary).toBe('origin')
  })

  it('refuses unknown placeholders, stray braces and framing headers at config time', () => {
    expect(() => headersPolicy.parse({ request: { set: { 'x-a': '{client.addr}' } } }, 'policies.h')).toThrow(/policies\.h\.request\.set\.x-a: .*unknown placeholder \{client\.addr\}/)
    expect(() => headersPolicy.parse({ response: { add: { 'x-a': ['ok', '{oops'] } } }, 'policies.h')).toThrow(/policies\.h\.response\.add\.x-a\[1\]/)
    expect(() => headersPolicy.parse({ request: { rename: { 'x-a': 'bad name' } } }, 'policies.h')).toThrow(/policies\.h\.request\.rename\.x-a: expected a valid header name/)
    expect(() => headersPolicy.parse({ request: { set: { 'content-length': '1' } } }, 'policies.h')).toThrow(/message framing/)
    expect(() => headersPolicy.parse({ request: { adds: {} } }, 'policies.h')).toThrow(ConfigError)
    expect(() => headers({ request: { set: { 'x-a': '{nope}' } } })).toThrow(RangeError)
    expect(headersPolicy.parse({ request: { add: { 'X-A': 1 }, rename: { 'X-B': 'X-C' } } }, 'p').request).toEqual({ set: {}, remove: [], add: { 'x-a': '1' }, rename: { 'x-b': 'x-c' } })
  })

  it('compiles templates with query, method and path', () => {
    const ex = createTestExchange({ method: 'post', target: '/a/b?page=3&x=1' })
    expect(compileHeaderTemplate('{request.method} {request.path} p={request.query.page} q={request.query.none}')(ex)).toBe('POST /a/b p=3 q=')
  })
})

describe('rewrite: regex', () => {
  it.each([
    ['/api/v2/users?x=1', '^/api/v(\\d+)/(.*)$', '/v$1/$2', false, '/v2/users?x=1'],
    ['/api/v2/users?x=1', '^/api/v(\\d+)/(.*)$', '/v$1/$2?from=gw', false, '/v2/users?from=gw&x=1'],
    ['/other?x=1', '^/api/v(\\d+)/(.*)$', '/v$1/$2', false, '/other?x=1'],
    ['/api/v2/users?x=1', '^/api/v(\\d+)/([^?]*)\\?x=(.*)$', '/v$1/$2/$3', true, '/v2/users/1'],
    ['/u/42', '^/u/(?<id>\\d+)$', 'users/$<id>', false, '/users/42'],
  ])('%s with %s → %s', (target, regex, replace, includeQuery, expected) => {
    expect(rewriteTarget(target, { regex, replace, includeQuery })).toBe(expected)
  })

  it('rewrites only the upstream target', async () => {
    const ex = createTestExchange({ target: '/api/v3/items?q=1' })
    await compose([rewrite({ regex: '^/api/v(\\d+)/(.*)$', replace: '/v$1/$2' })], { terminal: answer() })(ex)
    expect(ex.upstreamTarget).toBe('/v3/items?q=1')
    expect(ex.request.target).toBe('/api/v3/items?q=1')
  })

  it('refuses catastrophic and invalid patterns at config time', () => {
    for (const bad of ['^/(a+)+$', '^/(a|aa)*$', '^(.*a){20}$', '^/(x)\\1$', '^(?=.*x)/', '^/(']) {
      expect(() => rewritePolicy.parse({ regex: bad, replace: '/' }, 'policies.r')).toThrow(/policies\.r\.regex: expected a safe regular expression/)
      expect(() => rewrite({ regex: bad, replace: '/' })).toThrow(RangeError)
    }
    expect(rewriteRegexIssue('^/api/v([0-9]+)/(.*)$')).toBeUndefined()
    expect(rewriteRegexIssue('^/([a-z]+)?/(\\w+)$')).toBeUndefined()
    expect(() => rewritePolicy.parse({ regex: '^/a$' }, 'policies.r')).toThrow(/policies\.r\.replace/)
    expect(() => rewritePolicy.parse({ regex: '^/a$', replace: '/b', stripPrefix: '/a' }, 'policies.r')).toThrow(/policies\.r\.regex/)
    expect(() => rewritePolicy.parse({ stripPrefix: '/a', includeQuery: true }, 'policies.r')).toThrow(/policies\.r\.includeQuery/)
    expect(rewritePolicy.parse({ regex: '^/a$', replace: '/b' }, 'p')).toEqual({ regex: '^/a$', replace: '/b' })
  })
})

describe('security-headers', () => {
  it('sets the preset on success and error responses, keeping upstream values', async () => {
    const layer = securityHeaders()
    const ex = createTestExchange()
    await compose([layer], { terminal: answer(200, { 'x-frame-options': 'SAMEORIGIN' }) })(ex)
    expect(ex.sent?.headers).toMatchObject({
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'strict-origin-when-cross-origin',
    })
    expect(ex.sent?.headers['content-security-policy']).toBeUndefined()
    const failed = createTestExchange()
    await compose([layer], { terminal: async () => Promise.reject(new Error('boom')) })(failed)
    expect(failed.sent?.status).toBe(500)
    expect(failed.sent?.headers['x-frame-options']).toBe('DENY')
  })

  it('overrides, disables and extends per option', async () => {
    const layer = securityHeaders({ override: true, hsts: { preload: true }, frameOptions: false, referrerPolicy: 'no-referrer', contentSecurityPolicy: "default-src 'self'", crossOriginOpenerPolicy: 'same-origin' })
    const ex = createTestExchange()
    await compose([layer], { terminal: answer(200, { 'x-frame-options': 'SAMEORIGIN', 'referrer-policy': 'unsafe-url' }) })(ex)
    expect(ex.sent?.headers).toMatchObject({
      'strict-transport-security': 'max-age=31536000; includeSubDomains; preload',
      'x-frame-options': 'SAMEORIGIN', // disabled: the upstream's own value is left alone
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'",
      'cross-origin-opener-policy': 'same-origin',
    })
    expect(securityHeaderFields({ hsts: false, contentTypeOptions: false, frameOptions: false, referrerPolicy: false })).toEqual([])
  })

  it('parses with key paths', () => {
    expect(securityHeadersPolicy.parse({ hsts: { maxAge: 600, includeSubDomains: false }, frameOptions: 'sameorigin' }, 'p')).toMatchObject({ hsts: { maxAge: 600, includeSubDomains: false, preload: false }, frameOptions: 'SAMEORIGIN' })
    expect(() => securityHeadersPolicy.parse({ hsts: { maxAge: 600, preload: true } }, 'p.s')).toThrow(/p\.s\.hsts\.preload/)
    expect(() => securityHeadersPolicy.parse({ referrerPolicy: 'always' }, 'p.s')).toThrow(/p\.s\.referrerPolicy/)
    expect(() => securityHeadersPolicy.parse({ contentSecurityPolicy: 'a\nb' }, 'p.s')).toThrow(/p\.s\.contentSecurityPolicy/)
    expect(() => securityHeadersPolicy.parse({ hsts: { maxage: 1 } }, 'p.s')).toThrow(/p\.s\.hsts\.maxage/)
  })
})

describe('json-envelope', () => {
  const json = { 'content-type': 'application/json', 'content-length': '11', etag: '"v1"' }

  it('wraps a JSON response with status and request id, without calling next()', async () => {
    const ex = createTestExchange({ upstream: upstreamOf(201, json, ['{"a":', '[1,2]}']) })
    ex.state.set(REQUEST_ID_STATE, 'rid-9')
    let inner = false
    await compose([jsonEnvelope()], { terminal: async () => void (inner = true) })(ex)
    expect(inner).toBe(false)
    expect(ex.sent?.status).toBe(201)
    expect(JSON.parse(ex.sent!.text)).toEqual({ data: { a: [1, 2] }, meta: { status: 201, requestId: 'rid-9' } })
    expect(ex.sent?.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(ex.sent?.headers.etag).toBeUndefined()
    expect(ex.sent?.headers['content-length']).toBeUndefined()
  })

  it('keeps numbers byte for byte and gives requestId null without a request id', async () => {
    const body = '{"big":12345678901234567890}'
    const ex = createTestExchange({ upstream: upstreamOf(200, { 'content-type': 'application/problem+json', 'content-length': String(body.length) }, [body]) })
    await compose([jsonEnvelope()], { terminal: answer() })(ex)
    expect(ex.sent?.text).toBe(`{"data":${body},"meta":{"status":200,"requestId":null}}`)
  })

  it.each<[string, number, Record<string, string>, number?]>([
    ['non-JSON', 200, { 'content-type': 'text/plain', 'content-length': '11' }],
    ['no length', 200, { 'content-type': 'application/json' }],
    ['over maxBytes', 200, { 'content-type': 'application/json', 'content-length': '11' }, 10],
    ['compressed', 200, { 'content-type': 'application/json', 'content-length': '11', 'content-encoding': 'gzip' }],
    ['SSE', 200, { 'content-type': 'text/event-stream' }],
    ['206', 206, { 'content-type': 'application/json', 'content-length': '11' }],
  ])('passes %s responses through untouched', async (_what, status, h, maxBytes = 1024) => {
    const seen = { cancelled: false, pulled: 0 }
    const ex = createTestExchange({ upstream: upstreamOf(status, h, ['{"a":', '[1,2]}'], seen) })
    await compose([jsonEnvelope({ maxBytes })], { terminal: answer() })(ex)
    expect(ex.sent?.status).toBe(status)
    expect(ex.sent?.text).toBe('{"a":[1,2]}')
    expect(ex.sent?.headers).toMatchObject(h)
    expect(seen.cancelled).toBe(false)
  })

  it('never buffers past maxBytes when the length lied', async () => {
    const seen = { cancelled: false, pulled: 0 }
    const ex = createTestExchange({ upstream: upstreamOf(200, { 'content-type': 'application/json', 'content-length': '4' }, ['{"a"', ':1}'], seen) })
    await compose([jsonEnvelope({ maxBytes: 4 })], { terminal: answer() })(ex)
    expect(ex.sent?.text).toBe('{"a":1}')
  })

  it('leaves invalid JSON as received', async () => {
    const ex = createTestExchange({ upstream: upstreamOf(200, { 'content-type': 'application/json', 'content-length': '5' }, ['{oops']) })
    await compose([jsonEnvelope()], { terminal: answer() })(ex)
    expect(ex.sent?.text).toBe('{oops')
  })

  it('skips HEAD, SSE requests and methods not listed, by calling next()', async () => {
    for (const init of [{ method: 'HEAD' }, { headers: { accept: 'text/event-stream' } }, { method: 'OPTIONS' }]) {
      const ex = createTestExchange({ ...init, upstream: upstreamOf(200, json, ['{}']) })
      await compose([jsonEnvelope()], { terminal: answer() })(ex)
      expect(ex.upstreamCalls).toBe(0)
      expect(ex.sent?.text).toBe('ok')
    }
  })

  it('buffers a request body (bounded) so the upstream call replays it', async () => {
    const ex = createTestExchange({ method: 'POST', headers: { 'content-length': '7' }, body: '{"x":1}', upstream: upstreamOf(200, { 'content-type': 'application/json', 'content-length': '2' }, ['{}']) })
    await compose([jsonEnvelope()], { terminal: answer() })(ex)
    expect(new TextDecoder().decode(ex.bufferedBody)).toBe('{"x":1}')
    expect(JSON.parse(ex.sent!.text).data).toEqual({})
    const big = createTestExchange({ method: 'POST', headers: { 'content-length': '7' }, body: '{"x":1}', upstream: upstreamOf(200, json, ['{}']) })
    await compose([jsonEnvelope({ maxRequestBytes: 3 })], { terminal: answer() })(big)
    expect(big.upstreamCalls).toBe(0) // proxied as usual, unwrapped
    expect(big.sent?.text).toBe('ok')
  })

  it('parses its options', () => {
    expect(jsonEnvelopePolicy.phases).toEqual(['route'])
    expect(jsonEnvelopePolicy.parse({ maxBytes: '64kb', methods: ['get'] }, 'p')).toEqual({ maxBytes: 65536, maxRequestBytes: 1048576, methods: ['GET'] })
    expect(() => jsonEnvelopePolicy.parse({ maxBytes: 'lots' }, 'p.e')).toThrow(/p\.e\.maxBytes/)
  })
})

describe('body-limit', () => {
  it('answers 413 for a declared length over max before calling next()', async () => {
    const ex = createTestExchange({ method: 'POST', headers: { 'content-length': '11' }, body: 'hello world' })
    let inner = false
    await compose([bodyLimit({ max: 10 })], { terminal: async () => void (inner = true) })(ex)
    expect(inner).toBe(false)
    expect(ex.sent?.status).toBe(413)
    expect(JSON.parse(ex.sent!.text).error.code).toBe('ERR_PAYLOAD_TOO_LARGE')
  })

  it('lets a body within the limit pass and records the smallest limit for the transport', async () => {
    const ex = createTestExchange({ method: 'POST', headers: { 'content-length': '5' }, body: 'hello' })
    ex.state.set(BODY_LIMIT_STATE, 8)
    await compose([bodyLimit({ max: 10 })], { terminal: answer() })(ex)
    expect(ex.sent?.status).toBe(200)
    expect(ex.state.get(BODY_LIMIT_STATE)).toBe(8)
  })

  it('with bufferChunked, cuts a chunked body growing past max with 413', async () => {
    const chunks = async function* () {
      yield enc('12345')
      yield enc('67890')
      yield enc('x')
    }
    const ex = createTestExchange({ method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: chunks() })
    let inner = false
    await compose([bodyLimit({ max: 10, bufferChunked: true })], { terminal: async () => void (inner = true) })(ex)
    expect(inner).toBe(false)
    expect(ex.sent?.status).toBe(413)
  })

  it('parses sizes and requires max', () => {
    expect(bodyLimitPolicy.parse({ max: '1mb' }, 'p')).toEqual({ max: 1048576, bufferChunked: false })
    expect(() => bodyLimitPolicy.parse({}, 'p.b')).toThrow(/p\.b\.max/)
    expect(() => bodyLimitPolicy.parse({ max: 'big' }, 'p.b')).toThrow(/p\.b\.max/)
  })
})
