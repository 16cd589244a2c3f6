import { type Authenticator, type AuthResult, CLIENT_STATE, IDENTITY_STATE, SUBJECT_STATE } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import bcrypt from 'bcryptjs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  authenticate,
  builtinAuthPolicies,
  createApiKeyAuthenticator,
  createBasicAuthenticator,
  createJwtAuthenticator,
  stripCredentials,
  stripIdentityHeaders,
} from '../src/index.ts'
import { basicHeader, run } from './helpers.ts'

const KEY = 'robot-key-0123456789abcdef'
let aliceHash = ''

beforeAll(async () => {
  aliceHash = await bcrypt.hash('alice-password', 4)
})

/** A scheme with a fixed answer, for the combination rules. */
function fixed(method: string, result: AuthResult, extra: Partial<Authenticator> = {}): Authenticator & { calls: number } {
  const a = {
    calls: 0,
    method,
    challenge: `${method} realm="x"`,
    credentialHeaders: [`x-${method}`],
    identityHeaders: { subject: 'x-auth-subject', method: 'x-auth-method' },
    authenticate() {
      a.calls++
      return result
    },
    ...extra,
  }
  return a
}

const keys = () => createApiKeyAuthenticator({ header: 'x-api-key', query: 'api_key', keys: [{ id: 'robot', key: KEY }] })
const staff = () => createBasicAuthenticator({ users: { alice: aliceHash } })

describe('authenticate', () => {
  it('any one suffices: the first scheme that accepts wins, later ones are not asked', async () => {
    const later = fixed('later', { ok: true, identity: { method: 'later', subject: 'l' } })
    const layer = authenticate([keys(), staff(), later])
    const r = await run(layer, { headers: { authorization: basicHeader('alice', 'alice-password') } })
    expect(r.status).toBe(200)
    expect(r.ex.upstreamHeaders['x-auth-subject']).toBe('alice')
    expect(later.calls).toBe(0)
    const k = await run(layer, { headers: { 'x-api-key': KEY } })
    expect(k.ex.upstreamHeaders).toMatchObject({ 'x-auth-subject': 'robot', 'x-auth-method': 'api-key' })
    // Neither credential: the third scheme is asked and accepts.
    expect((await run(layer)).ex.upstreamHeaders['x-auth-subject']).toBe('l')
    expect(later.calls).toBe(1)
  })

  it("removes every scheme's credentials upstream, not just the winner's", async () => {
    const layer = authenticate([keys(), staff()])
    const r = await run(layer, { target: '/x?api_key=wrong&q=1', headers: { 'x-api-key': 'wrong-key', authorization: basicHeader('alice', 'alice-password') } })
    expect(r.status).toBe(200)
    expect(r.ex.upstreamHeaders['x-auth-subject']).toBe('alice')
    expect(r.ex.upstreamHeaders).toHaveProperty('x-api-key', undefined)
    expect(r.ex.upstreamHeaders).toHaveProperty('authorization', undefined)
    expect(r.ex.upstreamTarget).toBe('/x?q=1')
  })

  it('sets ex.state and the identity headers, skipping values that could split a header', async () => {
    const identity = { method: 'custom', subject: 'svc-1', client: 'acme', claims: { email: 'a@example.com', level: 3, evil: 'x\r\nx-admin: 1', obj: { a: 1 }, wide: '名前' } }
    const scheme = fixed('custom', { ok: true, identity }, {
      identityHeaders: { subject: 'x-auth-subject', method: 'x-auth-method', client: 'x-auth-client', claims: { email: 'x-email', level: 'x-level', evil: 'x-evil', obj: 'x-obj', wide: 'x-wide', absent: 'x-absent' } },
    })
    const forged = { 'x-auth-client': 'other', 'x-email': 'root@example.com', 'x-evil': 'keep?', 'x-absent': 'forged', 'x-wide': 'w' }
    const r = await run(authenticate([scheme]), { headers: forged })
    expect(r.ex.state.get(IDENTITY_STATE)).toEqual(identity)
    expect(r.ex.state.get(SUBJECT_STATE)).toBe('svc-1')
    expect(r.ex.state.get(CLIENT_STATE)).toBe('acme')
    expect(r.ex.upstreamHeaders).toEqual({
      'x-custom': undefined,
      'x-auth-subject': 'svc-1',
      'x-auth-method': 'custom',
      'x-auth-client': 'acme',
      'x-email': 'a@example.com',
      'x-level': '3',
      'x-evil': undefined,
      'x-obj': undefined,
      'x-wide': undefined,
      'x-absent': undefined,
    })
    // No client: CLIENT_STATE stays unset.
    const plain = await run(authenticate([fixed('p', { ok: true, identity: { method: 'p', subject: 's' } })]))
    expect(plain.ex.state.has(CLIENT_STATE)).toBe(false)
  })

  it('403 beats 401: a forbidden answer from any scheme is ERR_FORBIDDEN', async () => {
    const forbidden = fixed('claims', { ok: false, reason: 'forbidden', detail: 'required claim role' })
    const invalid = fixed('key', { ok: false, reason: 'invalid', detail: 'unknown key' })
    for (const order of [[invalid, forbidden], [forbidden, invalid]]) {
      const r = await run(authenticate(order))
      expect(r.status).toBe(403)
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_FORBIDDEN', message: 'Forbidden' } })
      expect(r.headers['www-authenticate']).toBeUndefined()
    }
    // But a scheme that accepts still wins over a forbidden one.
    const ok = fixed('ok', { ok: true, identity: { method: 'ok', subject: 's' } })
    expect((await run(authenticate([forbidden, ok]))).status).toBe(200)
  })

  it('401 lists one challenge per scheme; the body never carries the detail', async () => {
    const r = await run(authenticate([keys(), staff(), createJwtAuthenticator({ secret: 'x'.repeat(32), algorithms: ['HS256'], realm: 'sso' })]), {
      headers: { 'x-api-key': 'wrong-key-1234' },
    })
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toEqual(['ApiKey realm="api", header="x-api-key"', 'Basic realm="restricted", charset="UTF-8"', 'Bearer realm="sso"'])
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_UNAUTHORIZED', message: 'Unauthorized' } })
    expect(r.body).not.toContain('unknown key')
    const single = await run(authenticate([keys()]))
    expect(single.headers['www-authenticate']).toBe('ApiKey realm="api", header="x-api-key"')
  })

  it('logs refusals with method, reason and detail, never the credential', async () => {
    const logs: Array<[string, string, Record<string, unknown> | undefined]> = []
    const layer = authenticate([keys(), staff()], { log: (level, message, fields) => void logs.push([level, message, fields]) })
    await run(layer, { headers: { 'x-api-key': 'wrong-key-1234', authorization: basicHeader('alice', 'secret-guess') } })
    expect(logs).toEqual([
      ['warn', 'auth: refused', { method: 'api-key', reason: 'invalid', detail: 'unknown key' }],
      ['warn', 'auth: refused', { method: 'basic', reason: 'invalid', detail: 'wrong password' }],
    ])
    expect(JSON.stringify(logs)).not.toMatch(/wrong-key-1234|secret-guess/)
    // No credential at all, or an accepted one: nothing to log.
    logs.length = 0
    await run(layer)
    await run(layer, { headers: { 'x-api-key': KEY } })
    expect(logs).toEqual([])
  })

  it('exempt paths skip authentication but still lose client-sent identity headers', async () => {
    const layer = authenticate([keys()], { exempt: ['/health', '/public/*'] })
    const forged = { 'x-auth-subject': 'admin', 'x-auth-method': 'api-key' }
    for (const path of ['/health', '/public', '/public/', '/public/a/b']) {
      const r = await run(layer, { target: path, normalizedPath: path, headers: forged })
      expect(r.status, path).toBe(200)
      expect(r.ex.upstreamHeaders, path).toEqual({ 'x-auth-subject': undefined, 'x-auth-method': undefined })
    }
    for (const path of ['/health/x', '/publicity', '/healthz', '/']) {
      expect((await run(layer, { target: path, normalizedPath: path, headers: forged })).status, path).toBe(401)
    }
    // The decision uses the normalised path, not the raw target.
    expect((await run(layer, { target: '/public/../private', normalizedPath: '/private' })).status).toBe(401)
    expect(() => authenticate([keys()], { exempt: ['health'] })).toThrow(RangeError)
    expect(() => authenticate([keys()], { exempt: ['/a/*/b'] })).toThrow(RangeError)
    expect(() => authenticate([])).toThrow(RangeError)
  })

  it('stripIdentityHeaders and stripCredentials clean an exchange for the gateway', () => {
    const ex = createTestExchange({ target: '/a?api_key=k&b=2', headers: { 'x-auth-subject': 'admin', 'x-api-key': 'k' } })
    const custom = fixed('c', { ok: false, reason: 'missing' }, { identityHeaders: { subject: 'x-user', claims: { email: 'x-email' } } })
    stripIdentityHeaders(ex, [keys(), custom])
    expect(ex.upstreamHeaders).toEqual({ 'x-auth-subject': undefined, 'x-auth-method': undefined, 'x-user': undefined, 'x-email': undefined })
    stripCredentials(ex, [keys()])
    expect(ex.upstreamHeaders['x-api-key']).toBeUndefined()
    expect('x-api-key' in ex.upstreamHeaders).toBe(true)
    expect(ex.upstreamTarget).toBe('/a?b=2')
  })

  it('exports the three policy types for a registry', () => {
    expect(builtinAuthPolicies.map((p) => p.name)).toEqual(['api-key', 'jwt', 'basic'])
    for (const p of builtinAuthPolicies) expect(typeof p.authenticator).toBe('function')
  })
})
