// Cancel on disconnect: a client that goes away mid-stream cancels the upstream request at once
// (the engine stops generating), on plain routes (forward()) and on metered routes (usage:), on
// every transport the runtime has. The fake engine stalls after k tokens and records when its
// response socket closed.
import { afterEach, describe, expect, it } from 'vitest'
import { request as httpRequest } from 'node:http'
import { RUNTIME } from '../src/transport/select.ts'
import { type FakeEngine, startFakeEngine } from '../../health-checker/test/fake-engine.ts'
import { startGateway, type TestGateway } from './helpers.ts'

/** The bound on "at once": the engine sees the close within 100 ms of the client's abort. */
const CANCEL_BOUND_MS = 100

const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  while (open.length) await open.pop()!.close()
})

// Native transports exist on Bun only (Deno's is refused by config, Node has none).
const transports = RUNTIME === 'bun' ? ['node', 'native'] : ['node']

async function setup(transport: string): Promise<{ engine: FakeEngine; gw: TestGateway }> {
  const engine = await startFakeEngine({ slots: 8, tokenMs: 2, tokens: 100 })
  open.push(engine)
  const gw = await startGateway({
    server: { shutdownTimeout: '1s', transport },
    upstreams: { llm: { targets: [engine.url], retries: 0 } },
    routes: [
      { name: 'metered', match: { path: '/m/*' }, upstream: 'llm', rewrite: { stripPrefix: '/m' }, usage: { format: 'openai' } },
      { name: 'anthropic', match: { path: '/a/*' }, upstream: 'llm', rewrite: { stripPrefix: '/a' }, usage: { format: 'anthropic' } },
      { name: 'plain', match: { path: '/p/*' }, upstream: 'llm', rewrite: { stripPrefix: '/p' } },
    ],
  })
  open.push(gw)
  return { engine, gw }
}

/** Streams a request, destroys the connection once `k` tokens arrived; resolves with the abort time. */
function abortAfter(gw: TestGateway, path: string, body: unknown, k: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body)
    const req = httpRequest(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8')
        if ((text.match(/"t\d+ "/g) ?? []).length >= k) {
          const at = Date.now()
          req.destroy()
          resolve(at)
        }
      })
      res.on('error', () => {})
    })
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' && err.message !== 'socket hang up') reject(err)
    })
    req.end(payload)
  })
}

async function closedAt(engine: FakeEngine, index: number): Promise<number> {
  // Generous: a close that never comes fails here after 3 s, a late one fails the bound below.
  for (let i = 0; i < 600; i++) {
    const at = engine.log[index]?.closedAt
    if (at !== undefined) return at
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error('the engine never saw its response close: the upstream request was not cancelled')
}

describe.each(transports)('cancel on disconnect (%s transport)', (transport) => {
  for (const [route, path] of [
    ['plain', '/p/v1/chat/completions'],
    ['metered', '/m/v1/chat/completions'],
    ['anthropic (metered)', '/a/v1/messages'],
  ] as const) {
    it(`${route}: the engine sees its response close within ${CANCEL_BOUND_MS} ms of the client's abort`, async () => {
      const { engine, gw } = await setup(transport)
      for (let round = 0; round < 3; round++) {
        const index = engine.log.length
        // The fake stalls after 4 tokens: only the client's going away can end this request.
        const abortedAt = await abortAfter(gw, path, { model: 'm', messages: [{ role: 'user', content: `hi ${round}` }], stream: true, fake_stall_after: 4 }, 4)
        const closed = await closedAt(engine, index)
        expect(engine.log[index].clientGone).toBe(true)
        expect(engine.log[index].completionTokens).toBe(4)
        expect(closed - abortedAt).toBeLessThan(CANCEL_BOUND_MS)
      }
    })
  }
})
