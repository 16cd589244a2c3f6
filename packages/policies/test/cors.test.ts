// The CORS protocol of the Fetch standard (§3.2) as the `cors` policy answers it.
import { describe, expect, it } from 'vitest'
import { compose, ConfigError, type Exchange, type HeaderRecord, UnauthorizedError } from '@switchboard/core'
import { createTestExchange, type TestExchange } from '@switchboard/core/testing'
import { cors, corsPolicy, type CorsOptions, DEFAULT_CORS_METHODS, parseCorsOptions } from '../src/cors/index.ts'

const APP = 'http://127.0.0.1:5173'

/** Runs one request through `cors(options)` and a terminal that answers 200 (or `terminal`). */
async function run(options: CorsOptions, init: { method?: string; headers?: HeaderRecord }, terminal?: (ex: Exchange) => Promise<void>): Promise<{ ex: TestExchange; reached: boolean }> {
  const ex = createTestExchange(init)
  let reached = false
  await compose([cors(options)], {
    terminal: async (e) => {
      reached = true
      await (terminal ?? ((x: Exchange) => x.respond(200, { 'content-type': 'text/plain' }, 'ok')))(e)
    },
  })(ex)
  return { ex, reached }
}

const preflight = (origin: string, method: string, requestHeaders?: string): { method: string; headers: HeaderRecord } => ({
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': method, ...(requestHeaders === undefined ? {} : { 'access-control-request-headers': requestHeaders }) },
})

describe('cors: actual (non-preflight) requests', () => {
  it('echoes an allowed origin with Vary: Origin, credentials and exposed headers, and reaches the upstream', async () => {
    const { ex, reached } = await run({ origins: [APP], credentials: true, exposedHeaders: ['X-Total'] }, { headers: { origin: APP } })
    expect(reached).toBe(true)
    expect(ex.sent?.headers).toMatchObject({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-total',
      vary: 'Origin',
    })
    // Preflight-only fields never appear on an actual response.
    expect(ex.sent?.headers['access-control-allow-methods']).toBeUndefined()
    expect(ex.sent?.headers['access-control-max-age']).toBeUndefined()
  })

  it('adds no CORS header for a disallowed origin, but still Vary: Origin, and still forwards (CORS guards reading)', async () => {
    const { ex, reached } = await run({ origins: [APP], credentials: true }, { headers: { origin: 'http://127.0.0.1:5174' } })
    expect(reached).toBe(true)
    expect(ex.sent?.status).toBe(200)
    expect(Object.keys(ex.sent!.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    expect(ex.sent?.headers.vary).toBe('Origin')
  })

  it('adds Vary: Origin even without an Origin header, so a shared cache never mixes answers', async () => {
    const { ex } = await run({ origins: [APP] }, {})
    expect(ex.sent?.headers.vary).toBe('Origin')
    expect(ex.sent?.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('answers * to everyone with origins [*], without Vary: Origin and without credentials', async () => {
    for (const headers of [{ origin: 'https://anything.test' }, {}]) {
      const { ex } = await run({ origins: ['*'] }, { headers })
      expect(ex.sent?.headers['access-control-allow-origin']).toBe('*')
      expect(ex.sent?.headers['access-control-allow-credentials']).toBeUndefined()
      expect(ex.sent?.headers.vary).toBeUndefined()
    }
  })

  it('decorates error responses: a thrown 401 and a 500 still carry Access-Control-Allow-Origin', async () => {
    const denied = await run({ origins: [APP] }, { headers: { origin: APP } }, async () => {
      throw new UnauthorizedError()
    })
    expect(denied.ex.sent?.status).toBe(401)
    expect(denied.ex.sent?.headers['access-control-allow-origin']).toBe(APP)
    const broken = await run({ origins: [APP] }, { headers: { origin: APP } }, async () => {
      throw new Error('boom')
    })
    expect(broken.ex.sent?.status).toBe(500)
    expect(broken.ex.sent?.headers['access-control-allow-origin']).toBe(APP)
  })

  it('replaces the upstream Access-Control-* fields and merges Vary', async () => {
    const ex = createTestExchange({ headers: { origin: 'https://evil.test' } })
    await compose([cors({ origins: [APP] })], {
      terminal: (e) =>
        (e as TestExchange).deliver({
          status: 200,
          headers: { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', vary: 'Accept-Encoding' },
          body: 'x',
        }),
    })(ex)
    expect(ex.sent?.headers['access-control-allow-origin']).toBeUndefined()
    expect(ex.sent?.headers['access-control-allow-credentials']).toBeUndefined()
    expect(ex.sent?.headers.vary).toBe('Accept-Encoding, Origin')
    const star = createTestExchange({ headers: { origin: APP } })
    await compose([cors({ origins: [APP] })], { terminal: (e) => (e as TestExchange).deliver({ status: 200, headers: { vary: '*' } }) })(star)
    expect(star.sent?.headers.vary).toBe('*')
    expect(star.sent?.headers['access-control-allow-origin']).toBe(APP)
  })

  it('treats OPTIONS without Access-Control-Request-Method as an ordinary request', async () => {
    const { ex, reached } = await run({ origins: [APP] }, { method: 'OPTIONS', headers: { origin: APP } })
    expect(reached).toBe(true)
    expect(ex.sent?.status).toBe(200)
    expect(ex.sent?.headers['access-control-allow-origin']).toBe(APP)
    expect(ex.sent?.headers['access-control-allow-methods']).toBeUndefined()
  })
})

describe('cors: preflights', () => {
  it('answers an allowed preflight with 204 itself: methods, echoed headers, max-age in seconds, Vary', async () => {
    const { ex, reached } = await run({ origins: [APP], credentials: true, maxAgeMs: 600_000 }, preflight(APP, 'PUT', 'X-Trace, Content-Type'))
    expect(reached).toBe(false)
    expect(ex.sent?.status).toBe(204)
    expect(ex.sent?.text).toBe('')
    expect(ex.sent?.headers).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': DEFAULT_CORS_METHODS.join(', '),
      'access-control-allow-headers': 'x-trace, content-type',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers',
    })
  })

  it('rounds max-age down to whole seconds, sends 0 when asked, and nothing by default', async () => {
    expect((await run({ origins: [APP], maxAgeMs: 1999 }, preflight(APP, 'PUT'))).ex.sent?.headers['access-control-max-age']).toBe('1')
    expect((await run({ origins: [APP], maxAgeMs: 0 }, preflight(APP, 'PUT'))).ex.sent?.headers['access-control-max-age']).toBe('0')
    expect((await run({ origins: [APP] }, preflight(APP, 'PUT'))).ex.sent?.headers['access-control-max-age']).toBeUndefined()
  })

  it('refuses a preflight from a disallowed origin with 403 and no CORS headers, without forwarding it', async () => {
    const { ex, reached } = await run({ origins: [APP] }, preflight('http://127.0.0.1:5174', 'PUT'))
    expect(reached).toBe(false)
    expect(ex.sent?.status).toBe(403)
    expect(Object.keys(ex.sent!.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    expect(ex.sent?.headers.vary).toBe('Origin')
    expect(JSON.parse(ex.sent!.text)).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } })
  })

  it('refuses a method outside the list but never needs GET, HEAD or POST listed (CORS-safelisted)', async () => {
    const options = { origins: [APP], methods: ['PUT'] }
    expect((await run(options, preflight(APP, 'DELETE'))).ex.sent?.status).toBe(403)
    // Methods are case-sensitive (Fetch only normalises DELETE, GET, HEAD, OPTIONS, POST, PUT).
    expect((await run(options, preflight(APP, 'put'))).ex.sent?.status).toBe(403)
    expect((await run(options, preflight(APP, 'PUT'))).ex.sent?.status).toBe(204)
    const post = await run(options, preflight(APP, 'POST', 'x-trace'))
    expect(post.ex.sent?.status).toBe(204)
    expect(post.ex.sent?.headers['access-control-allow-methods']).toBe('PUT')
  })

  it('with an allowedHeaders list: answers the list and refuses any other header', async () => {
    const options = { origins: [APP], allowedHeaders: ['X-Trace', 'content-type'] }
    const ok = await run(options, preflight(APP, 'PUT', 'x-trace'))
    expect(ok.ex.sent?.status).toBe(204)
    expect(ok.ex.sent?.headers['access-control-allow-headers']).toBe('x-trace, content-type')
    expect(ok.ex.sent?.headers.vary).toBe('Origin')
    expect((await run(options, preflight(APP, 'PUT', 'x-trace, x-other'))).ex.sent?.status).toBe(403)
  })

  it('with allowedHeaders [*] (no credentials): any header but Authorization', async () => {
    const options = { origins: ['*'], allowedHeaders: ['*'] }
    const ok = await run(options, preflight('https://a.test', 'PUT', 'x-anything'))
    expect(ok.ex.sent?.headers).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' })
    expect((await run(options, preflight('https://a.test', 'PUT', 'authorization'))).ex.sent?.status).toBe(403)
    const withAuth = await run({ origins: ['*'], allowedHeaders: ['*', 'Authorization'] }, preflight('https://a.test', 'PUT', 'authorization, x-a'))
    expect(withAuth.ex.sent?.status).toBe(204)
    expect(withAuth.ex.sent?.headers['access-control-allow-headers']).toBe('*, authorization')
  })

  it('refuses a malformed Access-Control-Request-Headers instead of echoing it', async () => {
    const { ex } = await run({ origins: [APP] }, preflight(APP, 'PUT', 'x-ok, bad header'))
    expect(ex.sent?.status).toBe(403)
    expect(ex.sent?.headers['access-control-allow-headers']).toBeUndefined()
  })

  it('answers a preflight with origins [*] with *, and Vary only on the echoed request headers', async () => {
    const { ex } = await run({ origins: ['*'] }, preflight('https://a.test', 'PATCH', 'x-a'))
    expect(ex.sent?.status).toBe(204)
    expect(ex.sent?.headers['access-control-allow-origin']).toBe('*')
    expect(ex.sent?.headers.vary).toBe('Access-Control-Request-Headers')
  })
})

describe('cors: origin lists', () => {
  const matches = async (origins: string[], origin: string): Promise<boolean> =>
    (await run({ origins }, { headers: { origin } })).ex.sent?.headers['access-control-allow-origin'] === origin

  it.each([
    [['https://app.example.com'], 'https://app.example.com', true],
    [['https://app.example.com/'], 'https://app.example.com', true],
    [['HTTPS://App.Example.com:443'], 'https://app.example.com', true],
    [['https://app.example.com'], 'https://app.example.com:443', false],
    [['https://app.example.com'], 'http://app.example.com', false],
    [['https://app.example.com'], 'https://app.example.com.evil.test', false],
    [['https://*.example.com'], 'https://a.example.com', true],
    [['https://*.example.com'], 'https://a.b.example.com', true],
    [['https://*.example.com'], 'https://example.com', false],
    [['https://*.example.com'], 'https://badexample.com', false],
    [['https://*.example.com'], 'https://a.example.com.evil.test', false],
    [['https://*.example.com'], 'http://a.example.com', false],
    [['https://*.example.com'], 'https://a.example.com:8443', false],
    [['https://*.example.com:*'], 'https://a.example.com:8443', true],
    [['https://*.example.com:8443'], 'https://a.example.com:8443', true],
    [['http://localhost:*'], 'http://localhost:5173', true],
    [['http://localhost:*'], 'http://localhost', true],
    [['http://localhost:*'], 'http://localhost.evil.test:5173', false],
    [['http://127.0.0.1:*'], 'http://127.0.0.1:9', true],
    [['http://[::1]:*'], 'http://[::1]:3000', true],
    [['https://a.test'], 'null', false],
    [['null'], 'null', true],
  ])('%j allows %s: %s', async (origins, origin, expected) => {
    expect(await matches(origins, origin)).toBe(expected)
  })

  it('refuses oversized and malformed Origin values against patterns', async () => {
    expect(await matches(['https://*.example.com'], `https://${'a.'.repeat(50_000)}example.com`)).toBe(false)
    expect(await matches(['https://*.example.com'], 'https://a.example.com/path')).toBe(false)
    expect(await matches(['https://*.example.com'], 'https://A.example.com')).toBe(false)
  })
})

describe('cors: options', () => {
  it('parses config with durations, upper-cased methods and defaults', () => {
    expect(corsPolicy.parse({ origins: [APP], credentials: true, maxAge: '10m' }, 'policies.web')).toEqual({
      origins: [APP],
      methods: undefined,
      allowedHeaders: undefined,
      exposedHeaders: [],
      credentials: true,
      maxAgeMs: 600_000,
    })
    expect(parseCorsOptions({ origins: '*', methods: ['get', 'put'], allowedHeaders: ['x-a'] }, 'p')).toMatchObject({ origins: ['*'], methods: ['GET', 'PUT'], allowedHeaders: ['x-a'] })
  })

  it.each([
    [{}, /policies\.web\.origins: expected a list of allowed origins/],
    [{ origins: ['*'], credentials: true }, /policies\.web\.origins: expected a list of origins or patterns when credentials is true/],
    [{ origins: ['*', APP] }, /policies\.web\.origins\[0\]: expected \* alone/],
    [{ origins: ['app.example.com'] }, /policies\.web\.origins\[0\]: expected an origin such as/],
    [{ origins: ['https://app.example.com/path'] }, /origins\[0\]: expected an origin without path/],
    [{ origins: ['ftp://a.test'] }, /origins\[0\]: expected an http:\/\/ or https:\/\/ origin/],
    [{ origins: ['https://a.*.example.com'] }, /origins\[0\]: expected \* only as the first host label/],
    [{ origins: ['https://*example.com'] }, /origins\[0\]: expected \* only as the first host label/],
    [{ origins: ['https://*.exa mple.com'] }, /origins\[0\]/],
    [{ origins: ['https://*.example.com:8o'] }, /origins\[0\]: expected a port number or \*/],
    [{ origins: ['http://localhost:*', 'http://*.local.test:70000'] }, /origins\[1\]: expected a port number or \*/],
    [{ origins: [APP], credentials: true, allowedHeaders: ['*'] }, /allowedHeaders\[0\]: expected a name \(\* is only a wildcard without credentials\)/],
    [{ origins: [APP], methods: ['GET POST'] }, /methods\[0\]: expected an HTTP method name/],
    [{ origins: [APP], exposedHeaders: ['bad header'] }, /exposedHeaders\[0\]: expected a valid header name/],
    [{ origins: [APP], maxAge: 'soon' }, /policies\.web\.maxAge: expected a duration/],
    [{ origins: [APP], credential: true }, /policies\.web\.credential: expected one of the known keys/],
  ])('refuses %j', (raw, message) => {
    expect(() => corsPolicy.parse(raw as Record<string, unknown>, 'policies.web')).toThrow(ConfigError)
    expect(() => corsPolicy.parse(raw as Record<string, unknown>, 'policies.web')).toThrow(message)
  })

  it('the factory refuses bad options right away and names them', () => {
    expect(() => cors({ origins: ['*'], credentials: true })).toThrow(RangeError)
    expect(() => cors({ origins: ['*'], credentials: true })).toThrow(/cors\.origins must be/)
    expect(() => cors({ origins: ['https://*.a.*.test'] })).toThrow(/cors\.origins\[0\] must be/)
    expect(() => cors({ origins: [APP], maxAgeMs: -1 })).toThrow(/cors\.maxAgeMs must be/)
  })
})
