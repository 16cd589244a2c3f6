// Model routing end to end: routes on `match.body` fields in front of fake OpenAI-compatible
// engines, the aggregated GET /v1/models, and the parsed body reaching a prefix-affinity balancer.
import { afterEach, describe, expect, it } from 'vitest'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConfigError } from '@switchboard/core'
import { startFakeEngine, type FakeEngine } from '../../health-checker/test/fake-engine.ts'
import { parseConfig } from '../src/index.ts'
import { rawRequest, startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function engine(model: string, slots = 4): Promise<FakeEngine> {
  const e = await startFakeEngine({ model, slots, tokenMs: 1, tokens: 4 })
  cleanup.push(() => e.close())
  return e
}

async function gateway(raw: Record<string, unknown>): Promise<TestGateway> {
  const g = await startGateway({ server: { shutdownTimeout: '1s', ...(raw.server as object) }, ...raw })
  cleanup.push(() => g.close())
  return g
}

const ENGINE_STATS = { path: '/metrics', interval: '100ms', format: 'vllm' }
/** Health checks on `/v1/models` every 50 ms, so a closed engine turns unhealthy after one failed probe. */
const HEALTH = { path: '/v1/models', method: 'GET', interval: '50ms', timeout: '500ms', unhealthyThreshold: 1, healthyThreshold: 1 }

/** Two model pools behind one path: llama-* on llm-a (8b and 70b engines), qwen-* on llm-b. */
async function modelGateway(extra: Record<string, unknown> = {}): Promise<{ g: TestGateway; llama8: FakeEngine; llama70: FakeEngine; qwen: FakeEngine }> {
  const [llama8, llama70, qwen] = await Promise.all([engine('llama-3-8b'), engine('llama-3-70b'), engine('qwen-2-7b')])
  const g = await gateway({
    server: { limits: { maxBodySize: '4kb' } },
    upstreams: {
      'llm-a': { targets: [llama8.url, llama70.url], engineStats: ENGINE_STATS, healthCheck: HEALTH, retries: 0 },
      'llm-b': { targets: [qwen.url], engineStats: ENGINE_STATS, healthCheck: HEALTH, retries: 0 },
    },
    routes: [
      { name: 'chat-llama', match: { path: '/v1/chat/completions', body: { model: 'llama-*' } }, upstream: 'llm-a' },
      { name: 'chat-qwen', match: { path: '/v1/chat/completions', body: { model: 'qwen-*' } }, upstream: 'llm-b' },
    ],
    models: {},
    ...extra,
  })
  return { g, llama8, llama70, qwen }
}

async function chat(g: TestGateway, body: unknown, init: RequestInit = {}): Promise<{ status: number; text: string; json: () => Record<string, unknown> }> {
  const res = await fetch(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
  const text = await res.text()
  return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> }
}

async function modelIds(g: TestGateway, headers: Record<string, string> = {}): Promise<{ status: number; ids: string[]; body: Record<string, unknown> }> {
  const res = await fetch(`${g.url}/v1/models`, { headers })
  const body = (await res.json()) as Record<string, unknown>
  const data = (body.data ?? []) as Array<{ id: string }>
  return { status: res.status, ids: data.map((m) => m.id), body }
}

/** Waits (bounded by the test timeout) until every engine-stats endpoint has reported its models. */
async function untilModelsKnown(g: TestGateway, count: number): Promise<void> {
  while ((await modelIds(g)).ids.length < count) await new Promise((r) => setTimeout(r, 20))
}

const messages = [{ role: 'user', content: 'hello' }]

describe('model routing on match.body', () => {
  it('sends each model to its pool, and a model no route serves gets a JSON 404', async () => {
    const { g, llama8, llama70, qwen } = await modelGateway()
    for (let i = 0; i < 4; i++) {
      const llama = await chat(g, { model: 'llama-3-8b', messages })
      expect(llama.status).toBe(200)
      expect(llama.json().model).toMatch(/^llama-3-/)
      const q = await chat(g, { model: 'qwen-2-7b', messages })
      expect(q.status).toBe(200)
      expect(q.json().model).toBe('qwen-2-7b')
    }
    expect(llama8.served + llama70.served).toBe(4)
    expect(qwen.served).toBe(4)

    const unknown = await chat(g, { model: 'gpt-4o', messages })
    expect(unknown.status).toBe(404)
    expect(unknown.json()).toMatchObject({ error: { code: 'ERR_NO_ROUTE' } })
    // A model field of another type, or none, matches no glob.
    expect((await chat(g, { model: ['llama-3-8b'], messages })).status).toBe(404)
    expect((await chat(g, { messages })).status).toBe(404)
    expect(llama8.served + llama70.served + qwen.served).toBe(8)
  })

  it('answers 404 for a body that is not JSON and 413 for one over server.limits.maxBodySize', async () => {
    const { g, llama8, llama70, qwen } = await modelGateway()
    const notJson = await chat(g, '{"model": "llama-3-8b", ')
    expect(notJson.status).toBe(404)
    expect(notJson.json()).toMatchObject({ error: { code: 'ERR_NO_ROUTE' } })
    expect((await chat(g, '["llama-3-8b"]')).status).toBe(404) // JSON, but not an object
    expect((await chat(g, Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0x22, 0x7d]) as unknown as string)).status).toBe(404) // not UTF-8

    const big = await chat(g, { model: 'llama-3-8b', messages: [{ role: 'user', content: 'x'.repeat(5000) }] })
    expect(big.status).toBe(413)
    expect(big.json()).toMatchObject({ error: { code: 'ERR_PAYLOAD_TOO_LARGE' } })
    expect(llama8.served + llama70.served + qwen.served).toBe(0)
  })

  it('routes a chunked (streamed) request body, relays the SSE answer, and refuses a chunked body over the limit', async () => {
    const { g, qwen } = await modelGateway()
    const streamed = (text: string): ReadableStream<Uint8Array> => {
      const bytes = new TextEncoder().encode(text)
      let at = 0
      return new ReadableStream({
        pull(controller) {
          if (at >= bytes.length) return controller.close()
          controller.enqueue(bytes.slice(at, at + 7)) // several small chunks, no content-length
          at += 7
        },
      })
    }
    const body = JSON.stringify({ model: 'qwen-2-7b', stream: true, messages })
    const res = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamed(body),
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: '))
    expect(events.at(-1)).toBe('data: [DONE]')
    const models = events.slice(0, -1).map((e) => (JSON.parse(e.slice(6)) as { model?: string }).model)
    expect(models.length).toBeGreaterThanOrEqual(4) // one event per token (4), and whatever else the engine adds
    expect(new Set(models.filter((m) => m !== undefined))).toEqual(new Set(['qwen-2-7b']))
    expect(qwen.served).toBe(1)

    // Chunked, so no content-length announces the size: the limit must hold while reading.
    const tooBig = JSON.stringify({ model: 'qwen-2-7b', messages: [{ role: 'user', content: 'y'.repeat(5000) }] })
    const chunks = (tooBig.match(/.{1,1000}/gs) ?? []).map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('')
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`
    const { text } = await rawRequest(g.port, head + chunks + '0\r\n\r\n', { idleMs: 2_000 })
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(text).toContain('ERR_PAYLOAD_TOO_LARGE')
    expect(qwen.served).toBe(1)
  })
})

describe('aggregated GET /v1/models', () => {
  it('lists each model of the healthy endpoints once, sorted, with the upstreams serving it', async () => {
    const { g } = await modelGateway()
    await untilModelsKnown(g, 3)
    const { status, body } = await modelIds(g)
    expect(status).toBe(200)
    expect(body.object).toBe('list')
    const data = body.data as Array<Record<string, unknown>>
    expect(data.map((m) => [m.id, m.object, m.owned_by, m.upstreams])).toEqual([
      ['llama-3-70b', 'model', 'llm-a', ['llm-a']],
      ['llama-3-8b', 'model', 'llm-a', ['llm-a']],
      ['qwen-2-7b', 'model', 'llm-b', ['llm-b']],
    ])
    for (const m of data) expect(Number.isInteger(m.created)).toBe(true)
    const head = await fetch(`${g.url}/v1/models`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
  })

  it('drops the models of an endpoint that turned unhealthy', async () => {
    const { g, llama70 } = await modelGateway()
    await untilModelsKnown(g, 3)
    await llama70.close()
    // The 50 ms health check marks it unhealthy after one failed probe; poll (bounded by the test timeout).
    let ids = (await modelIds(g)).ids
    while (ids.includes('llama-3-70b')) {
      await new Promise((r) => setTimeout(r, 20))
      ids = (await modelIds(g)).ids
    }
    expect(ids).toEqual(['llama-3-8b', 'qwen-2-7b'])
    // The pool still serves llama-3-* from the healthy engine.
    expect((await chat(g, { model: 'llama-3-70b', messages })).status).toBe(200)
  })

  it('lists a model served by two upstreams once, owned by the first listed', async () => {
    const [a, b] = await Promise.all([engine('shared-1b'), engine('shared-1b')])
    const g = await gateway({
      upstreams: {
        one: { targets: [a.url], engineStats: ENGINE_STATS },
        two: { targets: [b.url], engineStats: ENGINE_STATS },
      },
      routes: [{ name: 'chat', match: { path: '/v1/*' }, upstream: 'one' }],
      models: { upstreams: ['two', 'one'] },
    })
    let data = (await modelIds(g)).body.data as Array<Record<string, unknown>>
    while ((data[0]?.upstreams as string[] | undefined)?.length !== 2) {
      await new Promise((r) => setTimeout(r, 20))
      data = (await modelIds(g)).body.data as Array<Record<string, unknown>>
    }
    expect(data).toHaveLength(1)
    expect(data[0]).toMatchObject({ id: 'shared-1b', owned_by: 'two', upstreams: ['two', 'one'] })
  })

  it('fetches /v1/models itself for an upstream without engineStats: one fetch in flight per endpoint, cached', async () => {
    let fetches = 0
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const plain = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
      if (req.url !== '/v1/models') return void res.writeHead(404).end()
      fetches++
      void gate.then(() => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'mistral-7b', object: 'model', owned_by: 'someone' }, { id: 'mistral-7b' }, { id: 7 }] }))
      })
    })
    cleanup.push(() => plain.close())
    const g = await gateway({
      upstreams: { plain: { targets: [plain.url] } },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'plain' }],
      models: { upstreams: ['plain'], cacheTtl: '1h' },
    })
    const pending = Array.from({ length: 5 }, () => modelIds(g))
    while (fetches === 0) await new Promise((r) => setTimeout(r, 5))
    release()
    const answers = await Promise.all(pending)
    for (const a of answers) expect(a.ids).toEqual(['mistral-7b'])
    expect(fetches).toBe(1)
    expect((await modelIds(g)).ids).toEqual(['mistral-7b'])
    expect(fetches).toBe(1) // cached
  })

  it('bounds the fetch: an endpoint that hangs or sends too much contributes nothing, the list still answers', async () => {
    const hanging: ServerResponse[] = []
    const slow = await startUpstream((_req, res) => void hanging.push(res))
    const huge = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }) // no content-length: the limit must hold while reading
      res.end(JSON.stringify({ object: 'list', data: Array.from({ length: 2000 }, (_, i) => ({ id: `model-${i}` })) }))
    })
    const ok = await engine('phi-3')
    cleanup.push(async () => {
      for (const r of hanging) r.destroy()
      await Promise.all([slow.close(), huge.close()])
    })
    const g = await gateway({
      upstreams: {
        slow: { targets: [slow.url] },
        huge: { targets: [huge.url] },
        ok: { targets: [ok.url] },
      },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'ok' }],
      models: { upstreams: ['slow', 'huge', 'ok'], timeout: '200ms', maxBodySize: '4kb' },
    })
    const { status, ids } = await modelIds(g)
    expect(status).toBe(200)
    expect(ids).toEqual(['phi-3'])
    expect(hanging.length).toBe(1)
  })

  it('is behind the server policies and the policies of a route claiming its path', async () => {
    const KEY = 'k-0123456789abcdef'
    const llama = await engine('llama-3-8b')
    const policies = { keys: { use: 'api-key', header: 'x-api-key', keys: [{ id: 'robot', key: KEY }] } }
    const upstreams = { llm: { targets: [llama.url], engineStats: ENGINE_STATS } }
    const server = await gateway({
      server: { policies: ['keys'] },
      policies,
      upstreams,
      routes: [{ name: 'health', match: { path: '/ping' }, upstream: 'llm' }],
      models: {},
    })
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401)
    while ((await modelIds(server, { 'x-api-key': KEY })).ids.length === 0) await new Promise((r) => setTimeout(r, 20))
    expect((await modelIds(server, { 'x-api-key': KEY })).ids).toEqual(['llama-3-8b'])

    const route = await gateway({
      policies,
      upstreams,
      routes: [{ name: 'api', match: { path: '/v1/*' }, upstream: 'llm', policies: ['keys'] }],
      models: {},
    })
    expect((await fetch(`${route.url}/v1/models`)).status).toBe(401)
    expect((await modelIds(route, { 'x-api-key': KEY })).status).toBe(200)
    expect(llama.served).toBe(0)
  })
})

describe('the parsed body reaches balancers that read the prompt', () => {
  it('prefix-affinity keeps each conversation on one engine (prefix hits rise over round-robin) with no body-parsing policy', async () => {
    const hits: Record<string, number> = {}
    for (const balancer of ['round-robin', 'prefix-affinity']) {
      const list = await Promise.all([1, 2, 3].map(() => engine('llama-3-8b')))
      const g = await gateway({
        upstreams: { llm: { targets: list.map((e) => e.url), engineStats: ENGINE_STATS, balancer: { strategy: balancer, options: balancer === 'prefix-affinity' ? { chunkChars: 32, loadFactor: 2 } : {} }, retries: 0 } },
        routes: [{ name: 'chat', match: { path: '/v1/*' }, upstream: 'llm' }],
      })
      // 8 conversations × 6 turns, one request at a time: each conversation's long system prompt is its shared prefix.
      // loadFactor 2: a scrape taken mid-answer may show the previous request still running on the
      // engine for up to one interval, which a tighter bound would count as overload.
      for (let turn = 0; turn < 6; turn++) {
        for (let c = 0; c < 8; c++) {
          const res = await chat(g, { model: 'llama-3-8b', messages: [{ role: 'system', content: `Conversation ${c}. ${'Follow the house style. '.repeat(4)}` }, { role: 'user', content: `turn ${turn}` }] })
          expect(res.status).toBe(200)
        }
      }
      hits[balancer] = list.reduce((n, e) => n + e.prefixHits, 0)
    }
    // Round-robin walks each conversation over all three engines (24 hits of 48); with the prompt,
    // prefix-affinity sends turns 2-6 to the engine that has the prefix (40). Without the body it
    // picks among equally loaded engines at random (~26).
    expect(hits['round-robin']).toBe(24)
    expect(hits['prefix-affinity'], JSON.stringify(hits)).toBeGreaterThanOrEqual(38)
  })

  it('still forwards the whole body upstream after reading it for the balancer', async () => {
    const seen: TestUpstream = await startUpstream(undefined, { recordBodies: true })
    cleanup.push(() => seen.close())
    const g = await gateway({
      upstreams: { llm: { targets: [seen.url], balancer: 'prefix-affinity', retries: 0 } },
      routes: [{ name: 'chat', match: { path: '/v1/*' }, upstream: 'llm' }],
    })
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'z'.repeat(3000) }] })
    expect((await chat(g, body)).status).toBe(200)
    expect(seen.requests[0].body?.toString()).toBe(body)
  })
})

describe('config', () => {
  const base = (extra: Record<string, unknown>, match: Record<string, unknown> = {}) => ({
    upstreams: { llm: { targets: ['http://127.0.0.1:1'] }, vllm: { targets: ['http://127.0.0.1:2'], engineStats: {} } },
    routes: [{ name: 'chat', match: { path: '/v1/chat/completions', ...match }, upstream: 'llm' }],
    ...extra,
  })
  const refusal = (raw: unknown): string => {
    try {
      parseConfig(raw)
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      return (err as Error).message
    }
    throw new Error('config accepted')
  }

  it('parses match.body conditions of every YAML shape', () => {
    const config = parseConfig(base({}, { body: { model: 'llama-*', stream: true, n: 2, user: null, 'metadata.tier': { in: ['gold', 'silver'] }, tools: { exists: false } } }))
    expect(config.routes[0].match.body).toEqual({ model: 'llama-*', stream: true, n: 2, user: null, 'metadata.tier': { in: ['gold', 'silver'] }, tools: { exists: false } })
  })

  it('refuses bad body conditions naming the key path', () => {
    expect(refusal(base({}, { body: { model: [1] } }))).toMatch(/routes\[0\]\.match\.body\.model/)
    expect(refusal(base({}, { body: { model: { exists: 'yes' } } }))).toMatch(/routes\[0\]\.match\.body\.model\.exists/)
    expect(refusal(base({}, { body: { model: { in: [{}] } } }))).toMatch(/routes\[0\]\.match\.body\.model\.in\[0\]/)
    expect(refusal(base({}, { body: { model: { regex: 'x' } } }))).toMatch(/routes\[0\]\.match\.body\.model/)
    expect(refusal(base({}, { body: {} }))).toMatch(/routes\[0\]\.match\.body/)
    expect(refusal(base({}, { body: { model: '*a*b*c*d*e*f*g*h*i' } }))).toMatch(/routes\[0\]\.match\.body\.model.*more than 8/)
    expect(refusal(base({}, { body: { 'a..b': 1 } }))).toMatch(/routes\[0\]\.match\.body\.a\.\.b.*empty segment/)
  })

  it('parses models: with defaults, and refuses bad settings naming the key', () => {
    expect(parseConfig(base({ models: true })).models).toEqual({ path: '/v1/models', upstreams: ['vllm'], timeoutMs: 2000, cacheTtlMs: 2000, maxBodyBytes: 1 << 20 })
    expect(parseConfig(base({ models: { path: '/models', upstreams: ['llm', 'vllm'], timeout: '1s', cacheTtl: 0, maxBodySize: '64kb' } })).models).toEqual({
      path: '/models',
      upstreams: ['llm', 'vllm'],
      timeoutMs: 1000,
      cacheTtlMs: 0,
      maxBodyBytes: 65536,
    })
    expect(parseConfig(base({})).models).toBeUndefined()
    expect(refusal(base({ models: { upstreams: ['nope'] } }))).toMatch(/models\.upstreams\[0\]/)
    expect(refusal(base({ models: { upstreams: [] } }))).toMatch(/models\.upstreams/)
    expect(refusal(base({ models: { upstreams: ['llm', 'llm'] } }))).toMatch(/models\.upstreams/)
    expect(refusal(base({ models: { path: 'v1/models' } }))).toMatch(/models\.path/)
    expect(refusal(base({ models: { path: '/health' } }))).toMatch(/models\.path/)
    expect(refusal(base({ models: { size: 1 } }))).toMatch(/models\.size/)
    expect(refusal({ ...base({ models: {} }), upstreams: { llm: { targets: ['http://127.0.0.1:1'] } } })).toMatch(/models\.upstreams.*engineStats/)
  })
})
