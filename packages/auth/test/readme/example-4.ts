// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { authenticate } from '../../src/index.ts'
import { type Authenticator, compose, DEFAULT_IDENTITY_HEADERS } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'

const sessions = new Map([['s-7f3a9c', { user: 'ada', tenant: 'acme' }]])
const session: Authenticator = {
  method: 'session',
  challenge: 'Session realm="app"',
  credentialHeaders: ['x-session'],
  identityHeaders: { ...DEFAULT_IDENTITY_HEADERS, client: 'x-auth-tenant' },
  authenticate(ex) {
    const id = ex.request.headers['x-session']
    if (typeof id !== 'string') return { ok: false, reason: 'missing' }
    const found = sessions.get(id)
    if (found === undefined) return { ok: false, reason: 'invalid', detail: 'unknown session' }
    return { ok: true, identity: { method: 'session', subject: found.user, client: found.tenant } }
  },
}
const run = compose([authenticate([session])], { terminal: (ex) => ex.respond(200, {}, 'ok') })
const ex = createTestExchange({ headers: { 'x-session': 's-7f3a9c' } })
await run(ex)
console.log(ex.upstreamHeaders['x-auth-subject'], ex.upstreamHeaders['x-auth-tenant'], ex.upstreamHeaders['x-session']) // ada acme undefined
