import { createHash } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { buildOpenApi, createDocs, type OpenApiDocument, type OperationObject } from '../src/docs/index.ts'
import { createGateway, type GatewayConfig, parseConfig } from '../src/index.ts'
import { type TestUpstream, useFixtures } from './helpers.ts'

// Values that must never reach the document: every one is a credential or a hash of one.
const API_KEY = 'k-live-docs-0123456789abcdef'
const KEY_HASH = `sha256:${createHash('sha256').update('k-hashed-docs-0123456789').digest('hex')}`
const JWT_SECRET = 'jwt-docs-secret-0123456789abcdef0123456789'
const BCRYPT = '$2b$04$KLzUxNfMSZK/4hJRMi5SvuClZoVuRvPqATpkDkzwiVkN5ZJqRZz/a' // bcryptjs.hashSync('hunter2-basic-pw', 4)
const ADMIN_TOKEN = 'admin-docs-token-0123456789'
const CLIENT_KEY = 'client-docs-key-0123456789'
const UPSTREAM_SECRET = 'sk-upstream-docs-0123456789'
const ENV = { DOCS_API_KEY: API_KEY, DOCS_CLIENT_KEY: CLIENT_KEY, DOCS_UPSTREAM_KEY: UPSTREAM_SECRET, DOCS_JWT_SECRET: JWT_SECRET }

const UPSTREAM = 'http://127.0.0.1:9'

const AUTH_POLICIES = {
  keys: { use: 'api-key', header: 'X-Api-Key', query: 'api_key', keys: [{ id: 'ci', key: '${DOCS_API_KEY}' }, { id: 'old', hash: KEY_HASH }] },
  bearer: { use: 'api-key', keys: [{ id: 'b', key: 'k-bearer-docs-0123456789' }] },
  sso: { use: 'jwt', secret: '${DOCS_JWT_SECRET}', algorithms: ['HS256'] },
  staff: { use: 'basic', users: { alice: BCRYPT } },
  office: { use: 'ip-filter', allow: ['127.0.0.1/32'] },
}

/** parseConfig over the given sections, with one upstream `a` and the auth policies above. */
function config(raw: Record<string, unknown>): GatewayConfig {
  return parseConfig({ upstreams: { a: { targets: [UPSTREAM] } }, policies: AUTH_POLICIES, ...raw }, { env: ENV })
}

function op(doc: OpenApiDocument, path: string, method: keyof OpenApiDocument['paths'][string]): OperationObject {
  const found = doc.paths[path]?.[method]
  if (!found) throw new Error(`no ${method} ${path} in ${JSON.stringify(Object.keys(doc.paths))}`)
  return found
}

describe('buildOpenApi', () => {
  it('is an OpenAPI 3.1.0 document with the title, version, health endpoint and shared error schema, and survives JSON', () => {
    const c = config({ docs: { title: 'Acme edge' }, server: { healthPath: '/healthz' }, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] })
    const doc = buildOpenApi(c)
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info).toMatchObject({ title: 'Acme edge', version: '0.1.0' })
    const health = op(doc, '/healthz', 'get')
    expect(health.security).toBeUndefined()
    expect(Object.keys(health.responses)).toEqual(['200', '503'])
    expect(health.responses['200'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/HealthStatus' })
    const schema = doc.components.schemas.HealthStatus as { required: string[]; properties: { upstreams: { additionalProperties: { required: string[] } } } }
    expect(schema.required).toEqual(['status', 'upstreams'])
    expect(schema.properties.upstreams.additionalProperties.required).toEqual(['healthy', 'total', 'saturated'])
    expect(doc.components.schemas.Error).toMatchObject({ required: ['error'], properties: { error: { required: ['code', 'message'] } } })
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc)
    expect(buildOpenApi(config({ docs: true, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] })).info.title).toBe('Switchboard gateway')
  })

  it('converts path patterns: params, the trailing wildcard, named wildcards; regex routes go to x-switchboard-regex-routes', () => {
    const doc = buildOpenApi(
      config({
        routes: [
          { name: 'user', match: { path: '/users/:id/posts/:postId', methods: ['GET', 'DELETE'] }, upstream: 'a' },
          { name: 'api', match: { path: '/api/*' }, upstream: 'a' },
          { name: 'files', match: { path: '/files/*rest', methods: ['GET'] }, upstream: 'a' },
          { name: 'versioned', match: { pathRegex: '^/v[0-9]+/', methods: ['GET'] }, upstream: 'a' },
        ],
      }),
    )
    expect(Object.keys(doc.paths)).toEqual(['/health', '/users/{id}/posts/{postId}', '/api/{path}', '/files/{rest}'])
    expect(Object.keys(doc.paths['/users/{id}/posts/{postId}'])).toEqual(['get', 'delete'])
    expect(op(doc, '/users/{id}/posts/{postId}', 'get').parameters).toEqual([
      { name: 'id', in: 'path', required: true, description: 'One path segment', schema: { type: 'string' } },
      { name: 'postId', in: 'path', required: true, description: 'One path segment', schema: { type: 'string' } },
    ])
    // No methods configured: every common method, a request body only where one is usual.
    expect(Object.keys(doc.paths['/api/{path}'])).toEqual(['get', 'post', 'put', 'patch', 'delete', 'head', 'options'])
    const rest = op(doc, '/api/{path}', 'post')
    expect(rest.parameters?.[0]).toMatchObject({ name: 'path', in: 'path', required: true })
    expect(rest.parameters?.[0].description).toMatch(/rest of the path/)
    expect(rest.requestBody).toBeDefined()
    expect(op(doc, '/api/{path}', 'get').requestBody).toBeUndefined()
    expect(op(doc, '/files/{rest}', 'get').parameters?.[0].name).toBe('rest')
    expect(op(doc, '/files/{rest}', 'get')['x-switchboard-route']).toBe('files')
    expect(doc['x-switchboard-regex-routes']).toEqual([{ route: 'versioned', pattern: '^/v[0-9]+/', methods: ['GET'] }])
    expect(JSON.stringify(doc.paths)).not.toContain('v[0-9]')
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((o) => o.operationId))
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('keeps the first route per path shape and method, in the matcher order (priority, then definition)', () => {
    const doc = buildOpenApi(
      config({
        routes: [
          { name: 'by-id', match: { path: '/items/:id', methods: ['GET'] }, upstream: 'a' },
          { name: 'by-name', match: { path: '/items/:name', methods: ['GET', 'PUT'] }, upstream: 'a' },
          { name: 'urgent', match: { path: '/jobs', methods: ['POST'] }, upstream: 'a' },
          { name: 'urgent-first', match: { path: '/jobs', methods: ['POST'] }, upstream: 'a', priority: 10 },
        ],
      }),
    )
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/items'))).toEqual(['/items/{id}'])
    expect(op(doc, '/items/{id}', 'get')['x-switchboard-route']).toBe('by-id')
    expect(op(doc, '/items/{id}', 'put')['x-switchboard-route']).toBe('by-name')
    expect(op(doc, '/items/{id}', 'put').parameters?.[0].name).toBe('id')
    expect(op(doc, '/jobs', 'post')['x-switchboard-route']).toBe('urgent-first')
  })

  it('derives security from the route and server auth policies: api-key header/query, bearer, jwt, basic, alternatives', () => {
    const doc = buildOpenApi(
      config({
        routes: [
          { name: 'keys', match: { path: '/k', methods: ['GET'] }, upstream: 'a', policies: ['keys'] },
          { name: 'bearer', match: { path: '/b', methods: ['GET'] }, upstream: 'a', policies: ['bearer'] },
          { name: 'either', match: { path: '/e', methods: ['GET'] }, upstream: 'a', policies: ['office', 'sso', 'staff'] },
          { name: 'open', match: { path: '/o', methods: ['GET'] }, upstream: 'a' },
          { name: 're', match: { pathRegex: '^/r/', methods: ['GET'] }, upstream: 'a', policies: ['staff'] },
        ],
      }),
    )
    const schemes = doc.components.securitySchemes
    expect(schemes.keys).toEqual({ type: 'apiKey', in: 'header', name: 'x-api-key', description: '`api-key` policy keys' })
    expect(schemes['keys.query']).toMatchObject({ type: 'apiKey', in: 'query', name: 'api_key' })
    expect(schemes.bearer).toEqual({ type: 'http', scheme: 'bearer', description: '`api-key` policy bearer' })
    expect(schemes.sso).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: '`jwt` policy sso' })
    expect(schemes.staff).toEqual({ type: 'http', scheme: 'basic', description: '`basic` policy staff' })
    expect(op(doc, '/k', 'get').security).toEqual([{ keys: [] }, { 'keys.query': [] }])
    expect(op(doc, '/b', 'get').security).toEqual([{ bearer: [] }])
    const either = op(doc, '/e', 'get')
    expect(either.security).toEqual([{ sso: [] }, { staff: [] }])
    expect(Object.keys(either.responses)).toEqual(expect.arrayContaining(['default', '401', '403', '502', '503', '504']))
    expect(either.responses['401'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' })
    const open = op(doc, '/o', 'get')
    expect(open.security).toBeUndefined()
    expect(open.responses['401']).toBeUndefined()
    expect(doc['x-switchboard-regex-routes']).toEqual([{ route: 're', pattern: '^/r/', methods: ['GET'], security: [{ staff: [] }] }])
  })

  it('applies server.policies auth to every route except public ones and those under server.publicPaths', () => {
    const doc = buildOpenApi(
      config({
        server: { policies: ['sso'], publicPaths: ['/assets/*'] },
        routes: [
          { name: 'api', match: { path: '/api/*', methods: ['GET'] }, upstream: 'a', policies: ['staff'] },
          { name: 'plain', match: { path: '/plain', methods: ['GET'] }, upstream: 'a' },
          { name: 'status', match: { path: '/status', methods: ['GET'] }, upstream: 'a', public: true, policies: ['office'] },
          { name: 'assets', match: { path: '/assets/*', methods: ['GET'] }, upstream: 'a' },
        ],
      }),
    )
    expect(op(doc, '/api/{path}', 'get').security).toEqual([{ sso: [] }, { staff: [] }])
    expect(op(doc, '/plain', 'get').security).toEqual([{ sso: [] }])
    const status = op(doc, '/status', 'get')
    expect(status.security).toBeUndefined()
    expect(status.responses['403'].description).toMatch(/ip-filter/) // its other policies still run
    expect(op(doc, '/assets/{path}', 'get').security).toBeUndefined()
    expect(op(doc, '/health', 'get').security).toBeUndefined()
    expect(doc.info.description).toContain('`/assets/*`')
  })

  it('describes the /proxy envelope when clients are configured, and not otherwise', () => {
    const raw = {
      targets: { llm: { baseUrl: UPSTREAM } },
      secrets: { llm_key: 'Bearer ${DOCS_UPSTREAM_KEY}' },
      clients: { 'rk-robot-1': { target: 'llm', authHeaderRef: 'llm_key', allowedMethods: ['POST'], allowedPaths: ['/chat/completions'] } },
      docs: true,
    }
    const doc = buildOpenApi(parseConfig(raw, { env: ENV }))
    const proxy = op(doc, '/proxy', 'post')
    expect(proxy.security).toEqual([{ clientKey: [] }])
    expect(doc.components.securitySchemes.clientKey).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(Object.keys(proxy.responses)).toEqual(['200', '400', '401', '403', '413', '502', '504'])
    for (const status of ['400', '401', '403', '413', '502', '504']) expect(proxy.responses[status].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' })
    expect(proxy.requestBody?.required).toBe(true)
    expect(proxy.requestBody?.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ProxyEnvelope' })
    expect(proxy.requestBody?.content['application/json'].example).toEqual({ method: 'POST', path: '/chat/completions' })
    const envelope = doc.components.schemas.ProxyEnvelope as { required: string[]; properties: Record<string, unknown> }
    expect(envelope.required).toEqual(['method', 'path'])
    expect(Object.keys(envelope.properties)).toEqual(['method', 'path', 'body', 'headers', 'query'])
    // The seed's client names are their keys: no client name is in the document.
    expect(JSON.stringify(doc)).not.toContain('rk-robot-1')
    const envelopeMethods = (envelope.properties.method as { enum: string[] }).enum
    expect(envelopeMethods).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
    expect(proxy.responses['429']).toBeUndefined()
    const moved = buildOpenApi(parseConfig({ ...raw, policies: { perClient: { use: 'rate-limit', limit: '5/min' } }, proxy: { path: '/relay', policies: ['perClient'] } }, { env: ENV }))
    expect(moved.paths['/relay']?.post?.operationId).toBe('proxy')
    expect(moved.paths['/relay']?.post?.responses['429'].description).toMatch(/rate-limit/)
    expect(moved.paths['/proxy']).toBeUndefined()
    const none = buildOpenApi(config({ routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] }))
    expect(none.paths['/proxy']).toBeUndefined()
    expect(none.components.schemas.ProxyEnvelope).toBeUndefined()
  })

  it('lists the admin endpoints with their methods, bearer-secured when admin.token is set', () => {
    const routes = [{ name: 'all', match: { path: '/*' }, upstream: 'a' }]
    const doc = buildOpenApi(config({ admin: { path: '/_admin', token: ADMIN_TOKEN }, routes }))
    const admin = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith('/_admin/'))
      .flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`))
    expect(admin.sort()).toEqual(
      [
        'GET /_admin/upstreams',
        'GET /_admin/routes',
        'GET /_admin/config',
        'GET /_admin/cache',
        'GET /_admin/breakers',
        'GET /_admin/maintenance',
        'POST /_admin/maintenance',
        'POST /_admin/cache/purge',
        'POST /_admin/reload',
      ].sort(),
    )
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(op(doc, '/_admin/reload', 'post').security).toEqual([{ adminToken: [] }])
    expect(op(doc, '/_admin/reload', 'post').responses['401']).toBeDefined()
    // Without a token the admin API is loopback-only: no security scheme, 403 for others.
    const loopback = buildOpenApi(config({ admin: true, routes }))
    expect(op(loopback, '/admin/upstreams', 'get').security).toBeUndefined()
    expect(op(loopback, '/admin/upstreams', 'get').responses['403']).toBeDefined()
    expect(loopback.components.securitySchemes.adminToken).toBeUndefined()
    expect(buildOpenApi(config({ routes })).paths['/admin/upstreams']).toBeUndefined()
  })

  it('never holds a key, hash, token, secret or upstream URL', () => {
    const doc = buildOpenApi(
      parseConfig(
        {
          upstreams: { a: { targets: [UPSTREAM] } },
          targets: { llm: { baseUrl: 'http://127.0.0.1:7/llm' } },
          secrets: { llm_key: 'Bearer ${DOCS_UPSTREAM_KEY}' },
          clients: { tenant: { key: '${DOCS_CLIENT_KEY}', target: 'llm', authHeaderRef: 'llm_key' }, 'name-is-key-7f3a': { target: 'llm' } },
          policies: AUTH_POLICIES,
          server: { policies: ['keys'] },
          admin: { token: ADMIN_TOKEN },
          docs: true,
          routes: [
            { name: 'all', match: { path: '/*', headers: { 'x-internal': 'hdr-secret-0123' } }, upstream: 'a', policies: ['sso', 'staff', 'bearer'] },
          ],
        },
        { env: ENV },
      ),
    )
    const text = JSON.stringify(doc)
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
    for (const secret of [API_KEY, KEY_HASH, KEY_HASH.slice(7), JWT_SECRET, BCRYPT, ADMIN_TOKEN, CLIENT_KEY, sha(CLIENT_KEY), UPSTREAM_SECRET, 'k-bearer-docs-0123456789', 'hdr-secret-0123', 'name-is-key-7f3a', '127.0.0.1:9', '127.0.0.1:7']) {
      expect(text).not.toContain(secret)
    }
    // The header condition is documented by name only.
    expect(op(doc, '/{path}', 'get').parameters).toContainEqual(expect.objectContaining({ name: 'x-internal', in: 'header', required: true }))
  })
})

describe('createDocs', () => {
  it('matches the page, everything under it and the document, nothing else', () => {
    const docs = createDocs(config({ docs: { path: '/reference', openapiPath: '/spec.json' }, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] }))
    expect(['/reference', '/reference/', '/reference/swagger-ui.css', '/reference/nope', '/spec.json'].map((p) => docs.matches(p))).toEqual([true, true, true, true, true])
    expect(['/', '/referencex', '/spec.json/x', '/openapi.json', '/docs'].map((p) => docs.matches(p))).toEqual([false, false, false, false, false])
    expect(docs.document.paths['/{path}']).toBeDefined()
  })

  it('refuses a config without docs', () => {
    expect(() => createDocs(config({ routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] }))).toThrow(/config\.docs/)
  })
})

// End to end: the gateway serves the page, the assets and the document itself.
describe('docs served by the gateway', () => {
  const { cleanup, upstream } = useFixtures()
  const swaggerDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))

  async function start(up: TestUpstream, docs: unknown = { title: 'Docs e2e' }): Promise<{ port: number; config: GatewayConfig }> {
    const c = parseConfig(
      {
        upstreams: { a: { targets: [up.url] } },
        targets: { llm: { baseUrl: up.url } },
        secrets: { llm_key: 'Bearer ${DOCS_UPSTREAM_KEY}' },
        clients: { tenant: { key: '${DOCS_CLIENT_KEY}', target: 'llm', authHeaderRef: 'llm_key', allowedMethods: ['POST'], allowedPaths: ['/chat/completions'] } },
        admin: true,
        docs,
        routes: [
          { name: 'user', match: { path: '/users/:id', methods: ['GET'] }, upstream: 'a' },
          { name: 'all', match: { path: '/*' }, upstream: 'a' },
        ],
      },
      { env: ENV },
    )
    const gateway = await createGateway(c, { logger: () => {} })
    cleanup.push(() => gateway.close())
    return { port: (await gateway.listen(0, '127.0.0.1')).port, config: c }
  }

  it('serves /docs: HTML without inline script that loads the UI from the gateway itself', async () => {
    const up = await upstream()
    const { port } = await start(up)
    const res = await get(port, '/docs')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-cache')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['content-security-policy']).toContain("script-src 'self'")
    const html = res.body.toString('utf8')
    expect(html).toContain('<title>Docs e2e</title>')
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
    expect(scripts.map((m) => /src="([^"]+)"/.exec(m[1])?.[1])).toEqual(['/docs/swagger-ui-bundle.js', '/docs/init.js'])
    expect(scripts.every((m) => m[2].trim() === '')).toBe(true)
    expect(html).toContain('href="/docs/swagger-ui.css"')
    expect(html).not.toMatch(/https?:\/\//) // nothing from a CDN
    expect(up.requests).toEqual([])
  })

  it('serves the Swagger UI files byte for byte with their types, an hour of caching and nosniff; gzip when asked', async () => {
    const up = await upstream()
    const { port } = await start(up)
    for (const [name, type] of [
      ['swagger-ui.css', 'text/css; charset=utf-8'],
      ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
      ['favicon-32x32.png', 'image/png'],
    ]) {
      const res = await get(port, `/docs/${name}`)
      expect(res.status, name).toBe(200)
      expect(res.headers['content-type']).toBe(type)
      expect(res.headers['cache-control']).toBe('public, max-age=3600')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['content-encoding']).toBeUndefined()
      expect(res.body.equals(readFileSync(join(swaggerDir, name))), name).toBe(true)
    }
    const gz = await get(port, '/docs/swagger-ui-bundle.js', { 'accept-encoding': 'br, gzip;q=0.8' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gz.headers.vary).toBe('accept-encoding')
    expect(gz.body.byteLength).toBeLessThan(readFileSync(join(swaggerDir, 'swagger-ui-bundle.js')).byteLength)
    expect(gunzipSync(gz.body).equals(readFileSync(join(swaggerDir, 'swagger-ui-bundle.js')))).toBe(true)
    expect((await get(port, '/docs/swagger-ui.css', { 'accept-encoding': 'gzip;q=0, *' })).headers['content-encoding']).toBeUndefined()
    // Revalidation: the ETag of a representation gives 304 without a body.
    const etag = gz.headers.etag as string
    const again = await get(port, '/docs/swagger-ui-bundle.js', { 'accept-encoding': 'gzip', 'if-none-match': etag })
    expect(again.status).toBe(304)
    expect(again.body.byteLength).toBe(0)
    expect((await get(port, '/docs/swagger-ui-bundle.js', { 'if-none-match': etag })).status).toBe(200)
    const init = await get(port, '/docs/init.js')
    expect(init.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(init.body.toString()).toContain(`SwaggerUIBundle({ url: "/openapi.json", dom_id: '#docs'`)
    expect(up.requests).toEqual([])
  })

  it('serves /openapi.json: the document of this config', async () => {
    const up = await upstream()
    const { port, config: c } = await start(up)
    const res = await get(port, '/openapi.json')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-cache')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    const doc = JSON.parse(res.body.toString('utf8')) as OpenApiDocument
    expect(doc).toEqual(JSON.parse(JSON.stringify(buildOpenApi(c))))
    expect(doc.info.title).toBe('Docs e2e')
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/proxy', '/admin/upstreams', '/users/{id}', '/{path}']))
    expect(res.body.toString()).not.toContain(CLIENT_KEY)
    expect(res.body.toString()).not.toContain(UPSTREAM_SECRET)
    expect(up.requests).toEqual([])
  })

  it('answers HEAD like GET without a body, 405 with Allow for other methods, 404 JSON for unknown files', async () => {
    const up = await upstream()
    const { port } = await start(up)
    const page = await get(port, '/docs')
    const head = await get(port, '/docs', {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(page.body.byteLength))
    expect(head.body.byteLength).toBe(0)
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await get(port, method === 'DELETE' ? '/openapi.json' : '/docs', {}, method)
      expect(res.status, method).toBe(405)
      expect(res.headers.allow).toBe('GET, HEAD')
      expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_METHOD_NOT_ALLOWED')
    }
    // Files of the package outside the allow-list, and names that only look like ours.
    for (const path of ['/docs/package.json', '/docs/index.html', '/docs/swagger-ui.js', '/docs/swagger-ui-bundle.js.map', '/docs/sub/swagger-ui.css', '/docs/swagger-ui.css/', '/docs/INIT.JS']) {
      const res = await get(port, path)
      expect(res.status, path).toBe(404)
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(JSON.parse(res.body.toString()), path).toEqual({ error: { code: 'ERR_NOT_FOUND', message: 'Not found' } })
    }
    // Traversal attempts: refused by the transport (400) or unknown here (404); never a file.
    for (const path of ['/docs/%2e%2e%2fpackage.json', '/docs/..%2Fswagger-ui-dist%2Fpackage.json', '/docs/%2E%2E/%2E%2E/package.json', '/docs/..%5cpackage.json']) {
      const res = await get(port, path)
      expect([400, 404], path).toContain(res.status)
      expect(JSON.parse(res.body.toString()).error.code, path).toMatch(/^ERR_(BAD_REQUEST|NOT_FOUND)$/)
    }
    expect(up.requests).toEqual([])
    // Paths next to the docs still reach the routes.
    expect((await get(port, '/docsx')).status).toBe(200)
    expect(up.requests.map((r) => r.url)).toEqual(['/docsx'])
  })

  it('moves with docs.path and docs.openapiPath', async () => {
    const up = await upstream()
    const { port } = await start(up, { path: '/reference', openapiPath: '/spec/v1.json' })
    const html = (await get(port, '/reference')).body.toString()
    expect(html).toContain('src="/reference/swagger-ui-bundle.js"')
    expect((await get(port, '/reference/init.js')).body.toString()).toContain('url: "/spec/v1.json"')
    expect(JSON.parse((await get(port, '/spec/v1.json')).body.toString()).openapi).toBe('3.1.0')
    expect(up.requests).toEqual([])
    expect((await get(port, '/docs')).status).toBe(200) // now an ordinary path, proxied
    expect(up.requests.map((r) => r.url)).toEqual(['/docs'])
  })
})

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
