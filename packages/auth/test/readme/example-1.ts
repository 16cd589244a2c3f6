// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { compose } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { apiKey } from '../../src/index.ts'

const run = compose([apiKey({ header: 'x-api-key', keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })], {
  terminal: (ex) => ex.respond(200, {}, `hello ${ex.upstreamHeaders['x-auth-subject']}`),
})
const ex = createTestExchange({ headers: { 'x-api-key': 'k-0123456789abcdef' } })
await run(ex)
console.log(ex.sent?.status, ex.sent?.text, ex.upstreamHeaders['x-api-key']) // 200 hello ci undefined
