import { argon2id } from '@noble/hashes/argon2.js'
import { ConfigError } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import bcrypt from 'bcryptjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { authenticate, basic, basicPolicy, createBasicAuthenticator, parseBasicOptions, verifyPasswordHash } from '../src/index.ts'
import { basicHeader, clock, run } from './helpers.ts'

// Produced by the reference C implementation (Debian libargon2-1, argon2id_hash_encoded /
// argon2i_hash_encoded) for the password 'correct horse': an independent check of the PHC parsing.
const REFERENCE_ARGON2ID = '$argon2id$v=19$m=64,t=2,p=1$c2FsdHNhbHRzYWx0MTIzNA$W1wtgLaDSByiqEf1WhZ4y4lqm2Px05P7G5kjLE9K1Zk'
const REFERENCE_ARGON2I = '$argon2i$v=19$m=32,t=3,p=2$c2FsdHNhbHRzYWx0MTIzNA$iIYCWlRHzyhTS7l0Rvt/aLWN1hJt5J2x'

let aliceHash = ''
let bobHash = ''

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, '')
}

function argon2idPhc(password: string, m = 64, t = 1, p = 1): string {
  const salt = crypto.getRandomValues(new Uint8Array(16))
  const out = argon2id(password, salt, { m, t, p, dkLen: 32 })
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(salt)}$${b64(out)}`
}

beforeAll(async () => {
  aliceHash = await bcrypt.hash('alice-password', 4)
  bobHash = argon2idPhc('bob: pass wörd')
})

const judge = (auth: ReturnType<typeof createBasicAuthenticator>, authorization?: string) =>
  auth.authenticate(createTestExchange({ headers: authorization === undefined ? {} : { authorization } }))

/** A verifier that holds every check until released, and records how many ran at once. */
function gatedVerifier() {
  let active = 0
  let maxActive = 0
  let calls = 0
  const waiting: Array<() => void> = []
  const hashes: string[] = []
  return {
    verify: async (password: string, hash: string): Promise<boolean> => {
      calls++
      hashes.push(hash)
      active++
      maxActive = Math.max(maxActive, active)
      await new Promise<void>((resolve) => waiting.push(resolve))
      active--
      return verifyPasswordHash(password, hash)
    },
    releaseAll: () => {
      for (const r of waiting.splice(0)) r()
    },
    stats: () => ({ active, maxActive, calls, waiting: waiting.length, hashes: [...hashes] }),
  }
}

/** A verifier that counts calls and verifies for real. */
function countingVerifier() {
  const hashes: string[] = []
  return {
    verify: (password: string, hash: string) => {
      hashes.push(hash)
      return verifyPasswordHash(password, hash)
    },
    hashes,
  }
}

describe('basic', () => {
  it('accepts bcrypt and argon2id users; the identity goes upstream and the Authorization header does not', async () => {
    const layer = basic({ users: { alice: aliceHash, bob: bobHash } })
    const a = await run(layer, { headers: { authorization: basicHeader('alice', 'alice-password') } })
    expect(a.status).toBe(200)
    expect(a.ex.upstreamHeaders).toMatchObject({ 'x-auth-subject': 'alice', 'x-auth-method': 'basic' })
    expect('authorization' in a.ex.upstreamHeaders && a.ex.upstreamHeaders.authorization === undefined).toBe(true)
    // A password with a colon, a space and non-ASCII (UTF-8 as the challenge's charset says).
    const b = await run(layer, { headers: { authorization: basicHeader('bob', 'bob: pass wörd') } })
    expect(b.status).toBe(200)
    expect(b.ex.upstreamHeaders['x-auth-subject']).toBe('bob')
  })

  it('verifies argon2id and argon2i hashes made by the reference implementation, and $2y$ bcrypt', async () => {
    expect(await verifyPasswordHash('correct horse', REFERENCE_ARGON2ID)).toBe(true)
    expect(await verifyPasswordHash('correct horsf', REFERENCE_ARGON2ID)).toBe(false)
    expect(await verifyPasswordHash('correct horse', REFERENCE_ARGON2I)).toBe(true)
    expect(await verifyPasswordHash('Correct horse', REFERENCE_ARGON2I)).toBe(false)
    const y = aliceHash.replace(/^\$2[ab]\$/, '$2y$')
    expect(await verifyPasswordHash('alice-password', y)).toBe(true)
    await expect(verifyPasswordHash('x', 'plaintext')).rejects.toThrow(TypeError)
    const auth = createBasicAuthenticator({ users: { carol: REFERENCE_ARGON2ID, dave: y } })
    expect(await judge(auth, basicHeader('carol', 'correct horse'))).toEqual({ ok: true, identity: { method: 'basic', subject: 'carol' } })
    expect((await judge(auth, basicHeader('dave', 'alice-password'))).ok).toBe(true)
  })

  it('refuses a wrong password with 401 and the Basic challenge', async () => {
    const layer = basic({ realm: 'staff', users: { alice: aliceHash, bob: bobHash } })
    for (const [user, password] of [['alice', 'alice-passwore'], ['bob', 'bob: pass word'], ['alice', '']]) {
      const r = await run(layer, { headers: { authorization: basicHeader(user!, password!) } })
      expect(r.status).toBe(401)
      expect(r.forwarded).toBe(false)
      expect(r.headers['www-authenticate']).toBe('Basic realm="staff", charset="UTF-8"')
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_UNAUTHORIZED', message: 'Unauthorized' } })
    }
  })

  it('an unknown user is refused after one verification of the same cost (a configured hash)', async () => {
    const counter = countingVerifier()
    const auth = createBasicAuthenticator({ users: { alice: aliceHash, bob: bobHash }, verify: counter.verify })
    expect(await judge(auth, basicHeader('mallory', 'alice-password'))).toEqual({ ok: false, reason: 'invalid', detail: 'unknown user' })
    expect(counter.hashes).toEqual([aliceHash])
    expect(await judge(auth, basicHeader('alice', 'nope'))).toEqual({ ok: false, reason: 'invalid', detail: 'wrong password' })
    expect(counter.hashes).toEqual([aliceHash, aliceHash])
  })

  it('malformed credentials are invalid; another scheme or no header is missing', async () => {
    const auth = createBasicAuthenticator({ users: { alice: aliceHash } })
    const malformed = [
      'Basic !!!!',
      'Basic YWxpY2U', // not padded to a multiple of 4
      `Basic ${btoa('alice')}`, // no colon
      `Basic ${btoa(':password')}`, // empty user
      `Basic ${btoa('al\xffice:x')}`, // not UTF-8
      'Basic',
    ]
    for (const value of malformed) expect(await judge(auth, value), value).toEqual({ ok: false, reason: 'invalid', detail: 'malformed credentials' })
    expect(await judge(auth, 'Bearer abc')).toEqual({ ok: false, reason: 'missing' })
    expect(await judge(auth)).toEqual({ ok: false, reason: 'missing' })
    expect((await judge(auth, basicHeader('alice', 'alice-password').replace('Basic', 'bAsIc'))).ok).toBe(true)
  })

  it('runs at most maxConcurrentVerifications hash checks at once, queues a bounded number, refuses the rest as busy', async () => {
    const gate = gatedVerifier()
    const auth = createBasicAuthenticator({ users: { alice: aliceHash }, verify: gate.verify, maxConcurrentVerifications: 2, maxQueuedVerifications: 3 })
    let settled = 0
    const start = (password: string) =>
      Promise.resolve(judge(auth, basicHeader('alice', password))).then((r) => {
        settled++
        return r
      })
    // The right password first, and in a slot before the others start: each request hashes its
    // credentials (WebCrypto, asynchronous) before it reaches the limiter, and those digests may
    // finish in any order (they did on Deno), so which of 12 simultaneous requests get a slot is
    // arbitrary.
    const first = start('alice-password')
    while (gate.stats().calls < 1) await new Promise((r) => setTimeout(r, 1))
    const pending = [first, ...Array.from({ length: 11 }, (_, i) => start(`wrong-${i + 1}`))]
    // Nothing is released yet: 2 run, 3 wait, and the other 7 are answered at once (busy).
    while (settled < 7) await new Promise((r) => setTimeout(r, 1))
    expect(settled).toBe(7)
    expect(gate.stats()).toMatchObject({ active: 2, calls: 2, waiting: 2 })
    // The next checks start only as earlier ones finish, never more than two at a time.
    while (gate.stats().waiting > 0) {
      gate.releaseAll()
      await new Promise((r) => setTimeout(r, 5))
      expect(gate.stats().active).toBeLessThanOrEqual(2)
    }
    const results = await Promise.all(pending)
    expect(gate.stats()).toMatchObject({ maxActive: 2, calls: 5 })
    const busy = results.filter((r) => !r.ok && r.detail === 'busy')
    expect(busy).toHaveLength(7)
    expect(results[0]).toEqual({ ok: true, identity: { method: 'basic', subject: 'alice' } })
    expect(results.filter((r) => !r.ok && r.detail === 'wrong password')).toHaveLength(4)
  })

  it('a saturated verifier answers 503 with Retry-After through authenticate(), not a 401 prompt', async () => {
    const gate = gatedVerifier()
    const layer = authenticate([createBasicAuthenticator({ users: { alice: aliceHash }, verify: gate.verify, maxConcurrentVerifications: 1, maxQueuedVerifications: 0 })])
    const first = run(layer, { headers: { authorization: basicHeader('alice', 'alice-password') } })
    while (gate.stats().calls < 1) await new Promise((r) => setTimeout(r, 1))
    const second = await run(layer, { headers: { authorization: basicHeader('alice', 'other') } })
    expect(second.status).toBe(503)
    expect(second.headers['retry-after']).toBe('1')
    expect(JSON.parse(second.body).error.code).toBe('ERR_SERVICE_UNAVAILABLE')
    gate.releaseAll()
    expect((await first).status).toBe(200)
  })

  it('remembers verified pairs for 5 minutes (successes only)', async () => {
    const c = clock()
    const counter = countingVerifier()
    const auth = createBasicAuthenticator({ users: { alice: aliceHash }, verify: counter.verify, now: c.now })
    const good = basicHeader('alice', 'alice-password')
    expect((await judge(auth, good)).ok).toBe(true)
    expect((await judge(auth, good)).ok).toBe(true)
    expect(counter.hashes).toHaveLength(1)
    expect((await judge(auth, basicHeader('alice', 'bad'))).ok).toBe(false)
    expect((await judge(auth, basicHeader('alice', 'bad'))).ok).toBe(false)
    expect(counter.hashes).toHaveLength(3)
    c.advance(299_000)
    expect((await judge(auth, good)).ok).toBe(true)
    expect(counter.hashes).toHaveLength(3)
    c.advance(2_000)
    expect((await judge(auth, good)).ok).toBe(true)
    expect(counter.hashes).toHaveLength(4)
  })

  it('refuses plaintext, unknown formats and DoS-sized argon2 parameters at parse, naming users.NAME', () => {
    const at = 'policies.staff'
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ users: { bob: 'plaintext' } }, /policies\.staff\.users\.bob: expected a bcrypt/],
      [{ users: { bob: '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=' } }, /policies\.staff\.users\.bob/],
      [{ users: { bob: '$1$abc$def' } }, /policies\.staff\.users\.bob/],
      [{ users: { bob: '$argon2id$v=19$m=524288,t=3,p=1$c2FsdHNhbHRzYWx0MTIzNA$W1wtgLaDSByiqEf1WhZ4y4lqm2Px05P7G5kjLE9K1Zk' } }, /policies\.staff\.users\.bob: expected an argon2 hash with m/],
      [{ users: { bob: '$argon2id$v=19$m=64,t=11,p=1$c2FsdHNhbHRzYWx0MTIzNA$W1wtgLaDSByiqEf1WhZ4y4lqm2Px05P7G5kjLE9K1Zk' } }, /policies\.staff\.users\.bob: expected an argon2 hash with t/],
      [{ users: { bob: '$argon2id$v=19$m=64,t=1,p=1$c2FsdA$W1wtgLaDSByiqEf1WhZ4y4lqm2Px05P7G5kjLE9K1Zk' } }, /users\.bob: expected an argon2 hash with a salt of at least 8 bytes/],
      [{ users: { bob: '$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$W1wtgLaDSByiqEf1WhZ4y4lqm2Px05P7G5kjLE9K1Zk' } }, /users\.bob: expected an argon2 hash of version/],
      [{ users: { bob: '$2b$31$abcdefghijklmnopqrstuuJ5gQ3Yl1dK0rq1OGk7oPpQcQkL7o0Ae' } }, /users\.bob: expected a bcrypt cost/],
      [{ users: {} }, /policies\.staff\.users: expected at least one user/],
      [{}, /policies\.staff\.users: expected a mapping/],
      [{ users: { 'a:b': '$2b$04$abcdefghijklmnopqrstuuJ5gQ3Yl1dK0rq1OGk7oPpQcQkL7o0Ae' } }, /policies\.staff\.users\.a:b/],
      [{ users: { bob: '$2b$04$abcdefghijklmnopqrstuuJ5gQ3Yl1dK0rq1OGk7oPpQcQkL7o0Ae' }, maxConcurrentVerifications: 0 }, /policies\.staff\.maxConcurrentVerifications/],
      [{ users: { bob: '$2b$04$abcdefghijklmnopqrstuuJ5gQ3Yl1dK0rq1OGk7oPpQcQkL7o0Ae' }, realm: 'a"\n' }, /policies\.staff\.realm/],
    ]
    for (const [raw, message] of cases) {
      expect(() => parseBasicOptions(raw, at), JSON.stringify(raw)).toThrow(ConfigError)
      expect(() => parseBasicOptions(raw, at), JSON.stringify(raw)).toThrow(message)
    }
    // A plaintext password is never echoed into the error.
    expect(() => parseBasicOptions({ users: { bob: 'hunter2-password' } }, at)).not.toThrow(/hunter2-password/)
    expect(() => createBasicAuthenticator({ users: { bob: 'plaintext' } })).toThrow(/basic: users\.bob must be/)
    const options = parseBasicOptions({ users: { alice: aliceHash }, realm: 'staff', maxConcurrentVerifications: 4, maxQueuedVerifications: 8 }, at)
    expect(options).toMatchObject({ users: { alice: aliceHash }, realm: 'staff', maxConcurrentVerifications: 4, maxQueuedVerifications: 8 })
    expect(basicPolicy.name).toBe('basic')
    expect(basicPolicy.authenticator!(options, { name: 'staff', log: () => {} })).toMatchObject({
      method: 'basic',
      challenge: 'Basic realm="staff", charset="UTF-8"',
      credentialHeaders: ['authorization'],
    })
  })
})
