import { ConfigError, ConfigValidator } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiKey, apiKeyPolicy, createApiKeyAuthenticator, hashApiKey, parseApiKeyOptions } from '../src/index.ts'
import { run } from './helpers.ts'

const KEY = 'robot-key-0123456789abcdef'
const OTHER = 'ci-key-fedcba9876543210'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('api-key', () => {
  it('accepts the key in a named header, sends the identity upstream and never the key', async () => {
    const layer = apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] })
    const r = await run(layer, { headers: { 'x-api-key': KEY } })
    expect(r.status).toBe(200)
    expect(r.forwarded).toBe(true)
    expect(r.ex.upstreamHeaders).toMatchObject({ 'x-auth-subject': 'robot', 'x-auth-method': 'api-key' })
    expect('x-api-key' in r.ex.upstreamHeaders).toBe(true)
    expect(r.ex.upstreamHeaders['x-api-key']).toBeUndefined()
    expect(r.ex.state.get('switchboard.subject')).toBe('robot')
  })

  it('reads Authorization: Bearer by default, scheme case-insensitive; another scheme is no credential', async () => {
    const layer = apiKey({ keys: [{ id: 'robot', key: KEY }] })
    for (const value of [`Bearer ${KEY}`, `bearer ${KEY}`, `BEARER   ${KEY}  `]) {
      const r = await run(layer, { headers: { authorization: value } })
      expect(r.status, value).toBe(200)
      expect(r.ex.upstreamHeaders.authorization).toBeUndefined()
      expect('authorization' in r.ex.upstreamHeaders).toBe(true)
    }
    const basic = await run(layer, { headers: { authorization: `Basic ${btoa('robot:x')}` } })
    expect(basic.status).toBe(401)
    expect(basic.headers['www-authenticate']).toBe('Bearer realm="api"')
    expect((await run(layer, { headers: { authorization: KEY } })).status).toBe(401)
  })

  it('reads the key from the query parameter when configured, and removes it from the upstream target', async () => {
    const layer = apiKey({ header: 'x-api-key', query: 'api_key', keys: [{ id: 'robot', key: KEY }] })
    const r = await run(layer, { target: `/items?page=2&api_key=${encodeURIComponent(KEY)}&sort=a%20b` })
    expect(r.status).toBe(200)
    expect(r.ex.upstreamTarget).toBe('/items?page=2&sort=a%20b')
    const only = await run(layer, { target: `/items?api%5Fkey=${KEY}` })
    expect(only.status).toBe(200)
    expect(only.ex.upstreamTarget).toBe('/items')
    // Not configured: a query parameter is no credential.
    expect((await run(apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] }), { target: `/items?api_key=${KEY}` })).status).toBe(401)
  })

  it('accepts the sha256 hash form (hashApiKey) and the ${ENV}-expanded key form of the config', async () => {
    const hash = await hashApiKey(OTHER)
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    const env = new ConfigValidator('gw.yaml', { ROBOT_KEY: KEY })
    const options = parseApiKeyOptions({ header: 'x-api-key', keys: [{ id: 'robot', key: '${ROBOT_KEY}' }, { id: 'ci', hash: hash.toUpperCase().replace('SHA256:', 'sha256:') }] }, 'policies.keys', env)
    const layer = apiKeyPolicy.create(options, { name: 'keys', log: () => {} })
    expect((await run(layer, { headers: { 'x-api-key': KEY } })).ex.upstreamHeaders['x-auth-subject']).toBe('robot')
    expect((await run(layer, { headers: { 'x-api-key': OTHER } })).ex.upstreamHeaders['x-auth-subject']).toBe('ci')
    expect((await run(layer, { headers: { 'x-api-key': '${ROBOT_KEY}' } })).status).toBe(401)
    expect(() => parseApiKeyOptions({ keys: [{ id: 'robot', key: '${MISSING}' }] }, 'policies.keys', env)).toThrow(/policies\.keys\.keys\[0\]\.key/)
  })

  it('refuses a wrong key with 401, a short JSON body and the ApiKey challenge; nothing goes upstream', async () => {
    const layer = apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] })
    for (const headers of [{ 'x-api-key': `${KEY}x` }, { 'x-api-key': KEY.slice(0, -1) }, {}]) {
      const r = await run(layer, { headers })
      expect(r.status).toBe(401)
      expect(r.forwarded).toBe(false)
      expect(r.headers['www-authenticate']).toBe('ApiKey realm="api", header="x-api-key"')
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_UNAUTHORIZED', message: 'Unauthorized' } })
    }
  })

  it('removes or replaces a client-sent x-auth-subject', async () => {
    const layer = apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] })
    const forged = { 'x-api-key': KEY, 'x-auth-subject': 'admin', 'x-auth-method': 'jwt' }
    expect((await run(layer, { headers: forged })).ex.upstreamHeaders).toMatchObject({ 'x-auth-subject': 'robot', 'x-auth-method': 'api-key' })
    // Sending no identity still removes the forged default headers.
    const silent = await run(apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }], identityHeaders: false }), { headers: forged })
    expect(silent.status).toBe(200)
    expect(silent.ex.upstreamHeaders['x-auth-subject']).toBeUndefined()
    expect('x-auth-subject' in silent.ex.upstreamHeaders).toBe(true)
    const custom = await run(apiKey({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }], identityHeaders: { subject: 'X-Caller' } }), { headers: { ...forged, 'x-caller': 'root' } })
    expect(custom.ex.upstreamHeaders['x-caller']).toBe('robot')
    expect(custom.ex.upstreamHeaders['x-auth-method']).toBeUndefined()
  })

  it('tells keys apart when several are configured (every digest compared)', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => ({ id: `k${i}`, key: `key-number-${i}-0123456789` }))
    const auth = createApiKeyAuthenticator({ header: 'x-api-key', keys })
    for (const k of keys) {
      const result = await auth.authenticate(createTestExchange({ headers: { 'x-api-key': k.key } }))
      expect(result).toEqual({ ok: true, identity: { method: 'api-key', subject: k.id } })
    }
    expect(await auth.authenticate(createTestExchange({ headers: { 'x-api-key': 'key-number-9-0123456789' } }))).toMatchObject({ ok: false, reason: 'invalid' })
    expect(await auth.authenticate(createTestExchange())).toEqual({ ok: false, reason: 'missing' })
    expect(await auth.authenticate(createTestExchange({ headers: { 'x-api-key': '  ' } }))).toEqual({ ok: false, reason: 'missing' })
  })

  it('caches keys that verified (a hit skips the digest) and never caches failures', async () => {
    const auth = createApiKeyAuthenticator({ header: 'x-api-key', keys: [{ id: 'robot', key: KEY }], cacheSize: 4 })
    const digest = vi.spyOn(crypto.subtle, 'digest')
    const judge = (key: string) => auth.authenticate(createTestExchange({ headers: { 'x-api-key': key } }))
    expect((await judge(KEY)).ok).toBe(true)
    expect(digest).toHaveBeenCalledTimes(1)
    expect((await judge(KEY)).ok).toBe(true)
    expect(digest).toHaveBeenCalledTimes(1)
    // A flood of wrong keys, far more than the cache holds: each is digested, none evicts the good one.
    for (let i = 0; i < 50; i++) expect((await judge(`wrong-${i}`)).ok).toBe(false)
    expect(digest).toHaveBeenCalledTimes(51)
    for (let i = 0; i < 3; i++) expect((await judge('wrong-1')).ok).toBe(false)
    expect(digest).toHaveBeenCalledTimes(54)
    expect((await judge(KEY)).ok).toBe(true)
    expect(digest).toHaveBeenCalledTimes(54)
  })

  it('refuses bad options with the key path (config) or a RangeError (code)', () => {
    const at = 'policies.keys'
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ keys: [] }, /policies\.keys\.keys: expected at least one key/],
      [{}, /policies\.keys\.keys: expected a list/],
      [{ keys: [{ id: 'a', key: '' }] }, /policies\.keys\.keys\[0\]\.key/],
      [{ keys: [{ id: 'a' }] }, /policies\.keys\.keys\[0\]: expected exactly one of key or hash/],
      [{ keys: [{ id: 'a', key: KEY, hash: 'sha256:00' }] }, /policies\.keys\.keys\[0\]: expected exactly one of key or hash/],
      [{ keys: [{ id: 'a', hash: 'sha256:1234' }] }, /policies\.keys\.keys\[0\]\.hash/],
      [{ keys: [{ id: 'a', key: KEY }, { id: 'a', key: OTHER }] }, /policies\.keys\.keys\[1\]\.id: expected an id not already used by keys\[0\]/],
      [{ keys: [{ id: 'a', key: KEY }, { id: 'b', key: KEY }] }, /policies\.keys\.keys\[1\]: expected a key different from keys\[0\]/],
      [{ keys: [{ id: 'a b', key: KEY }] }, /policies\.keys\.keys\[0\]\.id/],
      [{ keys: [{ id: 'a', key: KEY }], header: 'x api' }, /policies\.keys\.header/],
      [{ keys: [{ id: 'a', key: KEY }], query: 'a&b' }, /policies\.keys\.query/],
      [{ keys: [{ id: 'a', key: KEY }], realm: 'a\nb' }, /policies\.keys\.realm/],
      [{ keys: [{ id: 'a', key: KEY }], identityHeaders: { subject: 'host' } }, /policies\.keys\.identityHeaders\.subject/],
      [{ keys: [{ id: 'a', key: KEY }], identityHeaders: { subject: 'x-a', method: 'X-A' } }, /policies\.keys\.identityHeaders\.method/],
      [{ keys: [{ id: 'a', key: KEY }], identityHeaders: { user: 'x-a' } }, /policies\.keys\.identityHeaders\.user/],
      [{ keys: [{ id: 'a', key: KEY }], tyop: 1 }, /policies\.keys\.tyop/],
    ]
    for (const [raw, message] of bad) {
      expect(() => parseApiKeyOptions(raw, at), JSON.stringify(raw)).toThrow(ConfigError)
      expect(() => parseApiKeyOptions(raw, at), JSON.stringify(raw)).toThrow(message)
    }
    expect(() => createApiKeyAuthenticator({ keys: [] })).toThrow(RangeError)
    expect(() => createApiKeyAuthenticator({ keys: [{ id: 'a', hash: 'md5:x' }] })).toThrow(/apiKey: keys\[0\]\.hash/)
    expect(() => createApiKeyAuthenticator({ keys: [{ id: 'a', key: KEY }], identityHeaders: { subject: 'content-length' } })).toThrow(/apiKey: identityHeaders\.subject/)
  })

  it('is an authentication policy type: parse, create and authenticator', async () => {
    expect(apiKeyPolicy.name).toBe('api-key')
    const options = apiKeyPolicy.parse({ header: 'X-Api-Key', keys: [{ id: 'robot', key: KEY }] }, 'policies.keys')
    expect(options.header).toBe('x-api-key')
    const auth = apiKeyPolicy.authenticator!(options, { name: 'keys', log: () => {} })
    expect(auth.method).toBe('api-key')
    expect(auth.credentialHeaders).toEqual(['x-api-key'])
    expect(auth.credentialQuery).toBeUndefined()
    expect(auth.challenge).toBe('ApiKey realm="api", header="x-api-key"')
    const q = createApiKeyAuthenticator({ query: 'key', keys: [{ id: 'robot', key: KEY }], realm: 'partners' })
    expect(q.credentialQuery).toEqual(['key'])
    expect(q.credentialHeaders).toEqual(['authorization'])
    expect(q.challenge).toBe('Bearer realm="partners"')
  })
})
