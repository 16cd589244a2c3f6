// Authentication policies through the gateway, over real sockets: the contract config (api-key,
// jwt over a real JWKS server that rotates, basic with a bcrypt hash), several schemes on one route
// ("any one suffices"), server-wide auth with public routes, identity headers, 401 vs 403.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import bcrypt from 'bcryptjs'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()

const KEY = 'robot-key-0123456789abcdef'
const CI_KEY = 'ci-key-fedcba9876543210'
const ISSUER = 'https://id.example'

async function jwksServer(): Promise<{ url: string; keys: JWK[]; hits: () => number }> {
  const state = { keys: [] as JWK[], hits: 0 }
  const server: Server = createServer((_req, res) => {
    state.hits++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise((r) => server.close(r)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`, keys: state.keys, hits: () => state.hits }
}

async function signer(alg: 'RS256' | 'ES256' | 'EdDSA', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg }
  const sign = (claims: Record<string, unknown> = {}, opts: { exp?: string; aud?: string; iss?: string } = {}) =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? 'api')
      .setSubject(String(claims.sub ?? 'user-1'))
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(privateKey)
  return { jwk, sign }
}

async function setup(extra: { server?: Record<string, unknown> } = {}): Promise<{ port: number; backend: TestUpstream; jwks: Awaited<ReturnType<typeof jwksServer>>; rs: Awaited<ReturnType<typeof signer>>; ed: Awaited<ReturnType<typeof signer>> }> {
  const backend = await upstream()
  const jwks = await jwksServer()
  const rs = await signer('RS256', 'rs-1')
  const ed = await signer('EdDSA', 'ed-1')
  jwks.keys.push(rs.jwk)
  const hash = bcrypt.hashSync('alice-password', 4)
  const gw = await gateway({
    server: { shutdownTimeout: '1s', ...extra.server },
    upstreams: { backend: { targets: [backend.url], retries: 0 } },
    policies: {
      keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'robot', key: KEY }, { id: 'ci', hash: `sha256:${await sha256Hex(CI_KEY)}` }] },
      sso: { use: 'jwt', jwks: jwks.url, issuer: ISSUER, audience: 'api', algorithms: ['RS256', 'ES256', 'EdDSA'] },
      staff: { use: 'basic', users: { alice: hash } },
      admins: { use: 'jwt', jwks: jwks.url, issuer: ISSUER, audience: 'api', algorithms: ['RS256'], requiredClaims: { role: 'admin' } },
    },
    routes: [
      { name: 'private', match: { path: '/private/*' }, upstream: 'backend', policies: ['keys', 'sso', 'staff'] },
      { name: 'admin', match: { path: '/admin-area/*' }, upstream: 'backend', policies: ['admins'] },
      { name: 'public', match: { path: '/public/*' }, upstream: 'backend', public: true },
      { name: 'open', match: { path: '/open/*' }, upstream: 'backend' },
    ],
  })
  return { port: gw.port, backend, jwks, rs, ed }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return Buffer.from(digest).toString('hex')
}

async function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

describe('auth policies through the gateway', () => {
  it('any one of api-key, jwt and basic suffices on a route; identity goes upstream, credentials do not', async () => {
    const { port, backend, rs, jwks } = await setup()
    const none = await get(port, '/private/x')
    expect(none.status).toBe(401)
    const challenge = none.headers.get('www-authenticate') ?? ''
    expect(challenge).toMatch(/ApiKey/)
    expect(challenge).toMatch(/Bearer/)
    expect(challenge).toMatch(/Basic realm=/)
    expect(JSON.parse(none.body).error.code).toBe('ERR_UNAUTHORIZED')
    expect(backend.requests).toHaveLength(0)

    expect((await get(port, '/private/x', { 'x-api-key': KEY })).status).toBe(200)
    expect(backend.requests.at(-1)!.headers).toMatchObject({ 'x-auth-subject': 'robot', 'x-auth-method': 'api-key' })
    expect(backend.requests.at(-1)!.headers['x-api-key']).toBeUndefined()
    expect((await get(port, '/private/x', { 'x-api-key': CI_KEY })).status).toBe(200)
    expect(backend.requests.at(-1)!.headers['x-auth-subject']).toBe('ci')

    const token = await rs.sign({ sub: 'user-42' })
    expect((await get(port, '/private/x', { authorization: `Bearer ${token}` })).status).toBe(200)
    expect(backend.requests.at(-1)!.headers).toMatchObject({ 'x-auth-subject': 'user-42', 'x-auth-method': 'jwt' })
    expect(backend.requests.at(-1)!.headers.authorization).toBeUndefined()

    const basic = `Basic ${Buffer.from('alice:alice-password').toString('base64')}`
    expect((await get(port, '/private/x', { authorization: basic })).status).toBe(200)
    expect(backend.requests.at(-1)!.headers).toMatchObject({ 'x-auth-subject': 'alice', 'x-auth-method': 'basic' })
    expect((await get(port, '/private/x', { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` })).status).toBe(401)
    expect(jwks.hits()).toBeGreaterThan(0)
  })

  it('bad tokens are 401: expired, wrong issuer or audience, alg none, unknown kid (one JWKS refetch)', async () => {
    const { port, backend, rs, ed, jwks } = await setup()
    const bad = [
      await rs.sign({}, { exp: '-1m' }),
      await rs.sign({}, { iss: 'https://evil.example' }),
      await rs.sign({}, { aud: 'other' }),
      `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', iss: ISSUER, aud: 'api', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.`,
      'not.a.token',
    ]
    for (const token of bad) expect((await get(port, '/private/x', { authorization: `Bearer ${token}` })).status).toBe(401)
    const before = jwks.hits()
    const unknown = await ed.sign({ sub: 'edd' })
    expect((await get(port, '/private/x', { authorization: `Bearer ${unknown}` })).status).toBe(401)
    expect(jwks.hits()).toBe(before + 1)
    // Within the cooldown another unknown kid does not refetch.
    expect((await get(port, '/private/x', { authorization: `Bearer ${await ed.sign({ sub: 'edd2' })}` })).status).toBe(401)
    expect(jwks.hits()).toBe(before + 1)
    expect(backend.requests).toHaveLength(0)
  })

  it('a valid token without a required claim is 403; with it, 200', async () => {
    const { port, rs } = await setup()
    const user = await get(port, '/admin-area/x', { authorization: `Bearer ${await rs.sign({ role: 'user' })}` })
    expect(user.status).toBe(403)
    expect(JSON.parse(user.body).error.code).toBe('ERR_FORBIDDEN')
    expect((await get(port, '/admin-area/x', { authorization: `Bearer ${await rs.sign({ role: 'admin' })}` })).status).toBe(200)
  })

  it('server-wide auth covers every route but public ones, 401 before 404, and server.publicPaths', async () => {
    const { port, backend } = await setup({ server: { policies: ['keys'], publicPaths: ['/open/status'] } })
    expect((await get(port, '/open/x')).status).toBe(401)
    expect((await get(port, '/open/x', { 'x-api-key': KEY })).status).toBe(200)
    expect((await get(port, '/open/status')).status).toBe(200)
    expect((await get(port, '/public/x')).status).toBe(200)
    expect((await get(port, '/nowhere')).status).toBe(401)
    expect((await get(port, '/nowhere', { 'x-api-key': KEY })).status).toBe(404)
    // The route's own schemes and the server's: any one suffices.
    expect((await get(port, '/private/x', { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` })).status).toBe(200)
    expect((await get(port, '/health')).status).toBe(200)
    expect(backend.requests.every((r) => r.url !== '/nowhere')).toBe(true)
  })

  it('a cors preflight is answered before authentication, wherever cors is listed; a 401 carries CORS headers', async () => {
    const backend = await upstream()
    const base = {
      server: { shutdownTimeout: '1s' },
      upstreams: { backend: { targets: [backend.url] } },
      policies: { keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] }, web: { use: 'cors', origins: ['https://app.example'] } },
    }
    for (const placement of ['server', 'route-after-auth'] as const) {
      const gw = await gateway({
        ...base,
        server: { ...base.server, policies: placement === 'server' ? ['web'] : [] },
        routes: [{ name: 'private', match: { path: '/private/*' }, upstream: 'backend', policies: placement === 'server' ? ['keys'] : ['keys', 'web'] }],
      })
      const preflight = await fetch(`${gw.url}/private/x`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' } })
      expect(preflight.status, placement).toBe(204)
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
      const denied = await get(gw.port, '/private/x', { origin: 'https://app.example' })
      expect(denied.status).toBe(401)
      expect(denied.headers.get('access-control-allow-origin')).toBe('https://app.example')
      // A plain OPTIONS (not a preflight) still needs credentials.
      expect((await fetch(`${gw.url}/private/x`, { method: 'OPTIONS' })).status).toBe(401)
    }
    expect(backend.requests).toHaveLength(0)
  })

  it('reads a PEM public key from publicKeyFile, relative to the config file', async () => {
    const backend = await upstream()
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const dir = mkdtempSync(join(tmpdir(), 'sb-jwt-'))
    writeFileSync(join(dir, 'idp.pem'), await exportSPKI(publicKey))
    const { createGateway, parseConfig } = await import('../src/index.ts')
    const raw = {
      server: { shutdownTimeout: '1s' },
      upstreams: { backend: { targets: [backend.url] } },
      policies: { sso: { use: 'jwt', publicKeyFile: 'idp.pem', algorithms: ['ES256'] } },
      routes: [{ name: 'r', match: { path: '/*' }, upstream: 'backend', policies: ['sso'] }],
    }
    const gw = await createGateway(parseConfig(raw, { file: join(dir, 'gateway.yaml') }), { logger: () => {} })
    cleanup.push(() => gw.close())
    const { port } = await gw.listen(0, '127.0.0.1')
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('pem-user').setExpirationTime('5m').sign(privateKey)
    expect((await get(port, '/x', { authorization: `Bearer ${token}` })).status).toBe(200)
    expect(backend.requests.at(-1)!.headers['x-auth-subject']).toBe('pem-user')
    expect((await get(port, '/x')).status).toBe(401)
    expect(() => parseConfig({ ...raw, policies: { sso: { use: 'jwt', publicKeyFile: 'missing.pem', algorithms: ['ES256'] } } }, { file: join(dir, 'gateway.yaml') })).toThrow(/policies\.sso\.publicKeyFile/)
  })

  it('refuses auth config mistakes at load with the key path', async () => {
    const { parseConfig } = await import('../src/index.ts')
    const base = { upstreams: { b: { targets: ['http://127.0.0.1:9'] } } }
    expect(() =>
      parseConfig({ ...base, policies: { sso: { use: 'jwt', jwks: 'http://127.0.0.1:9/j', algorithms: ['none'] } }, routes: [{ name: 'r', match: { path: '/*' }, upstream: 'b', policies: ['sso'] }] }),
    ).toThrow(/policies\.sso\.algorithms/)
    expect(() =>
      parseConfig({ ...base, policies: { k: { use: 'api-key', keys: [{ id: 'a', key: KEY }] } }, routes: [{ name: 'r', match: { path: '/*' }, upstream: 'b', policies: ['k'], public: true }] }),
    ).toThrow(/routes\[0\]\.public/)
    expect(() => parseConfig({ ...base, policies: { staff: { use: 'basic', users: { bob: 'plaintext' } } }, routes: [{ name: 'r', match: { path: '/*' }, upstream: 'b' }] })).toThrow(/policies\.staff\.users\.bob/)
  })
})
