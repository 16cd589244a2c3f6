import { ConfigError } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createJwtAuthenticator, jwt, type JwtAlgorithm, type JwtOptions, jwtPolicy, parseJwtOptions } from '../src/index.ts'
import { b64url, clock, type JwksServer, run, startJwks } from './helpers.ts'

const ISSUER = 'https://id.example'
const SECRET = 'an-hmac-secret-that-is-long-enough-for-hs512-0123456789abcdefghij'
const ASYMMETRIC = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const

interface Signer {
  alg: JwtAlgorithm
  kid: string
  jwk: JWK
  pem: string
  privateKey: CryptoKey
}

const signers = new Map<string, Signer>()
const servers: JwksServer[] = []

async function makeSigner(alg: JwtAlgorithm, kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { alg, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg }, pem: await exportSPKI(publicKey), privateKey }
}

beforeAll(async () => {
  for (const alg of ASYMMETRIC) signers.set(alg, await makeSigner(alg, `${alg.toLowerCase()}-1`))
  signers.set('RS256-next', await makeSigner('RS256', 'rs256-2'))
  signers.set('ES256-other', await makeSigner('ES256', 'es256-x'))
})

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop()
})

const signer = (name: string): Signer => signers.get(name)!

type Clock = ReturnType<typeof clock>

/** A token signed by `s` at the clock's time: sub user-1, iss, aud api, 5 minutes. */
function sign(s: Signer, c: Clock, claims: Record<string, unknown> = {}, opts: { exp?: number; nbf?: number; iss?: string; aud?: string; sub?: string | null } = {}): Promise<string> {
  const t = new SignJWT({ ...claims }).setProtectedHeader({ alg: s.alg, kid: s.kid }).setIssuer(opts.iss ?? ISSUER).setAudience(opts.aud ?? 'api').setIssuedAt(c.seconds())
  if (opts.sub !== null) t.setSubject(opts.sub ?? 'user-1')
  t.setExpirationTime(opts.exp ?? c.seconds() + 300)
  if (opts.nbf !== undefined) t.setNotBefore(opts.nbf)
  return t.sign(s.privateKey)
}

async function jwks(keys: JWK[]): Promise<JwksServer> {
  const server = await startJwks(keys)
  servers.push(server)
  return server
}

function judge(auth: ReturnType<typeof createJwtAuthenticator>, token: string) {
  return auth.authenticate(createTestExchange({ headers: { authorization: `Bearer ${token}` } }))
}

function viaJwks(server: JwksServer, c: Clock, extra: Partial<JwtOptions> = {}) {
  return createJwtAuthenticator({ jwks: server.url, algorithms: [...ASYMMETRIC], issuer: ISSUER, audience: 'api', now: c.now, ...extra })
}

describe('jwt: signatures and algorithms', () => {
  it('accepts valid tokens of every asymmetric algorithm from a JWKS; identity is sub and the claims', async () => {
    const c = clock()
    const server = await jwks(ASYMMETRIC.map((a) => signer(a).jwk))
    const auth = viaJwks(server, c)
    for (const alg of ASYMMETRIC) {
      const result = await judge(auth, await sign(signer(alg), c, { role: 'dev' }, { sub: `user-${alg}` }))
      expect(result, alg).toMatchObject({ ok: true, identity: { method: 'jwt', subject: `user-${alg}`, claims: { role: 'dev', iss: ISSUER, aud: 'api' } } })
    }
    expect(server.hits()).toBe(1)
  })

  it('accepts valid tokens with a PEM public key per algorithm, and HS256/384/512 with a secret', async () => {
    const c = clock()
    for (const alg of ASYMMETRIC) {
      const auth = createJwtAuthenticator({ publicKey: signer(alg).pem, algorithms: [alg], now: c.now })
      expect((await judge(auth, await sign(signer(alg), c))).ok, alg).toBe(true)
    }
    const key = new TextEncoder().encode(SECRET)
    for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
      const auth = createJwtAuthenticator({ secret: SECRET, algorithms: [alg], issuer: ISSUER, now: c.now })
      const token = await new SignJWT({}).setProtectedHeader({ alg }).setSubject('svc').setIssuer(ISSUER).setExpirationTime(c.seconds() + 60).sign(key)
      expect(await judge(auth, token), alg).toMatchObject({ ok: true, identity: { subject: 'svc' } })
      const forged = await new SignJWT({}).setProtectedHeader({ alg }).setSubject('svc').setIssuer(ISSUER).sign(new TextEncoder().encode(`${SECRET}-other`))
      expect((await judge(auth, forged)).ok).toBe(false)
    }
  })

  it('refuses an alg the list does not allow, and a key of another family', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk, signer('ES256').jwk])
    const rsOnly = viaJwks(server, c, { algorithms: ['RS256'] })
    expect((await judge(rsOnly, await sign(signer('RS256'), c))).ok).toBe(true)
    expect(await judge(rsOnly, await sign(signer('ES256'), c))).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JOSE_ALG_NOT_ALLOWED' })
    // The right alg, another key: the signature does not verify.
    const pinned = createJwtAuthenticator({ publicKey: signer('ES256').pem, algorithms: ['ES256'], now: c.now })
    expect((await judge(pinned, await sign(signer('ES256-other'), c))).ok).toBe(false)
  })

  it('a token without kid is tried against every matching key of the set', async () => {
    const c = clock()
    const bare = (s: Signer): JWK => ({ ...s.jwk, kid: undefined })
    const server = await jwks([bare(signer('ES256-other')), bare(signer('ES256')), bare(signer('RS256'))])
    const auth = viaJwks(server, c)
    const noKid = (s: Signer) => new SignJWT({}).setProtectedHeader({ alg: s.alg }).setSubject('k').setIssuer(ISSUER).setAudience('api').setExpirationTime(c.seconds() + 60).sign(s.privateKey)
    expect((await judge(auth, await noKid(signer('ES256')))).ok).toBe(true)
    expect((await judge(auth, await noKid(signer('ES256-other')))).ok).toBe(true)
    const stranger = await makeSigner('ES256', 'stranger')
    expect(await judge(auth, await noKid(stranger))).toMatchObject({ ok: false, detail: 'no key verified the signature' })
  })

  it('refuses alg none (a hand-built unsigned token)', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk])
    const payload = { sub: 'admin', iss: ISSUER, aud: 'api', exp: c.seconds() + 60 }
    for (const header of [{ alg: 'none', typ: 'JWT' }, { alg: 'None' }, { alg: 'none', kid: signer('RS256').kid }]) {
      const token = `${b64url(header)}.${b64url(payload)}.`
      expect((await judge(viaJwks(server, c), token)).ok).toBe(false)
      expect((await judge(createJwtAuthenticator({ secret: SECRET, algorithms: ['HS256'], now: c.now }), token)).ok).toBe(false)
      expect((await judge(createJwtAuthenticator({ publicKey: signer('RS256').pem, algorithms: ['RS256'], now: c.now }), token)).ok).toBe(false)
    }
  })

  it('refuses HS256 signed with the RSA public key PEM as the secret (key confusion)', async () => {
    const c = clock()
    const rs = signer('RS256')
    const forged = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: rs.kid })
      .setSubject('admin')
      .setIssuer(ISSUER)
      .setAudience('api')
      .setExpirationTime(c.seconds() + 60)
      .sign(new TextEncoder().encode(rs.pem))
    const byPem = createJwtAuthenticator({ publicKey: rs.pem, algorithms: ['RS256'], now: c.now })
    expect(await judge(byPem, forged)).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JOSE_ALG_NOT_ALLOWED' })
    const server = await jwks([rs.jwk])
    expect((await judge(viaJwks(server, c, { algorithms: ['RS256'] }), forged)).ok).toBe(false)
    // And the honest RS256 token still verifies with both.
    expect((await judge(byPem, await sign(rs, c))).ok).toBe(true)
  })
})

describe('jwt: claims', () => {
  it('refuses expired and not-yet-valid tokens, within the clock tolerance only', async () => {
    const c = clock()
    const rs = signer('RS256')
    const auth = createJwtAuthenticator({ publicKey: rs.pem, algorithms: ['RS256'], now: c.now })
    const s = c.seconds()
    expect(await judge(auth, await sign(rs, c, {}, { exp: s - 60 }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JWT_EXPIRED (exp)' })
    expect((await judge(auth, await sign(rs, c, {}, { exp: s - 10 }))).ok).toBe(true) // 30 s tolerance
    expect(await judge(auth, await sign(rs, c, {}, { nbf: s + 120 }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JWT_CLAIM_VALIDATION_FAILED (nbf)' })
    expect((await judge(auth, await sign(rs, c, {}, { nbf: s + 10 }))).ok).toBe(true)
    const strict = createJwtAuthenticator({ publicKey: rs.pem, algorithms: ['RS256'], now: c.now, clockToleranceMs: 0 })
    expect((await judge(strict, await sign(rs, c, {}, { exp: s - 10 }))).ok).toBe(false)
  })

  it('refuses a wrong issuer or audience, and a token without sub', async () => {
    const c = clock()
    const rs = signer('RS256')
    const auth = createJwtAuthenticator({ publicKey: rs.pem, algorithms: ['RS256'], issuer: [ISSUER, 'https://other.example'], audience: 'api', now: c.now })
    expect((await judge(auth, await sign(rs, c, {}, { iss: 'https://other.example' }))).ok).toBe(true)
    expect(await judge(auth, await sign(rs, c, {}, { iss: 'https://evil.example' }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JWT_CLAIM_VALIDATION_FAILED (iss)' })
    expect(await judge(auth, await sign(rs, c, {}, { aud: 'billing' }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'ERR_JWT_CLAIM_VALIDATION_FAILED (aud)' })
    expect(await judge(auth, await sign(rs, c, {}, { sub: null }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'no sub claim' })
  })

  it('answers 403 for a valid token missing or mismatching a required claim', async () => {
    const c = clock()
    const rs = signer('RS256')
    const layer = jwt({
      publicKey: rs.pem,
      algorithms: ['RS256'],
      now: c.now,
      requiredClaims: { role: ['admin', 'ops'], scope: 'orders:write', groups: 'staff', tenant: null, email_verified: true },
    })
    const good = { role: 'ops', scope: 'orders:read orders:write', groups: ['staff', 'eng'], tenant: 't1', email_verified: true }
    expect((await run(layer, { headers: { authorization: `Bearer ${await sign(rs, c, good)}` } })).status).toBe(200)
    for (const bad of [
      { ...good, role: 'user' },
      { ...good, scope: 'orders:read' },
      { ...good, groups: ['eng'] },
      { ...good, tenant: undefined },
      { ...good, email_verified: false },
      { ...good, role: undefined },
    ]) {
      const r = await run(layer, { headers: { authorization: `Bearer ${await sign(rs, c, bad)}` } })
      expect(r.status, JSON.stringify(bad)).toBe(403)
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_FORBIDDEN', message: 'Forbidden' } })
      expect(r.forwarded).toBe(false)
    }
    // Anything else wrong stays 401, required claims or not.
    expect((await run(layer, { headers: { authorization: `Bearer ${await sign(rs, c, good, { exp: c.seconds() - 600 })}` } })).status).toBe(401)
  })
})

describe('jwt: JWKS fetching', () => {
  it('an unknown kid triggers one refetch; another unknown kid within the cooldown does not', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk])
    const auth = viaJwks(server, c)
    expect((await judge(auth, await sign(signer('RS256'), c))).ok).toBe(true)
    expect(server.hits()).toBe(1)
    expect(await judge(auth, await sign(signer('ES256'), c))).toMatchObject({ ok: false, reason: 'invalid', detail: 'unknown kid' })
    expect(server.hits()).toBe(2)
    c.advance(10_000)
    expect((await judge(auth, await sign(signer('EdDSA'), c))).ok).toBe(false)
    expect(server.hits()).toBe(2)
    // Past the cooldown the next unknown kid may refetch again; this time the key is there.
    server.setKeys([signer('RS256').jwk, signer('EdDSA').jwk])
    c.advance(21_000)
    expect((await judge(auth, await sign(signer('EdDSA'), c))).ok).toBe(true)
    expect(server.hits()).toBe(3)
  })

  it('concurrent unknown-kid tokens share one in-flight refetch, and all verify after it', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk])
    const auth = viaJwks(server, c)
    expect((await judge(auth, await sign(signer('RS256'), c))).ok).toBe(true)
    server.setKeys([signer('RS256').jwk, signer('RS256-next').jwk])
    server.setMode('gate')
    const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => sign(signer('RS256-next'), c, {}, { sub: `u${i}` })))
    const pending = Promise.all(tokens.map((t) => judge(auth, t)))
    await server.waitForHits(2)
    server.release()
    const results = await pending
    expect(results.map((r) => r.ok)).toEqual(tokens.map(() => true))
    expect(server.hits()).toBe(2)
  })

  it('rotation: after the refetch the new kid is accepted and the old kid is gone', async () => {
    const c = clock()
    const oldKey = signer('RS256')
    const newKey = signer('RS256-next')
    const server = await jwks([oldKey.jwk])
    const auth = viaJwks(server, c)
    expect((await judge(auth, await sign(oldKey, c, {}, { sub: 'before' }))).ok).toBe(true)
    server.setKeys([newKey.jwk])
    c.advance(31_000)
    expect(await judge(auth, await sign(newKey, c))).toMatchObject({ ok: true, identity: { subject: 'user-1' } })
    expect(server.hits()).toBe(2)
    expect(await judge(auth, await sign(oldKey, c, {}, { sub: 'after' }))).toMatchObject({ ok: false, reason: 'invalid', detail: 'unknown kid' })
    expect(server.hits()).toBe(2)
  })

  it('the JWKS cache expires after jwksCacheTtl and is fetched again', async () => {
    const c = clock()
    const server = await jwks([signer('ES384').jwk])
    const auth = viaJwks(server, c, { jwksCacheTtlMs: 60_000 })
    expect((await judge(auth, await sign(signer('ES384'), c, {}, { sub: 'a' }))).ok).toBe(true)
    c.advance(59_000)
    expect((await judge(auth, await sign(signer('ES384'), c, {}, { sub: 'b' }))).ok).toBe(true)
    expect(server.hits()).toBe(1)
    c.advance(2_000)
    expect((await judge(auth, await sign(signer('ES384'), c, {}, { sub: 'c' }))).ok).toBe(true)
    expect(server.hits()).toBe(2)
  })

  it('a JWKS server that is down: 401 for unknown kids, no hang; known kids keep verifying from the cache', async () => {
    const c = clock()
    const logs: unknown[] = []
    const log = (...args: unknown[]) => void logs.push(args)
    const server = await jwks([signer('PS256').jwk])
    const warm = viaJwks(server, c, { jwksCacheTtlMs: 60_000, log })
    expect((await judge(warm, await sign(signer('PS256'), c, {}, { sub: 'a' }))).ok).toBe(true)
    await server.stop()
    // Never fetched: nothing to verify with.
    const cold = viaJwks(server, c, { log })
    expect(await judge(cold, await sign(signer('PS256'), c))).toMatchObject({ ok: false, reason: 'invalid', detail: 'JWKS unavailable' })
    // Stale cache, server down: the old set keeps working for the kids it has.
    c.advance(120_000)
    expect(await judge(warm, await sign(signer('PS256'), c, {}, { sub: 'b' }))).toMatchObject({ ok: true, identity: { subject: 'b' } })
    expect(await judge(warm, await sign(signer('ES256'), c))).toMatchObject({ ok: false, reason: 'invalid', detail: 'unknown kid' })
    expect(logs.length).toBeGreaterThanOrEqual(2)
    expect(logs[0]).toEqual(['warn', 'auth: JWKS fetch failed', { url: server.url, error: expect.any(String) }])
  })

  it('a JWKS server that hangs is cut off by jwksTimeout; one that fails or sends too much is refused', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk])
    server.setMode('hang')
    const token = await sign(signer('RS256'), c)
    expect(await judge(viaJwks(server, c, { jwksTimeoutMs: 150 }), token)).toMatchObject({ ok: false, detail: 'JWKS unavailable' })
    server.setMode('error')
    expect(await judge(viaJwks(server, c), token)).toMatchObject({ ok: false, detail: 'JWKS unavailable' })
    server.setMode('huge')
    const logs: unknown[][] = []
    expect(await judge(viaJwks(server, c, { log: (...a: unknown[]) => void logs.push(a) }), token)).toMatchObject({ ok: false, detail: 'JWKS unavailable' })
    expect(JSON.stringify(logs)).toContain('larger than 65536 bytes')
    // A redirect is not followed (the set could be moved to a host nobody configured).
    server.setMode('redirect')
    const hitsBefore = server.hits()
    expect(await judge(viaJwks(server, c), token)).toMatchObject({ ok: false, detail: 'JWKS unavailable' })
    expect(server.hits()).toBe(hitsBefore + 1)
    // The same server answering normally: accepted (the refusals above were the server's fault).
    server.setMode('ok')
    expect((await judge(viaJwks(server, c), token)).ok).toBe(true)
  })

  it('after a failed fetch, no new fetch is tried within the cooldown', async () => {
    const c = clock()
    const server = await jwks([signer('RS256').jwk])
    server.setMode('error')
    const auth = viaJwks(server, c)
    const token = await sign(signer('RS256'), c)
    expect((await judge(auth, token)).ok).toBe(false)
    expect((await judge(auth, token)).ok).toBe(false)
    expect(server.hits()).toBe(1)
    server.setMode('ok')
    c.advance(30_000)
    expect((await judge(auth, token)).ok).toBe(true)
    expect(server.hits()).toBe(2)
  })
})

describe('jwt: verified-token cache', () => {
  it('serves a verified token from the cache until exp (+ tolerance), then refuses it', async () => {
    const c = clock()
    const rs = signer('RS256')
    const server = await jwks([rs.jwk])
    const auth = viaJwks(server, c, { jwksCacheTtlMs: 1_000 })
    const token = await sign(rs, c, {}, { exp: c.seconds() + 60 })
    expect((await judge(auth, token)).ok).toBe(true)
    // The key leaves the JWKS: only the cache can still accept this token.
    server.setKeys([signer('ES256').jwk])
    c.advance(50_000)
    expect((await judge(auth, await sign(rs, c, {}, { sub: 'fresh' }))).ok).toBe(false)
    expect((await judge(auth, token)).ok).toBe(true)
    // exp + 30 s tolerance passed: the cached entry is gone and the token is refused.
    c.advance(41_000)
    expect((await judge(auth, token)).ok).toBe(false)
  })

  it('a cached token is re-verified after 5 minutes even when exp is later', async () => {
    const c = clock()
    const rs = signer('RS256')
    const server = await jwks([rs.jwk])
    const auth = viaJwks(server, c, { jwksCacheTtlMs: 1_000 })
    const token = await sign(rs, c, {}, { exp: c.seconds() + 3600 })
    expect((await judge(auth, token)).ok).toBe(true)
    server.setKeys([])
    c.advance(299_000)
    expect((await judge(auth, token)).ok).toBe(true)
    c.advance(2_000)
    expect(await judge(auth, token)).toMatchObject({ ok: false, detail: 'unknown kid' })
  })

  it('an expired token is refused by the cache the moment its exp (+ tolerance) passes', async () => {
    const c = clock()
    const key = new TextEncoder().encode(SECRET)
    const auth = createJwtAuthenticator({ secret: SECRET, algorithms: ['HS256'], now: c.now, clockToleranceMs: 0 })
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('svc').setExpirationTime(c.seconds() + 10).sign(key)
    expect((await judge(auth, token)).ok).toBe(true)
    c.advance(9_000)
    expect((await judge(auth, token)).ok).toBe(true)
    c.advance(1_000)
    expect(await judge(auth, token)).toMatchObject({ ok: false, detail: 'ERR_JWT_EXPIRED (exp)' })
  })
})

describe('jwt: where the token comes from', () => {
  it('reads a custom header, a cookie or a query parameter, and removes only the credential upstream', async () => {
    const c = clock()
    const rs = signer('RS256')
    const layer = jwt({ publicKey: rs.pem, algorithms: ['RS256'], now: c.now, cookie: 'session', query: 'access_token' })
    const token = await sign(rs, c)
    const fromCookie = await run(layer, { headers: { cookie: `theme=dark; session=${token}; lang=en` } })
    expect(fromCookie.status).toBe(200)
    expect(fromCookie.ex.upstreamHeaders.cookie).toBe('theme=dark; lang=en')
    const fromQuery = await run(layer, { target: `/a?access_token=${token}&b=1` })
    expect(fromQuery.status).toBe(200)
    expect(fromQuery.ex.upstreamTarget).toBe('/a?b=1')
    const custom = jwt({ publicKey: rs.pem, algorithms: ['RS256'], now: c.now, header: 'x-id-token' })
    const r = await run(custom, { headers: { 'x-id-token': token, authorization: 'Basic abc' } })
    expect(r.status).toBe(200)
    expect(r.ex.upstreamHeaders['x-id-token']).toBeUndefined()
    expect(r.ex.upstreamHeaders.authorization).toBeUndefined()
    expect('authorization' in r.ex.upstreamHeaders).toBe(false)
  })

  it('refuses oversized tokens without parsing them; no token is missing (401 with the Bearer challenge)', async () => {
    const c = clock()
    const auth = createJwtAuthenticator({ secret: SECRET, algorithms: ['HS256'], now: c.now, maxTokenBytes: 64 })
    expect(await judge(auth, 'a'.repeat(65))).toEqual({ ok: false, reason: 'invalid', detail: 'token too large' })
    expect(await judge(auth, 'not.a.token')).toMatchObject({ ok: false, reason: 'invalid' })
    expect(await auth.authenticate(createTestExchange())).toEqual({ ok: false, reason: 'missing' })
    const r = await run(jwt({ secret: SECRET, algorithms: ['HS256'], realm: 'sso' }))
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe('Bearer realm="sso"')
  })
})

describe('jwt: options', () => {
  const at = 'policies.sso'
  const rsPem = () => signer('RS256').pem
  it('requires an explicit algorithm allow-list that fits the key, naming the key path', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ jwks: 'https://id.example/jwks' }, /policies\.sso\.algorithms: expected an explicit, non-empty list/],
      [{ jwks: 'https://id.example/jwks', algorithms: [] }, /policies\.sso\.algorithms: expected an explicit, non-empty list/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['none'] }, /policies\.sso\.algorithms\[0\]: expected a signing algorithm/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256', 'NONE'] }, /policies\.sso\.algorithms\[1\]/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['HS256'] }, /policies\.sso\.algorithms\[0\]: expected an asymmetric algorithm/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS1'] }, /policies\.sso\.algorithms\[0\]: expected one of HS256/],
      [{ secret: SECRET, algorithms: ['RS256'] }, /policies\.sso\.algorithms\[0\]: expected an HS\* algorithm/],
      [{ publicKey: 'PEM', algorithms: ['RS256'] }, /policies\.sso\.publicKey: expected a PEM public key/],
      [{ secret: SECRET, jwks: 'https://id.example/jwks', algorithms: ['HS256'] }, /policies\.sso\.jwks: expected exactly one of secret, publicKey or jwks/],
      [{ algorithms: ['RS256'] }, /policies\.sso: expected exactly one of secret, publicKey or jwks/],
      [{ jwks: 'ftp://id.example/jwks', algorithms: ['RS256'] }, /policies\.sso\.jwks/],
      [{ secret: 'too-short', algorithms: ['HS256'] }, /policies\.sso\.secret: expected at least 32 bytes for HS256 .*, got "9 bytes"/],
      [{ secret: 'x'.repeat(40), algorithms: ['HS256', 'HS384'] }, /policies\.sso\.secret: expected at least 48 bytes for HS384/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], clockTolerance: 'soon' }, /policies\.sso\.clockTolerance/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], requiredClaims: { role: { a: 1 } } }, /policies\.sso\.requiredClaims\.role/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], requiredClaims: ['role'] }, /policies\.sso\.requiredClaims/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], audience: [] }, /policies\.sso\.audience/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], cookie: 'a b' }, /policies\.sso\.cookie/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], jwksTimeout: 0 }, /policies\.sso\.jwksTimeout/],
      [{ jwks: 'https://id.example/jwks', algorithms: ['RS256'], publicKeyFile: '/etc/key.pem' }, /policies\.sso\.publicKeyFile/],
    ]
    for (const [raw, message] of cases) {
      expect(() => parseJwtOptions(raw, at), JSON.stringify(raw)).toThrow(ConfigError)
      expect(() => parseJwtOptions(raw, at), JSON.stringify(raw)).toThrow(message)
    }
    expect(() => parseJwtOptions({ publicKey: rsPem(), algorithms: ['ES256'] }, at)).toThrow(/policies\.sso\.algorithms\[0\]: expected an algorithm for the RSA public key/)
    expect(() => parseJwtOptions({ publicKey: signer('ES256').pem, algorithms: ['ES384'] }, at)).toThrow(/for the P-256 public key \(ES256\)/)
    expect(() => parseJwtOptions({ publicKey: rsPem(), algorithms: ['HS256'] }, at)).toThrow(/algorithms\[0\]: expected an asymmetric algorithm/)
    // The secret itself never appears in an error.
    try {
      parseJwtOptions({ secret: 'hunter2-secret', algorithms: ['HS256'] }, at)
    } catch (err) {
      expect(String(err)).not.toContain('hunter2')
    }
    expect(() => createJwtAuthenticator({ jwks: 'https://id.example/jwks', algorithms: [] })).toThrow(RangeError)
    expect(() => createJwtAuthenticator({ secret: SECRET, publicKey: rsPem(), algorithms: ['HS256'] })).toThrow(/jwt: publicKey must be exactly one of/)
  })

  it('parses durations, sizes and lists into the code options', () => {
    const options = parseJwtOptions(
      {
        jwks: 'https://id.example/jwks.json',
        algorithms: 'RS256',
        issuer: ISSUER,
        audience: ['api', 'web'],
        clockTolerance: '5s',
        maxTokenBytes: '4kb',
        jwksTimeout: '2s',
        jwksCacheTtl: '1h',
        jwksCooldown: '1m',
        requiredClaims: { role: 'admin', tid: null },
        identityHeaders: { subject: 'X-User', claims: { email: 'X-Email' } },
      },
      at,
    )
    expect(options).toMatchObject({
      jwks: 'https://id.example/jwks.json',
      algorithms: ['RS256'],
      issuer: ISSUER,
      audience: ['api', 'web'],
      clockToleranceMs: 5_000,
      maxTokenBytes: 4096,
      jwksTimeoutMs: 2_000,
      jwksCacheTtlMs: 3_600_000,
      jwksCooldownMs: 60_000,
      requiredClaims: { role: 'admin', tid: null },
      identityHeaders: { subject: 'x-user', claims: { email: 'x-email' } },
      header: 'authorization',
      realm: 'api',
    })
    expect(jwtPolicy.name).toBe('jwt')
    const auth = jwtPolicy.authenticator!(options, { name: 'sso', log: () => {} })
    expect(auth).toMatchObject({ method: 'jwt', challenge: 'Bearer realm="api"', credentialHeaders: ['authorization'] })
    expect(typeof jwtPolicy.create(options, { name: 'sso', log: () => {} })).toBe('function')
  })
})
