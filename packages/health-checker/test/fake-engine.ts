// A fake OpenAI-compatible and Anthropic-compatible inference engine on a real 127.0.0.1 socket:
// `slots` requests generate at once (one token per `tokenMs`), the rest wait in a FIFO queue, and
// `/metrics` reports those real counts under vLLM's names (or renamed ones), so scrapers and
// balancers see true load. Answers are shaped like OpenAI's/vLLM's (`usage` in plain answers;
// `stream_options.include_usage` → `"usage":null` on every chunk and a final `choices: []` chunk;
// `continuous_usage_stats` → usage on every chunk) and Anthropic's (`/v1/messages` events), with
// ids and timestamps derived from the request, so equal requests get byte-equal answers. Its
// prompt-token rule is its own (words + 1 per message), so tests compare the gateway's accounting
// against an independent count. Body fields only the fake reads: `fake_stall_after: k` (stop after
// k tokens, keep the connection open), `fake_hostile: 'endless-event' | 'huge-json'`.
// Shared by the health-checker and gateway tests.
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type FakeMetricsMode = 'vllm' | 'vllm-old' | 'sglang' | 'tgi' | 'renamed' | 'hang' | 'huge' | 'error'

export interface FakeEngineOptions {
  /** Requests generated at once; the rest queue. @default 2 */
  slots?: number
  /** Milliseconds per generated token. @default 5 */
  tokenMs?: number
  /** Tokens per answer (a request's `max_tokens` overrides). @default 8 */
  tokens?: number
  /** Model id served. @default 'llama-3-8b' */
  model?: string
  /** How `/metrics` answers. @default 'vllm' */
  metrics?: FakeMetricsMode
  /** Prompt characters that make the fake's "prefix cache" key. @default 64 */
  prefixChars?: number
}

/** What the fake sent for one generation request. */
export interface FakeRequestLog {
  /** Request path (`/v1/chat/completions`, `/v1/completions`, `/v1/messages`). */
  readonly path: string
  readonly stream: boolean
  /** The fake's own prompt-token count (words + 1 per message). */
  readonly promptTokens: number
  /** Tokens written to the socket so far. */
  completionTokens: number
  /** True when the response closed before the fake finished it. */
  clientGone: boolean
  /** `Date.now()` when the response's socket closed (set for every request once it closed). */
  closedAt: number | undefined
  /** The request body as parsed. */
  readonly body: Record<string, unknown>
}

export interface FakeEngine {
  readonly url: string
  /** One entry per generation request, in arrival order. */
  readonly log: FakeRequestLog[]
  readonly options: Required<FakeEngineOptions>
  /** Generating now. */
  running: number
  /** Queued now. */
  waiting: number
  /** Largest queue seen. */
  maxWaiting: number
  /** Completed answers. */
  served: number
  /** Requests whose prompt prefix this engine had seen before (a prefix-cache hit). */
  prefixHits: number
  /** Requests with a prompt. */
  prefixQueries: number
  /** `/metrics` requests received, in flight now, and the most in flight at once. */
  metricsRequests: number
  metricsInFlight: number
  maxMetricsInFlight: number
  /** Switches how `/metrics` answers from now on. */
  setMetrics(mode: FakeMetricsMode): void
  close(): Promise<void>
}

export async function startFakeEngine(options: FakeEngineOptions = {}): Promise<FakeEngine> {
  const o: Required<FakeEngineOptions> = {
    slots: options.slots ?? 2,
    tokenMs: options.tokenMs ?? 5,
    tokens: options.tokens ?? 8,
    model: options.model ?? 'llama-3-8b',
    metrics: options.metrics ?? 'vllm',
    prefixChars: options.prefixChars ?? 64,
  }
  const queue: Array<() => void> = []
  const seenPrefixes = new Set<string>()
  const hanging = new Set<ServerResponse>()
  const sockets = new Set<Socket>()
  const timers = new Set<ReturnType<typeof setTimeout>>()

  const engine: FakeEngine = {
    url: '',
    log: [],
    options: o,
    running: 0,
    waiting: 0,
    maxWaiting: 0,
    served: 0,
    prefixHits: 0,
    prefixQueries: 0,
    metricsRequests: 0,
    metricsInFlight: 0,
    maxMetricsInFlight: 0,
    setMetrics(mode) {
      o.metrics = mode
    },
    close: () => close(),
  }

  function admit(start: () => void): void {
    if (engine.running < o.slots) {
      engine.running++
      start()
      return
    }
    engine.waiting++
    if (engine.waiting > engine.maxWaiting) engine.maxWaiting = engine.waiting
    queue.push(() => {
      engine.waiting--
      engine.running++
      start()
    })
  }

  function finish(): void {
    engine.running--
    engine.served++
    queue.shift()?.()
  }

  function generate(res: ServerResponse, path: string, body: Record<string, unknown>): void {
    const prompt = promptOf(body)
    if (prompt !== undefined) {
      engine.prefixQueries++
      const key = prompt.slice(0, o.prefixChars)
      if (seenPrefixes.has(key)) engine.prefixHits++
      else seenPrefixes.add(key)
    }
    const tokens = typeof body.max_tokens === 'number' ? body.max_tokens : o.tokens
    const stream = body.stream === true
    const stallAfter = typeof body.fake_stall_after === 'number' ? body.fake_stall_after : undefined
    const entry: FakeRequestLog = { path, stream, promptTokens: countPromptTokens(body), completionTokens: 0, clientGone: false, closedAt: undefined, body }
    engine.log.push(entry)
    const answer = answerFormat(path, body, o.model, entry.promptTokens)
    let gone = false
    // The client going away mid-answer frees the slot (IncomingMessage 'close' fires once the body is read: watch the response).
    res.on('close', () => {
      entry.closedAt = Date.now()
      if (!res.writableFinished) {
        gone = true
        entry.clientGone = true
      }
    })
    res.on('error', () => {})
    if (typeof body.fake_hostile === 'string') return hostile(res, body.fake_hostile)
    admit(() => {
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.write(answer.start())
      }
      let sent = 0
      const tick = (): void => {
        if (gone) {
          finish()
          return
        }
        if (stallAfter !== undefined && sent >= stallAfter) return // holds the slot until the client goes away
        if (sent < tokens) {
          sent++
          entry.completionTokens = sent
          if (stream) res.write(answer.token(sent))
          schedule(tick, o.tokenMs)
          return
        }
        finish()
        if (stream) res.end(answer.end(sent))
        else {
          const text = answer.whole(sent)
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
          res.end(text)
        }
      }
      schedule(tick, o.tokenMs)
    })
  }

  /** Answers a test of the gateway's bounds: an SSE event that never ends, or a 12 MiB JSON answer. */
  function hostile(res: ServerResponse, kind: string): void {
    const huge = kind === 'huge-json'
    res.writeHead(200, { 'content-type': huge ? 'application/json' : 'text/event-stream' })
    if (huge) res.write('{"id":"huge","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"')
    else res.write('data: {"id":"endless","choices":[{"index":0,"delta":{"content":"')
    const chunk = 'x'.repeat(65536)
    let written = 0
    const limit = huge ? 12 * 1024 * 1024 : 64 * 1024 * 1024
    const pump = (): void => {
      while (written < limit && !res.destroyed) {
        written += chunk.length
        if (!res.write(chunk)) {
          res.once('drain', pump)
          return
        }
      }
      if (res.destroyed) return
      if (huge) res.end('"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}')
      else res.end()
    }
    pump()
  }

  function schedule(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
  }

  function metrics(res: ServerResponse): void {
    engine.metricsRequests++
    engine.metricsInFlight++
    if (engine.metricsInFlight > engine.maxMetricsInFlight) engine.maxMetricsInFlight = engine.metricsInFlight
    res.on('close', () => engine.metricsInFlight--)
    const mode = o.metrics
    if (mode === 'hang') {
      hanging.add(res)
      return
    }
    if (mode === 'error') {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('engine not ready')
      return
    }
    if (mode === 'huge') {
      // 10 MiB of valid exposition, streamed without a content-length.
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      const line = `vllm:filler_total{model_name="${o.model}",i="x"} 1\n`
      const chunk = line.repeat(Math.ceil(65536 / line.length))
      let written = 0
      const pump = (): void => {
        while (written < 10 * 1024 * 1024) {
          written += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      res.on('error', () => {})
      pump()
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
    res.end(exposition(mode, engine, o))
  }

  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/'
    if (req.method === 'GET' && url === '/metrics') return metrics(res)
    if (req.method === 'GET' && url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'list', data: [{ id: o.model, object: 'model', owned_by: 'fake' }] }))
      return
    }
    if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/v1/completions' || url === '/v1/messages')) {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        let body: Record<string, unknown> = {}
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
        } catch {
          res.writeHead(400).end()
          return
        }
        generate(res, url, body)
      })
      return
    }
    res.writeHead(404).end()
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  ;(engine as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  function close(): Promise<void> {
    for (const t of timers) clearTimeout(t)
    timers.clear()
    for (const res of hanging) res.destroy()
    for (const s of sockets) s.destroy()
    return new Promise((resolve) => server.close(() => resolve()))
  }
  return engine
}

function promptOf(body: Record<string, unknown>): string | undefined {
  if (Array.isArray(body.messages)) return body.messages.map((m: { role?: string; content?: string }) => `${m.role ?? ''}\n${m.content ?? ''}\n`).join('')
  return typeof body.prompt === 'string' ? body.prompt : undefined
}

/** The fake's own prompt-token rule (deliberately not the gateway's estimator): words of every text, plus 1 per message. */
function countPromptTokens(body: Record<string, unknown>): number {
  const words = (v: unknown): number => {
    if (typeof v === 'string') return v.split(/\s+/).filter((w) => w !== '').length
    if (Array.isArray(v)) return v.reduce((n: number, part) => n + words(typeof part === 'object' && part !== null ? (part as { text?: unknown }).text : part), 0)
    return 0
  }
  let n = words(body.prompt) + words(body.system)
  if (Array.isArray(body.messages)) for (const m of body.messages as Array<{ content?: unknown }>) n += 1 + words(m?.content)
  return n
}

/** A small deterministic hash (FNV-1a), so ids follow from the request instead of a random source. */
function fnv(text: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}

interface AnswerFormat {
  /** Bytes of a stream before the first token. */
  start(): string
  /** The stream event of token `n`. */
  token(n: number): string
  /** Bytes after the last of `n` tokens. */
  end(n: number): string
  /** A non-streamed answer of `n` tokens. */
  whole(n: number): string
}

const CREATED = 1_700_000_000

/** How the answer to `body` on `path` looks: OpenAI chat, OpenAI completions or Anthropic messages. */
function answerFormat(path: string, body: Record<string, unknown>, served: string, promptTokens: number): AnswerFormat {
  const model = served
  const seed = fnv(JSON.stringify({ messages: body.messages, prompt: body.prompt, system: body.system, model }))
  const text = (n: number): string => Array.from({ length: n }, (_, i) => `t${i + 1} `).join('')
  if (path === '/v1/messages') {
    const id = `msg_fake${seed}`
    const event = (type: string, data: unknown): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
    return {
      start: () =>
        event('message_start', { type: 'message_start', message: { id, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: promptTokens, output_tokens: 1 } } }) +
        event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
        event('ping', { type: 'ping' }),
      token: (n) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `t${n} ` } }),
      end: (n) =>
        event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
        event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: n } }) +
        event('message_stop', { type: 'message_stop' }),
      whole: (n) => JSON.stringify({ id, type: 'message', role: 'assistant', model, content: [{ type: 'text', text: text(n) }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: promptTokens, output_tokens: n } }),
    }
  }
  const chat = path === '/v1/chat/completions'
  const id = chat ? `chatcmpl-fake${seed}` : `cmpl-fake${seed}`
  const object = chat ? 'chat.completion.chunk' : 'text_completion'
  const options = (typeof body.stream_options === 'object' && body.stream_options !== null ? body.stream_options : {}) as Record<string, unknown>
  const includeUsage = options.include_usage === true
  const continuous = includeUsage && options.continuous_usage_stats === true
  const usage = (n: number): string => JSON.stringify({ prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n })
  // Built by hand like the providers' serialisers: `usage` is the last member of each chunk.
  const chunk = (choice: unknown, n: number): string => {
    const tail = continuous ? `,"usage":${usage(n)}` : includeUsage ? ',"usage":null' : ''
    return `data: {"id":"${id}","object":"${object}","created":${CREATED},"model":${JSON.stringify(model)},"choices":[${JSON.stringify(choice)}]${tail}}\n\n`
  }
  const choice = (content: Record<string, unknown>, finish: string | null): unknown =>
    chat ? { index: 0, delta: content, logprobs: null, finish_reason: finish } : { index: 0, text: content.content ?? '', logprobs: null, finish_reason: finish }
  return {
    start: () => (chat ? chunk(choice({ role: 'assistant', content: '' }, null), 0) : ''),
    token: (n) => chunk(choice({ content: `t${n} ` }, null), n),
    end: (n) =>
      chunk(choice({}, 'stop'), n) +
      (includeUsage ? `data: {"id":"${id}","object":"${object}","created":${CREATED},"model":${JSON.stringify(model)},"choices":[],"usage":${usage(n)}}\n\n` : '') +
      'data: [DONE]\n\n',
    whole: (n) =>
      JSON.stringify({
        id,
        object: chat ? 'chat.completion' : 'text_completion',
        created: CREATED,
        model,
        choices: [chat ? { index: 0, message: { role: 'assistant', content: text(n) }, logprobs: null, finish_reason: 'stop' } : { index: 0, text: text(n), logprobs: null, finish_reason: 'stop' }],
        usage: JSON.parse(usage(n)),
      }),
  }
}

/** What the engine's `/metrics` says about its real state, in the naming `mode` selects. */
function exposition(mode: FakeMetricsMode, e: FakeEngine, o: Required<FakeEngineOptions>): string {
  const m = `model_name="${o.model}"`
  const kv = e.running / o.slots
  if (mode === 'sglang') {
    return [
      '# HELP sglang:num_running_reqs The number of running requests.',
      '# TYPE sglang:num_running_reqs gauge',
      `sglang:num_running_reqs{${m}} ${e.running}`,
      '# HELP sglang:num_queue_reqs The number of requests in the waiting queue.',
      '# TYPE sglang:num_queue_reqs gauge',
      `sglang:num_queue_reqs{${m}} ${e.waiting}`,
      '# HELP sglang:token_usage The token usage',
      '# TYPE sglang:token_usage gauge',
      `sglang:token_usage{${m}} ${kv}`,
      '# HELP sglang:cache_hit_rate The cache hit rate',
      '# TYPE sglang:cache_hit_rate gauge',
      `sglang:cache_hit_rate{${m}} ${e.prefixQueries === 0 ? 0 : e.prefixHits / e.prefixQueries}`,
      '',
    ].join('\n')
  }
  if (mode === 'tgi') {
    return [
      '# TYPE tgi_queue_size gauge',
      `tgi_queue_size ${e.waiting}`,
      '# TYPE tgi_batch_current_size gauge',
      `tgi_batch_current_size ${e.running}`,
      '# TYPE tgi_request_count counter',
      `tgi_request_count ${e.served}`,
      '',
    ].join('\n')
  }
  // 'renamed' is what an upgrade that renames metrics looks like: the old names are gone.
  const p = mode === 'renamed' ? 'vllm:v2_' : 'vllm:'
  const kvName = mode === 'vllm-old' ? 'vllm:gpu_cache_usage_perc' : `${p}kv_cache_usage_perc`
  return [
    '# HELP vllm:iteration_tokens_total Histogram of number of tokens per engine_step.',
    '# TYPE vllm:iteration_tokens_total histogram',
    `vllm:iteration_tokens_total_bucket{le="1.0",${m}} 3.0`,
    `vllm:iteration_tokens_total_bucket{le="+Inf",${m}} 7.0`,
    `vllm:iteration_tokens_total_sum{${m}} 21.0`,
    `vllm:iteration_tokens_total_count{${m}} 7.0`,
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    `${p}num_requests_running{${m}} ${e.running}.0`,
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `${p}num_requests_waiting{${m}} ${e.waiting}.0`,
    '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
    `${kvName}{${m}} ${kv}`,
    '# TYPE vllm:prefix_cache_queries_total counter',
    `${p}prefix_cache_queries_total{${m}} ${e.prefixQueries}.0`,
    '# TYPE vllm:prefix_cache_hits_total counter',
    `${p}prefix_cache_hits_total{${m}} ${e.prefixHits}.0`,
    '',
  ].join('\n')
}
