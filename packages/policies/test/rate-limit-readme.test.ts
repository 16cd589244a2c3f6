// The TypeScript example of docs/rate-limit.md, compiled and run (imports by path until the lead
// adds the export lines; the README uses '@switchboard/policies' and '@switchboard/store').
import { compose } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { expect, it } from 'vitest'
import { memoryStore } from '@switchboard/store'
import { rateLimit } from '../src/rate-limit/index.ts'

it('the docs example answers 200, 200, 429', async () => {
  const limited = rateLimit({ store: memoryStore(), name: 'per-ip', algorithm: 'sliding-window-log', limit: '2/min', key: 'ip' })
  const run = compose([limited], { terminal: (ex) => ex.respond(200, {}, 'ok') })
  const seen: unknown[] = []
  for (let i = 0; i < 3; i++) {
    const ex = createTestExchange({ clientIp: '203.0.113.7' })
    await run(ex)
    seen.push([ex.sent?.status, /^"per-ip";r=\d;t=\d+$/.test(String(ex.sent?.headers.ratelimit)), ex.sent?.headers['retry-after'] !== undefined])
  }
  expect(seen).toEqual([[200, true, false], [200, true, false], [429, true, true]])
})
