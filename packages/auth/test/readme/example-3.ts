// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { jwt } from '../../src/index.ts'
import { compose } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { SignJWT } from 'jose'

const secret = 'replace-me-with-at-least-32-bytes-of-secret'
const layer = jwt({
  secret,
  algorithms: ['HS256'],
  issuer: 'https://id.example',
  requiredClaims: { scope: 'orders:write' },
  identityHeaders: { subject: 'x-user', claims: { email: 'x-user-email' } },
})
const sign = (scope: string) =>
  new SignJWT({ scope, email: 'ada@example.com' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('user-7')
    .setIssuer('https://id.example')
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(secret))
const run = compose([layer], { terminal: (ex) => ex.respond(200, {}, 'ok') })

const writer = createTestExchange({ headers: { authorization: `Bearer ${await sign('orders:read orders:write')}` } })
await run(writer)
console.log(writer.sent?.status, writer.upstreamHeaders['x-user'], writer.upstreamHeaders['x-user-email']) // 200 user-7 ada@example.com

const reader = createTestExchange({ headers: { authorization: `Bearer ${await sign('orders:read')}` } })
await run(reader)
console.log(reader.sent?.status) // 403
