// A fake OpenAI-compatible inference engine on a real 127.0.0.1 socket: `slots` requests generate
// at once (one token per `tokenMs`), the rest wait in a FIFO queue, and `/metrics` reports those
// real counts under vLLM's names (or renamed ones), so scrapers and balancers see true load.
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

export interface FakeEngine {
  readonly url: string
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

  function generate(res: ServerResponse, body: Record<string, unknown>): void {
    const prompt = promptOf(body)
    if (prompt !== undefined) {
      engine.prefixQueries++
      const key = prompt.slice(0, o.prefixChars)
      if (seenPrefixes.has(key)) engine.prefixHits++
      else seenPrefixes.add(key)
    }
    const tokens = typeof body.max_tokens === 'number' ? body.max_tokens : o.tokens
    const stream = body.stream === true
    let gone = false
    // The client going away mid-answer frees the slot (IncomingMessage 'close' fires once the body is read: watch the response).
    res.on('close', () => {
      if (!res.writableFinished) gone = true
    })
    admit(() => {
      if (stream) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      let sent = 0
      const tick = (): void => {
        if (gone) {
          finish()
          return
        }
        if (sent < tokens) {
          sent++
          if (stream) res.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', model: o.model, choices: [{ index: 0, delta: { content: `t${sent} ` } }] })}\n\n`)
          schedule(tick, o.tokenMs)
          return
        }
        finish()
        if (stream) res.end('data: [DONE]\n\n')
        else {
          const text = Array.from({ length: tokens }, (_, i) => `t${i + 1}`).join(' ')
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ object: 'chat.completion', model: o.model, choices: [{ index: 0, message: { role: 'assistant', content: text } }] }))
        }
      }
      schedule(tick, o.tokenMs)
    })
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
    if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/v1/completions')) {
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
        generate(res, body)
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
