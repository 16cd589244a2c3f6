// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { authenticate, createApiKeyAuthenticator, createBasicAuthenticator, createJwtAuthenticator, hashApiKey } from '../../src/index.ts'
import { compose, IDENTITY_STATE } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'

const auth = authenticate(
  [
    createApiKeyAuthenticator({ header: 'x-api-key', keys: [{ id: 'ci', hash: await hashApiKey('k-0123456789abcdef') }] }),
    createJwtAuthenticator({ jwks: 'https://login.example.com/.well-known/jwks.json', algorithms: ['RS256'], issuer: 'https://login.example.com/', audience: 'api' }),
    createBasicAuthenticator({ realm: 'staff', users: { alice: '$2b$10$b5/Bh5OdigvTc.zyeqiUFehSYgG9JOrjwGNAUeSmCTQ2ysukx3KZa' } }),
  ],
  { exempt: ['/health', '/assets/*'], log: (level, message, fields) => console.warn(level, message, fields) },
)
const run = compose([auth], { terminal: (ex) => ex.respond(200, {}, 'ok') })

const staff = createTestExchange({ headers: { authorization: `Basic ${btoa('alice:alice-password')}` } })
await run(staff)
console.log(staff.sent?.status, staff.state.get(IDENTITY_STATE)) // 200 { method: 'basic', subject: 'alice' }

const nobody = createTestExchange({ target: '/orders' })
await run(nobody)
console.log(nobody.sent?.status, nobody.sent?.headers['www-authenticate']) // 401 [ 'ApiKey realm="api", header="x-api-key"', 'Bearer realm="api"', 'Basic realm="staff", charset="UTF-8"' ]
