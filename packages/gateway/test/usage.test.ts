// Token accounting on metered routes (routes[].usage), over real sockets against the fake engine,
// whose own count (its prompt rule is words + 1 per message, not the gateway's estimator) is the
// reference: OpenAI and Anthropic, streamed and plain, aborted mid-stream, the client's stream
// byte-identical with and without accounting, metrics, /admin/usage, hostile upstreams.
import { afterEach, describe, expect, it } from 'vitest'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { estimatePromptTokens } from '@switchboard/core'
import { parseConfig } from '../src/index.ts'
import { UsageMeter, withoutMember } from '../src/llm/meter.ts'
import { planUsage } from '../src/pipeline/usage.ts'
import { type FakeEngine, startFakeEngine } from '../../health-checker/test/fake-engine.ts'
import { startGateway, type TestGateway } from './helpers.ts'

const KEYS = { 'team-a': 'key-a-0123456789', 'team-b': 'key-b-0123456789' }
const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  while (open.length) await open.pop()!.close()
})

async function setup(engineOptions: Parameters<typeof startFakeEngine>[0] = {}, server: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ engine: FakeEngine; gw: TestGateway }> {
  const engine = await startFakeEngine({ slots: 64, tokenMs: 1, tokens: 8, ...engineOptions })
  open.push(engine)
  const route = (name: string, prefix: string, usage?: unknown): Record<string, unknown> => ({
    name,
    match: { path: `${prefix}/*` },
    upstream: 'llm',
    rewrite: { stripPrefix: prefix },
    policies: ['keys'],
    ...(usage ? { usage } : {}),
  })
  const gw = await startGateway({
    server: { shutdownTimeout: '1s', ...server },
    admin: true,
    metrics: true,
    policies: { keys: { use: 'api-key', header: 'x-api-key', keys: Object.entries(KEYS).map(([id, key]) => ({ id, key })) } },
    upstreams: { llm: { targets: [engine.url], retries: 0, timeouts: { response: '5s', idle: '5s' } } },
    routes: [
      route('metered', '/m', { format: 'openai' }),
      route('continuous', '/c', { format: 'openai', continuousUsage: true }),
      route('anthropic', '/a', { format: 'anthropic' }),
      route('plain', '/p'),
    ],
    ...extra,
  })
  open.push(gw)
  return { engine, gw }
}

interface Row {
  client: string
  route: string
  model: string
  requests: number
  promptTokens: number
  completionTokens: number
  counted: number
}

async function usage(gw: TestGateway): Promise<Row[]> {
  const res = await fetch(`${gw.url}/admin/usage`)
  expect(res.status).toBe(200)
  return ((await res.json()) as { usage: Row[] }).usage
}

function row(rows: Row[], route: string, client = 'team-a'): Row {
  return rows.find((r) => r.route === route && r.client === client) ?? { client, route, model: '', requests: 0, promptTokens: 0, completionTokens: 0, counted: 0 }
}

async function post(gw: TestGateway, path: string, body: unknown, client: keyof typeof KEYS = 'team-a'): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEYS[client] },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, text: await res.text(), headers: res.headers }
}

/** The observer records a request when its response is done; wait for the row to reach `requests`. */
async function usageWhen(gw: TestGateway, route: string, requests: number, client = 'team-a'): Promise<Row> {
  for (let i = 0; i < 200; i++) {
    const r = row(await usage(gw), route, client)
    if (r.requests >= requests) return r
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`usage of ${route} never reached ${requests} requests`)
}

const chat = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'llama-3-8b',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: `question number ${i} ${'about things '.repeat(i % 7)}` },
  ],
  max_tokens: 1 + (i % 12),
  ...extra,
})

/** Opens a streamed request with node:http, reads until `tokens` token events (or, without `marker`, bytes) arrived, then destroys the connection. */
function abortAfter(gw: TestGateway, path: string, body: unknown, tokens: number, marker?: RegExp): Promise<{ text: string; abortedAt: number }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body)
    const req = httpRequest(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-api-key': KEYS['team-a'] } }, (res) => {
      let text = ''
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.byteLength
        if (marker) text += c.toString('utf8')
        if (marker ? (text.match(marker) ?? []).length >= tokens : bytes >= tokens) {
          const abortedAt = Date.now()
          req.destroy()
          resolve({ text, abortedAt })
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
  for (let i = 0; i < 300; i++) {
    const at = engine.log[index]?.closedAt
    if (at !== undefined) return at
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error('the fake never saw its response close')
}

const OPENAI_TOKEN = /"content":"t\d+ "/g
const ANTHROPIC_TOKEN = /"text":"t\d+ "/g

describe('token accounting', () => {
  it('OpenAI: 200 streamed and 200 plain requests are counted exactly as the fake counted them, per client', async () => {
    const { engine, gw } = await setup()
    const jobs: Array<() => Promise<void>> = []
    for (let i = 0; i < 400; i++) {
      const client = i % 3 === 0 ? 'team-b' : 'team-a'
      jobs.push(async () => {
        const res = await post(gw, '/m/v1/chat/completions', chat(i, { stream: i % 2 === 0 }), client)
        expect(res.status).toBe(200)
        // What the gateway added is not in the client's stream.
        if (i % 2 === 0) expect(res.text).not.toMatch(/"usage"|"choices":\[\]/)
      })
    }
    await runAll(jobs, 16)
    const expected: Record<string, { requests: number; prompt: number; completion: number }> = {}
    for (const entry of engine.log) {
      const client = (entry.body.messages as Array<{ content: string }>)[1].content.match(/question number (\d+)/)![1]
      const who = Number(client) % 3 === 0 ? 'team-b' : 'team-a'
      const e = (expected[who] ??= { requests: 0, prompt: 0, completion: 0 })
      e.requests++
      e.prompt += entry.promptTokens
      e.completion += entry.completionTokens
      // Every streamed request went upstream asking for the usage block.
      if (entry.stream) expect(entry.body.stream_options).toEqual({ include_usage: true })
    }
    expect(engine.log.filter((e) => e.stream)).toHaveLength(200)
    for (const who of ['team-a', 'team-b']) {
      const r = await usageWhen(gw, 'metered', expected[who].requests, who)
      expect(r).toMatchObject({ model: 'llama-3-8b', requests: expected[who].requests, promptTokens: expected[who].prompt, completionTokens: expected[who].completion, counted: 0 })
    }
  }, 60_000)

  it('the client stream is byte-identical with and without accounting (chat, completions, continuous usage, plain JSON)', async () => {
    const { engine, gw } = await setup()
    const cases: Array<[string, Record<string, unknown>]> = [
      ['/v1/chat/completions', chat(3, { stream: true })],
      ['/v1/chat/completions', chat(4, { stream: true, stream_options: {} })],
      ['/v1/completions', { model: 'llama-3-8b', prompt: 'Once upon a time', max_tokens: 5, stream: true }],
      ['/v1/chat/completions', chat(5)],
    ]
    for (const [path, body] of cases) {
      const plain = await post(gw, `/p${path}`, body)
      for (const prefix of ['/m', '/c']) {
        const before = row(await usage(gw), prefix === '/m' ? 'metered' : 'continuous').requests
        const metered = await post(gw, `${prefix}${path}`, body)
        expect(metered.status).toBe(200)
        expect(metered.text).toBe(plain.text)
        const fake = engine.log.at(-1)!
        if (body.stream) expect(fake.body.stream_options).toEqual(prefix === '/c' ? { include_usage: true, continuous_usage_stats: true } : { include_usage: true })
        const r = await usageWhen(gw, prefix === '/m' ? 'metered' : 'continuous', before + 1)
        expect(r.counted).toBe(0)
      }
    }
    // Without accounting the fake was asked for no usage and sent none.
    expect(engine.log.filter((e) => e.body.stream_options !== undefined && JSON.stringify(e.body.stream_options) !== '{}').length).toBe(6)
  })

  it('a client that asks for include_usage itself gets the usage chunks untouched, and is still counted', async () => {
    const { engine, gw } = await setup()
    const res = await post(gw, '/m/v1/chat/completions', chat(7, { stream: true, stream_options: { include_usage: true } }))
    const fake = engine.log.at(-1)!
    expect(res.text).toContain('"choices":[],"usage":{')
    expect(res.text).toContain('"usage":null')
    const r = await usageWhen(gw, 'metered', 1)
    expect(r).toMatchObject({ promptTokens: fake.promptTokens, completionTokens: fake.completionTokens, counted: 0 })
  })

  it('Anthropic: streamed and plain messages are counted exactly as the fake counted them', async () => {
    const { engine, gw } = await setup()
    for (let i = 0; i < 20; i++) {
      const res = await post(gw, '/a/v1/messages', { model: 'claude-x', system: 'Be brief.', messages: [{ role: 'user', content: `tell me ${i} things` }], max_tokens: 2 + i, stream: i % 2 === 0 })
      expect(res.status).toBe(200)
      if (i % 2 === 0) expect(res.text).toContain('event: message_delta')
    }
    const prompt = engine.log.reduce((n, e) => n + e.promptTokens, 0)
    const completion = engine.log.reduce((n, e) => n + e.completionTokens, 0)
    expect(await usageWhen(gw, 'anthropic', 20)).toMatchObject({ requests: 20, promptTokens: prompt, completionTokens: completion, counted: 0 })
  })

  it('streams aborted mid-way: completion tokens exact; prompt exact with continuousUsage and Anthropic, the estimate otherwise', async () => {
    const { engine, gw } = await setup({ tokens: 50 })
    const cases = [
      { route: 'metered', path: '/m/v1/chat/completions', marker: OPENAI_TOKEN, k: 3 },
      { route: 'continuous', path: '/c/v1/chat/completions', marker: OPENAI_TOKEN, k: 5 },
      { route: 'anthropic', path: '/a/v1/messages', marker: ANTHROPIC_TOKEN, k: 4 },
    ]
    for (const c of cases) {
      const body = { ...chat(11, { stream: true }), fake_stall_after: c.k }
      const index = engine.log.length
      await abortAfter(gw, c.path, body, c.k, c.marker)
      await closedAt(engine, index)
      const fake = engine.log[index]
      expect(fake.clientGone).toBe(true)
      expect(fake.completionTokens).toBe(c.k)
      const r = await usageWhen(gw, c.route, 1)
      // Without continuous usage an OpenAI stream states no prompt figure before its end: the estimate stands in.
      const prompt = c.route === 'metered' ? estimatePromptTokens(body) : fake.promptTokens
      expect(r).toMatchObject({ requests: 1, completionTokens: c.k, promptTokens: prompt, counted: 1 })
    }
  })

  it('the metric has the right labels, and /admin/usage the rows', async () => {
    const { engine, gw } = await setup()
    await post(gw, '/m/v1/chat/completions', chat(1, { stream: true }), 'team-b')
    const fake = engine.log[0]
    await usageWhen(gw, 'metered', 1, 'team-b')
    const text = await (await fetch(`${gw.url}/metrics`)).text()
    expect(text).toContain(`switchboard_tokens_total{route="metered",model="llama-3-8b",client="team-b",kind="prompt"} ${fake.promptTokens}`)
    expect(text).toContain(`switchboard_tokens_total{route="metered",model="llama-3-8b",client="team-b",kind="completion"} ${fake.completionTokens}`)
    expect(await usage(gw)).toEqual([{ client: 'team-b', route: 'metered', model: 'llama-3-8b', requests: 1, promptTokens: fake.promptTokens, completionTokens: fake.completionTokens, counted: 0 }])
  })

  it('the access log line of a metered request carries its tokens', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sb-usage-')), 'access.log')
    const { engine, gw } = await setup({}, {}, { logs: { access: { path: file } } })
    await post(gw, '/m/v1/chat/completions', chat(2, { stream: true }))
    await usageWhen(gw, 'metered', 1)
    await gw.close()
    const fake = engine.log[0]
    const line = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.route === 'metered')
    expect(line.tokens).toEqual({ model: 'llama-3-8b', prompt: fake.promptTokens, completion: fake.completionTokens, source: 'reported' })
  })

  it('hostile upstreams stay bounded: an SSE event without end passes through unread, a 12 MiB answer is not buffered past 8 MiB', async () => {
    const { gw } = await setup()
    // 4 MiB of one event that never ends (the fake would send 64 MiB): relayed, then the client leaves.
    const body = { ...chat(2, { stream: true }), fake_hostile: 'endless-event' }
    const endless = await abortAfter(gw, '/m/v1/chat/completions', body, 4 * 1024 * 1024).catch(() => undefined)
    expect(endless).toBeDefined()
    expect(await usageWhen(gw, 'metered', 1)).toMatchObject({ completionTokens: 0, promptTokens: estimatePromptTokens(body), counted: 1 })
    // The answer's usage block is past 8 MiB: the meter let it through unread and counts.
    const huge = await post(gw, '/m/v1/chat/completions', { ...chat(3), fake_hostile: 'huge-json' })
    expect(huge.status).toBe(200)
    expect(huge.text.length).toBeGreaterThan(12 * 1024 * 1024)
    expect(huge.text.endsWith('"total_tokens":12}}')).toBe(true)
    expect(await usageWhen(gw, 'metered', 2)).toMatchObject({ counted: 2 })
    // The gateway still serves.
    expect((await post(gw, '/m/v1/chat/completions', chat(4))).status).toBe(200)
  }, 30_000)

  it('a client that stops reading is cut after server.limits.sendTimeout, and the upstream request with it', async () => {
    const { engine, gw } = await setup({}, { limits: { sendTimeout: '300ms' } })
    const payload = JSON.stringify({ ...chat(1, { stream: true }), fake_hostile: 'endless-event' })
    const socket = connect(gw.port, '127.0.0.1')
    socket.on('error', () => {})
    socket.on('connect', () => socket.pause()) // never reads: the gateway's writes back up
    socket.write(`POST /m/v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-api-key: ${KEYS['team-a']}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`)
    open.push({ close: async () => void socket.destroy() })
    // Bounded by the 3 s of closedAt(); the cut itself comes 300 ms after the writes stall.
    await closedAt(engine, 0)
    expect(engine.log[0].clientGone).toBe(true)
    expect(await usageWhen(gw, 'metered', 1)).toMatchObject({ counted: 1 })
  })

  it('a request body that is not a JSON object passes through unmetered', async () => {
    const { engine, gw } = await setup()
    const res = await post(gw, '/m/v1/chat/completions', 'not json at all')
    expect(res.status).toBe(400) // the engine's answer, relayed
    const models = await fetch(`${gw.url}/m/v1/models`, { headers: { 'x-api-key': KEYS['team-a'] } })
    expect(models.status).toBe(200)
    expect(engine.log).toHaveLength(0)
    expect(await usage(gw)).toEqual([])
  })

  it('upstream error answers pass through and count as requests with 0 tokens', async () => {
    const { gw } = await setup()
    const res = await post(gw, '/m/v1/unknown', chat(1))
    expect(res.status).toBe(404)
    expect(await usageWhen(gw, 'metered', 1)).toMatchObject({ promptTokens: 0, completionTokens: 0, counted: 0 })
  })

  it('refuses usage where it cannot work, naming the key', () => {
    const base = (route: Record<string, unknown>): Record<string, unknown> => ({
      upstreams: { llm: { targets: ['http://127.0.0.1:1'] } },
      routes: [{ name: 'r', match: { path: '/*' }, upstream: 'llm', ...route }],
    })
    expect(() => parseConfig(base({ usage: { format: 'gemini' } }))).toThrow(/routes\[0\]\.usage\.format/)
    expect(() => parseConfig(base({ usage: { format: 'openai', continuousUsage: 'yes' } }))).toThrow(/routes\[0\]\.usage\.continuousUsage/)
    expect(() => parseConfig(base({ usage: { format: 'openai' }, cache: true }))).toThrow(/routes\[0\]\.usage.*cached/)
    expect(() => parseConfig(base({ usage: { format: 'openai' }, websocket: {} }))).toThrow(/routes\[0\]\.usage.*websocket/)
    expect(() => parseConfig(base({ usage: { format: 'openai' }, hedge: { after: '50ms' } }))).toThrow(/routes\[0\]\.usage.*hedge/)
  })
})

describe('the meter, byte by byte', () => {
  const enc = (t: string): Uint8Array => new TextEncoder().encode(t)
  const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

  it('removes a top-level member exactly, wherever it stands, and never one nested or inside a string', () => {
    expect(dec(withoutMember(enc('data: {"a":1,"usage":null}\n\n'), 'usage'))).toBe('data: {"a":1}\n\n')
    expect(dec(withoutMember(enc('data: {"usage": null, "a": "x"}\n\n'), 'usage'))).toBe('data: {"a": "x"}\n\n')
    expect(dec(withoutMember(enc('data: {"a":{"usage":1},"usage":{"p":[1,{"q":"}"}]},"b":"\\"usage\\""}\n\n'), 'usage'))).toBe('data: {"a":{"usage":1},"b":"\\"usage\\""}\n\n')
    expect(dec(withoutMember(enc('data: {"usage":null}\n\n'), 'usage'))).toBe('data: {}\n\n')
    expect(withoutMember(enc('data: {"a":"usage"}\n\n'), 'usage')).toBeUndefined()
  })

  it('passes bytes on at once when it removes nothing, and holds back only a partial event when it does', () => {
    const plain = new UsageMeter({ format: 'openai' })
    plain.begin('text/event-stream')
    const half = enc('data: {"choices":[{"delta":{"content":"hi"')
    expect(plain.push(half)).toBe(half)
    const rewriting = new UsageMeter({ format: 'openai', stripFinal: true })
    rewriting.begin('text/event-stream')
    expect(rewriting.push(half).byteLength).toBe(0)
    expect(dec(rewriting.push(enc('}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\ndata: [DONE]\r\n\r\n')))).toBe(
      'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\r\n\r\n',
    )
    expect(rewriting.usage()).toEqual({ model: undefined, promptTokens: 2, completionTokens: 1, source: 'reported' })
  })

  it('adds include_usage without touching the rest of the body', () => {
    const bytes = enc('{ "model": "m",\n "stream": true }')
    const plan = planUsage({ format: 'openai', continuousUsage: false }, { model: 'm', stream: true }, bytes)
    expect(dec(plan.body)).toBe('{"stream_options":{"include_usage":true}, "model": "m",\n "stream": true }')
    expect(planUsage({ format: 'openai', continuousUsage: true }, { stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } }, bytes).body).toBeUndefined()
    expect(planUsage({ format: 'anthropic', continuousUsage: false }, { stream: true }, bytes).body).toBeUndefined()
  })
})

async function runAll(jobs: Array<() => Promise<void>>, concurrency: number): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) await jobs[next++]()
    }),
  )
}
