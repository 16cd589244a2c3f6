import {
  BadGatewayError,
  concatBytes,
  type Exchange,
  type ExchangeRequest,
  type ExchangeResponseInfo,
  GatewayError,
  type HeaderRecord,
  type MatchedRoute,
  NoRouteError,
  PayloadTooLargeError,
  type RequestInfo,
  RequestTimeoutError,
  type ResponseTap,
  type UpstreamFetchInit,
  type UpstreamResponse,
  UpstreamTimeoutError,
} from '@switchboard/core'
import {
  DEFAULT_CONNECTIONS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_QUEUE_TIMEOUT_MS,
  DEFAULT_RESPONSE_TIMEOUT_MS,
  DEFAULT_SEND_TIMEOUT_MS,
  DEFAULT_VIA,
  type ForwardAbortReason,
  type ForwardResult,
  PoolSaturatedError,
  RETRYABLE_STATUS_CODE,
  SMALL_BODY_BYTES,
  type UpstreamPool,
  // The pure header rules (hop-by-hop, forwarding, Via): one implementation for both transports.
  cleanResponseHeaders,
  isTrusted,
  lowerOverrides,
  upstreamHeaders,
} from '@switchboard/proxy-pass'
import type { TunnelResult } from '@switchboard/websocket-tunnel'
import { LayerEdits, type ExchangeForwardOptions, type ExchangeRequestOptions, type GatewayExchange, type UpstreamFetcher } from './exchange.ts'

const IS_BUN = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'
const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])
const EMPTY = new Uint8Array(0)

/** What the native transport knows about one request besides the Web `Request`. */
export interface NativeRequestInit {
  readonly request: Request
  /** Origin-form target (what the client sent, as far as the runtime keeps it). */
  readonly target: string
  readonly path: string
  readonly query: string
  readonly normalizedPath: string
  /** The socket peer. */
  readonly peerIp: string
  /** The client address (trusted-proxy rule applied). */
  readonly clientIp: string
  /** The listener's port (`X-Forwarded-Port`). */
  readonly localPort: number | undefined
  /** Lowercase header record of the request. */
  readonly headers: HeaderRecord
  /** Flat `[name, value, …]` list of the request's fields. */
  readonly rawHeaders: string[]
  /** Longest silence while the request body arrives (408). */
  readonly bodyIdleTimeoutMs: number
  /** Longest time the client may leave a response chunk unread. */
  readonly sendTimeoutMs: number
  /** The connection closes after this response (draining, or a refused request). */
  readonly closeAfter: boolean
  /**
   * Set when large bodies may be piped by the runtime (`server.pipeBodies`, Bun): sets the
   * runtime's own deadline for this request, in whole seconds from now (bytes going out do not
   * reset it).
   */
  readonly pipe?: (timeoutSeconds: number) => void
}

/**
 * The native transport's exchange: the same {@link GatewayExchange} as `NodeExchange`, on a Web
 * `Request` and a `Response` handed to `Bun.serve` / `Deno.serve` once the head is known. Every
 * guarantee the runtime's server does not give (body idle timeout, send timeout, bounded upstream
 * concurrency, body limits, client-abort propagation) is enforced here.
 * @example
 * const pipeline = async (ex: GatewayExchange): Promise<void> => ex.respond(200, {}, 'ok')
 * const ex = new NativeExchange(init)
 * void pipeline(ex)
 * return ex.answer // the Response for Bun.serve / Deno.serve
 */
export class NativeExchange extends LayerEdits implements GatewayExchange, Exchange, RequestInfo {
  readonly transport = 'native'
  readonly request: ExchangeRequest
  readonly method: string
  readonly target: string
  readonly headers: HeaderRecord
  readonly clientIp: string
  readonly peerIp: string
  readonly normalizedPath: string
  route: MatchedRoute | undefined = undefined
  upstreamTarget: string
  upstreamMethod: string | undefined = undefined
  upstreamName: string | undefined = undefined
  endpointUrl: string | undefined = undefined
  upstreamTries = 0
  upstreamMs: number | undefined = undefined
  traceId: string | undefined = undefined
  upstreamTimeouts: { readonly responseMs: number; readonly idleMs: number } | undefined = undefined
  body: unknown = undefined
  error: unknown = undefined
  /** Native exchanges never carry an upgrade (WebSocket configs run on the node transport). */
  readonly upgrade: undefined = undefined
  trustForwarded: ((ip: string) => boolean) | undefined = undefined
  fetcher: UpstreamFetcher | undefined = undefined
  /** The Response for the runtime's server; settles once the head is known. */
  readonly answer: Promise<Response>
  readonly #raw: Request
  readonly #init: NativeRequestInit
  #deliver!: (response: Response) => void
  #delivered = false
  #status = 0
  #sentHeaders: HeaderRecord | undefined
  #closeAfter: boolean
  #gone = false
  #finished = false
  #done: Array<() => void> | undefined
  #buffered: Uint8Array | undefined
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  #bodyDone: boolean
  #bytesIn = 0
  #bytesOut = 0
  /** Errors the client stream of a response in progress (cuts the connection). */
  #cut: ((error: unknown) => void) | undefined
  /** Called when the client goes away (abort the upstream request of the running forward). */
  #onGone: (() => void) | undefined
  #responded = false

  constructor(init: NativeRequestInit) {
    super()
    const req = init.request
    this.#raw = req
    this.#init = init
    this.method = req.method
    this.target = init.target
    this.headers = init.headers
    this.clientIp = init.clientIp
    this.peerIp = init.peerIp
    this.normalizedPath = init.normalizedPath
    this.upstreamTarget = init.target
    this.#closeAfter = init.closeAfter
    this.#bodyDone = !this.hasBody || req.body === null
    this.request = {
      method: this.method,
      target: init.target,
      path: init.path,
      query: init.query,
      normalizedPath: init.normalizedPath,
      headers: init.headers,
      clientIp: init.clientIp,
      protocol: 'http',
      host: (init.headers.host as string | undefined) ?? '',
    }
    this.answer = new Promise<Response>((resolve) => (this.#deliver = resolve))
    // Deno 2.9 also aborts `request.signal` after a successful response (legacy behaviour): only a
    // signal before the response was handed over means the client left; afterwards the response
    // stream's cancel() says so.
    req.signal.addEventListener('abort', () => {
      if (IS_DENO && this.#delivered) return
      this.#clientGone()
    }, { once: true })
  }

  get response(): ExchangeResponseInfo | undefined {
    return this.#sentHeaders ? { status: this.#status, headers: this.#sentHeaders } : undefined
  }

  get responded(): boolean {
    return this.#responded || this.#delivered
  }

  get bufferedBody(): Uint8Array | undefined {
    return this.#buffered
  }

  replaceBody(bytes: Uint8Array | undefined): void {
    this.#buffered = bytes ?? EMPTY
  }

  /** Bun and Deno answer `Expect: 100-continue` themselves (as soon as the head is parsed). */
  sendContinue(): void {}

  async readBody(limit: number): Promise<Uint8Array> {
    if (this.#buffered) {
      if (this.#buffered.byteLength > limit) throw new PayloadTooLargeError({ details: { limit } })
      return this.#buffered
    }
    const declared = Number(this.headers['content-length'] ?? Number.NaN)
    if (declared > limit) throw new PayloadTooLargeError({ details: { limit } })
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const chunk = await this.#readChunk()
      if (chunk === undefined) break
      total += chunk.byteLength
      if (total > limit) {
        this.#closeAfter = true
        throw new PayloadTooLargeError({ details: { limit } })
      }
      chunks.push(chunk)
    }
    this.#buffered = concatBytes(chunks, total)
    return this.#buffered
  }

  async respond(
    status: number,
    headers: Record<string, string | string[]> = {},
    body?: string | Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.responded) throw new Error('respond() called after the response started')
    this.#responded = true
    const out: HeaderRecord = { ...headers }
    this.applyResponseHead(status, out)
    if (body === undefined || typeof body === 'string' || body instanceof Uint8Array || NULL_BODY_STATUS.has(status) || this.method === 'HEAD') {
      const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body instanceof Uint8Array ? body : undefined
      if (bytes && out['content-length'] === undefined && !('transfer-encoding' in out)) out['content-length'] = String(bytes.byteLength)
      if (body === undefined && out['content-length'] === undefined && status !== 204 && status !== 304) out['content-length'] = '0'
      const sendBody = bytes && !NULL_BODY_STATUS.has(status) && this.method !== 'HEAD' ? bytes : null
      if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) void drain(body)
      this.#bytesOut += sendBody?.byteLength ?? 0
      this.#hand(status, out, sendBody as BodyInit | null)
      this.#finish()
      return
    }
    let resolveDone!: () => void
    const finished = new Promise<void>((r) => (resolveDone = r))
    const iterator = body[Symbol.asyncIterator]()
    const end = (): void => {
      this.#finish()
      resolveDone()
    }
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#cut = () => {
          cutStream(controller)
          void iterator.return?.()
          end()
        }
      },
      pull: async (controller) => {
        try {
          const next = await iterator.next()
          if (next.done) {
            controller.close()
            end()
            return
          }
          this.#bytesOut += next.value.byteLength
          controller.enqueue(next.value)
        } catch (err) {
          // A body that fails mid-way must show as truncated, never as a clean end.
          cutStream(controller)
          end()
        }
      },
      cancel: () => {
        this.#gone = true
        void iterator.return?.()
        end()
      },
    })
    this.#hand(status, out, stream)
    await finished
  }

  fetchUpstream(init?: UpstreamFetchInit): Promise<UpstreamResponse> {
    return this.fetcher ? this.fetcher(this, init) : Promise.reject(new NoRouteError())
  }

  // --- transport operations -------------------------------------------------------------------

  /**
   * Proxies the request with the runtime's `fetch` and streams the answer back: proxy-pass
   * `forward()` semantics (rejects before the head, resolves `aborted` after it).
   */
  async forward(options: ExchangeForwardOptions): Promise<ForwardResult> {
    const max = options.maxBodyBytes
    if (max !== undefined && options.body === undefined && Number(this.headers['content-length']) > max) {
      throw new PayloadTooLargeError({ details: { limit: max } })
    }
    const release = await this.#admit(options.pool, options.poolLimits)
    if (release === undefined) return { status: 0, bytesSent: 0, aborted: true, reason: 'client-gone' }
    const abort = new AbortController()
    let reason: ForwardAbortReason | undefined
    let settled = false
    let uploadError: unknown
    let headTimer: ReturnType<typeof setTimeout> | undefined
    const signal = options.signal
    const onSignal = (): void => {
      reason ??= 'signal'
      this.#clientGone()
    }
    signal?.addEventListener('abort', onSignal, { once: true })
    const cleanup = (): void => {
      settled = true
      if (headTimer !== undefined) clearTimeout(headTimer)
      signal?.removeEventListener('abort', onSignal)
      this.#onGone = undefined
      release()
    }
    this.#onGone = () => {
      reason ??= 'client-gone'
      abort.abort(new Error('client closed the connection'))
    }
    if (this.#gone || signal?.aborted) {
      cleanup()
      return { status: 0, bytesSent: 0, aborted: true, reason: signal?.aborted ? 'signal' : 'client-gone' }
    }
    let upstream: Response
    try {
      let body: BodyInit | null = null
      let bodyLength: number | undefined
      if (options.body !== undefined) {
        body = options.body as BodyInit
        bodyLength = options.body.byteLength
      } else if (!this.#bodyDone || this.#buffered) {
        const declared = Number(this.headers['content-length'])
        if (this.#buffered) {
          body = this.#buffered as BodyInit
          bodyLength = this.#buffered.byteLength
        } else if (this.headers['transfer-encoding'] === undefined && declared > 0 && declared <= SMALL_BODY_BYTES) {
          // Like node's path: a small declared body is read whole and sent as one buffer.
          const bytes = await this.#readAll(max)
          body = bytes as BodyInit
          bodyLength = bytes.byteLength
        } else {
          body = this.#upload(max, (err) => (uploadError = err))
        }
      } else if (this.hasBody) {
        body = EMPTY as BodyInit
        bodyLength = 0
      }
      if (this.#gone) {
        cleanup()
        return { status: 0, bytesSent: 0, aborted: true, reason: reason ?? 'client-gone' }
      }
      const timeoutMs = options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
      headTimer = setTimeout(() => abort.abort(new UpstreamTimeoutError({ phase: 'response' })), timeoutMs)
      upstream = await fetch(this.#url(options.pool, options.target), this.#fetchInit(options, body, bodyLength, abort.signal))
      clearTimeout(headTimer)
      headTimer = undefined
    } catch (err) {
      const gone = this.#gone
      cleanup()
      if (gone) return { status: 0, bytesSent: 0, aborted: true, reason: reason ?? 'client-gone' }
      throw toUpstreamError(uploadError ?? abort.signal.reason ?? err, abort.signal.aborted ? abort.signal.reason : undefined)
    }
    const status = upstream.status
    // Bun's fetch relays any three digits; a Response cannot carry them (RangeError): the node rule, 502.
    if (!relayable(status)) {
      abort.abort(new Error('unusable upstream status'))
      cleanup()
      throw new BadGatewayError({ message: `Upstream sent status ${status}` })
    }
    const headers = cleanResponseHeaders(headerRecord(upstream.headers), options.via ?? DEFAULT_VIA, options.responseHeaders)
    if (options.shouldRetry && !this.#gone) {
      let retry = false
      try {
        retry = options.shouldRetry(status, headers)
      } catch (error) {
        abort.abort(error)
        cleanup()
        throw error
      }
      if (retry) {
        abort.abort(new Error('response discarded for a retry'))
        cleanup()
        throw Object.assign(
          new GatewayError(status, RETRYABLE_STATUS_CODE, `Upstream answered ${status}; response discarded for a retry`, { details: { upstreamStatus: status } }),
          { headers },
        )
      }
    }
    let tap = options.tap
    try {
      if (options.onResponseHead) {
        options.onResponseHead(status, headers)
        for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name]
      }
      if (tap && !tap.onHead(status, headers)) tap = undefined
    } catch (error) {
      abort.abort(error)
      cleanup()
      throw error
    }
    // An upstream that answered before the upload finished: the rest of the upload is discarded,
    // so this connection cannot carry another request.
    if (!this.#bodyDone) this.#closeAfter = true
    const source = upstream.body
    if (source === null || NULL_BODY_STATUS.has(status) || this.method === 'HEAD') {
      if (source !== null) void source.cancel().catch(noop)
      this.#hand(status, headers, null)
      tap?.onEnd()
      cleanup()
      this.#finish()
      return { status, bytesSent: 0, aborted: false }
    }
    const declared = headers['transfer-encoding'] === undefined ? Number(headers['content-length']) : Number.NaN
    if (declared >= 0 && declared <= SMALL_BODY_BYTES) return this.#forwardSmall(upstream, status, headers, tap, options, cleanup, abort)
    const pipe = this.#init.pipe
    const pipeSeconds = pipe !== undefined && tap === undefined && declared > SMALL_BODY_BYTES ? pipeDeadlineSeconds(declared, options) : undefined
    if (pipe !== undefined && pipeSeconds !== undefined) {
      // `server.pipeBodies`: the runtime moves the bytes itself (JavaScript never sees them). Its
      // per-request timer is a deadline (bytes going out do not reset it), so the body gets the
      // longer of the two waits plus its length at PIPE_MIN_RATE; when it is cut, the upstream
      // body is cancelled. There is no end-of-body event, so the exchange (pool slot, stats, log)
      // ends here, with the declared length counted as sent.
      pipe(pipeSeconds)
      this.#bytesOut += declared
      this.#hand(status, headers, source, upstream.statusText)
      cleanup()
      this.#finish()
      return { status, bytesSent: declared, aborted: false }
    }
    return new Promise<ForwardResult>((resolve) => {
      const reader = source.getReader()
      const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
      const sendMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS
      const tick = Math.min(idleMs, sendMs)
      let bytesSent = 0
      // One timer for the whole body, on timestamps: while a read is out the upstream has idleMs
      // to answer it, while a chunk waits for the client the client has sendMs to take it. A
      // timer made and cleared per chunk (and a promise around every read) cost more than the
      // copy on Bun. Each wait is at most `tick`, so a change of phase is never seen late.
      let reading = false
      let since = Date.now()
      let timer: ReturnType<typeof setTimeout> | undefined
      let client!: ReadableStreamDefaultController<Uint8Array>
      const finish = (aborted: boolean, why?: ForwardAbortReason, error?: unknown): void => {
        if (settled) return
        if (timer !== undefined) clearTimeout(timer)
        cleanup()
        if (aborted) {
          reason ??= why ?? 'client-gone'
          abort.abort(new Error(reason))
          void reader.cancel(error).catch(noop)
          tap?.onAbort(error ?? new Error(reason))
          // With the head out, only a cut connection tells the client the body is incomplete.
          cutStream(client)
        } else tap?.onEnd()
        this.#finish()
        const result: ForwardResult = { status, bytesSent, aborted }
        if (aborted) result.reason = reason
        resolve(result)
      }
      const check = (): void => {
        timer = undefined
        if (settled) return
        const left = since + (reading ? idleMs : sendMs) - Date.now()
        if (left > 0) timer = setTimeout(check, Math.min(left, tick))
        else if (reading) finish(true, 'upstream-error', new UpstreamTimeoutError({ phase: 'idle' }))
        else finish(true, 'send-timeout')
      }
      timer = setTimeout(check, tick)
      this.#onGone = () => finish(true, 'client-gone')
      const onChunk = (chunk: ReadableStreamReadResult<Uint8Array>): void => {
        reading = false
        since = Date.now()
        if (settled) return
        if (chunk.done) {
          // pull() runs only with the queue empty, so the client has taken every chunk.
          client.close()
          return finish(false)
        }
        bytesSent += chunk.value.byteLength
        this.#bytesOut += chunk.value.byteLength
        tap?.onData(chunk.value)
        client.enqueue(chunk.value)
      }
      const onReadError = (err: unknown): void => finish(true, 'upstream-error', err)
      const stream = new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            client = controller
          },
          pull: () => {
            reading = true
            since = Date.now()
            return reader.read().then(onChunk, onReadError)
          },
          cancel: () => {
            this.#gone = true
            finish(true, 'client-gone')
          },
        },
        // One chunk ahead: the upstream read overlaps the runtime's write of the previous chunk
        // (a strict hand-to-hand, highWaterMark 0, halved Bun's 1 MiB throughput). A client that
        // does not read holds one chunk here and one in the runtime, for at most sendMs.
        { highWaterMark: 1 },
      )
      this.#hand(status, headers, stream, upstream.statusText)
    })
  }

  /**
   * The rest of {@link forward} for a response whose declared length is at most SMALL_BODY_BYTES:
   * read whole by the runtime (`arrayBuffer()`, within `idleTimeoutMs` for the whole of it), then
   * handed over as one buffer, which the runtime writes on its own fast path. A reader, a promise
   * and a timer per chunk cost more than the body here. Nothing reached the client before the body
   * is complete, so an upstream that stalls or cuts it gets a clean 504/502 (and a retry where the
   * rule allows) instead of a truncated answer.
   */
  async #forwardSmall(
    upstream: Response,
    status: number,
    headers: HeaderRecord,
    tap: ResponseTap | undefined,
    options: ExchangeForwardOptions,
    cleanup: () => void,
    abort: AbortController,
  ): Promise<ForwardResult> {
    const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    const timer = setTimeout(() => abort.abort(new UpstreamTimeoutError({ phase: 'idle' })), idleMs)
    let body: Uint8Array
    try {
      body = new Uint8Array(await upstream.arrayBuffer())
      if (body.byteLength > SMALL_BODY_BYTES) throw new BadGatewayError({ message: 'Upstream sent more than its Content-Length' })
    } catch (err) {
      const gone = this.#gone
      const reason: unknown = abort.signal.aborted ? abort.signal.reason : undefined
      abort.abort(err)
      cleanup()
      tap?.onAbort(err)
      if (!gone) throw toUpstreamError(err, reason)
      this.#finish()
      return { status: 0, bytesSent: 0, aborted: true, reason: 'client-gone' }
    } finally {
      clearTimeout(timer)
    }
    const total = body.byteLength
    this.#bytesOut += total
    if (tap && total > 0) tap.onData(body)
    this.#hand(status, headers, body as BodyInit, upstream.statusText)
    tap?.onEnd()
    cleanup()
    this.#finish()
    return { status, bytesSent: total, aborted: false }
  }

  /** Sends a copy of the request upstream and returns the response (proxy-pass `requestUpstream()` semantics). */
  async requestUpstream(options: ExchangeRequestOptions): Promise<UpstreamResponse> {
    const release = await this.#admit(options.pool, options.poolLimits)
    if (release === undefined) throw new BadGatewayError({ message: 'client went away' })
    const method = options.method ?? this.method
    const body = options.body !== undefined && method !== 'GET' && method !== 'HEAD' ? options.body : undefined
    const bodyLength = body?.byteLength ?? (this.headers['content-length'] !== undefined ? 0 : undefined)
    const abort = new AbortController()
    const onSignal = (): void => abort.abort(options.signal?.reason)
    options.signal?.addEventListener('abort', onSignal, { once: true })
    const timer = setTimeout(() => abort.abort(new UpstreamTimeoutError({ phase: 'response' })), options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS)
    let released = false
    const done = (): void => {
      if (released) return
      released = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onSignal)
      release()
    }
    let res: Response
    try {
      res = await fetch(this.#url(options.pool, options.target), this.#fetchInit({ ...options, method }, (body as BodyInit | undefined) ?? null, bodyLength, abort.signal))
      clearTimeout(timer)
    } catch (err) {
      done()
      throw toUpstreamError(err, abort.signal.aborted ? abort.signal.reason : undefined)
    }
    if (!relayable(res.status)) {
      abort.abort(new Error('unusable upstream status'))
      done()
      throw new BadGatewayError({ message: `Upstream sent status ${res.status}` })
    }
    const headers = cleanResponseHeaders(headerRecord(res.headers), options.via ?? DEFAULT_VIA, undefined)
    const source = res.body
    const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    return {
      status: res.status,
      headers,
      body: {
        async *[Symbol.asyncIterator]() {
          if (source === null) return done()
          const reader = source.getReader()
          try {
            for (;;) {
              const chunk = await readWithin(reader, idleMs)
              if (chunk.done) return
              yield chunk.value
            }
          } finally {
            void reader.cancel().catch(noop)
            done()
          }
        },
      },
      cancel() {
        abort.abort(new Error('cancelled'))
        void source?.cancel().catch(noop)
        done()
      },
    }
  }

  tunnel(): Promise<TunnelResult> {
    return Promise.reject(new GatewayError(501, 'ERR_UPGRADE_UNSUPPORTED', 'WebSocket tunnels run on the node transport'))
  }

  get committed(): boolean {
    return this.#delivered || this.#gone
  }

  get clientGone(): boolean {
    return this.#gone
  }

  get bodyComplete(): boolean {
    return this.#bodyDone
  }

  closeAfterResponse(): void {
    this.#closeAfter = true
  }

  abortResponse(): void {
    if (this.#finished && this.#delivered) return
    if (this.#cut) return this.#cut(new Error('response aborted'))
    if (!this.#delivered) {
      // No head yet: a body that fails at once makes the runtime drop the connection.
      this.#hand(502, {}, new ReadableStream({ pull: (c) => cutStream(c) }))
    }
    this.#finish()
  }

  onDone(fn: () => void): void {
    if (this.#finished) return queueMicrotask(fn)
    ;(this.#done ??= []).push(fn)
  }

  get responseStatus(): number {
    return this.#status
  }

  responseHeader(name: string): string | string[] | number | undefined {
    return this.#sentHeaders?.[name] ?? this.responseHeaderEdits?.[name]
  }

  get bytesRead(): number {
    return this.#bytesIn
  }

  get bytesWritten(): number {
    return this.#bytesOut
  }

  /** Settles the answer when the pipeline ended without one (it never should): 500, connection closed. */
  settleUnanswered(): void {
    if (this.#delivered) return
    this.#closeAfter = true
    this.#hand(500, { 'content-type': 'application/json', 'content-length': '0' }, null)
    this.#finish()
  }

  // --- internals ------------------------------------------------------------------------------

  #hand(status: number, headers: HeaderRecord, body: BodyInit | null, statusText?: string): void {
    if (this.#delivered) return
    this.#delivered = true
    this.#responded = true
    this.#status = status
    this.#sentHeaders = headers
    const out = new Headers()
    for (const name in headers) {
      const value = headers[name]
      if (value === undefined) continue
      if (Array.isArray(value)) for (const v of value) out.append(name, v)
      else out.set(name, String(value))
    }
    if (this.#closeAfter) out.set('connection', 'close')
    this.#deliver(new Response(body, statusText ? { status, statusText, headers: out } : { status, headers: out }))
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#cut = undefined
    const fns = this.#done
    this.#done = undefined
    if (fns) queueMicrotask(() => {
      for (const fn of fns) fn()
    })
  }

  #clientGone(): void {
    if (this.#gone) return
    this.#gone = true
    this.#onGone?.()
    if (!this.#delivered) {
      this.#delivered = true
      this.#deliver(new Response(null, { status: 499 }))
      this.#finish()
    }
  }

  #url(pool: UpstreamPool, target: string | undefined): string {
    return pool.origin + (target ?? this.target)
  }

  #fetchInit(
    options: Pick<ExchangeForwardOptions, 'method' | 'headers' | 'clientIp' | 'trustForwarded' | 'proto' | 'via' | 'forwardedHeader'>,
    body: BodyInit | null,
    bodyLength: number | undefined,
    signal: AbortSignal,
  ): RequestInit {
    const clientIp = options.clientIp ?? this.peerIp
    const list = upstreamHeaders(this.#init.rawHeaders, {
      clientIp,
      proto: options.proto ?? 'http',
      host: this.headers.host as string | undefined,
      via: options.via ?? DEFAULT_VIA,
      overrides: lowerOverrides(options.headers),
      bodyLength,
      trusted: isTrusted(options.trustForwarded, clientIp),
      port: this.#init.localPort === undefined ? undefined : String(this.#init.localPort),
      forwardedHeader: options.forwardedHeader === true,
    })
    const pairs: [string, string][] = []
    let encoding = false
    for (let i = 0; i < list.length; i += 2) {
      pairs.push([list[i], list[i + 1]])
      if (!encoding && list[i].length === 15 && list[i].toLowerCase() === 'accept-encoding') encoding = true
    }
    // Deno's fetch adds `Accept-Encoding` and then decompresses behind our back, keeping the
    // upstream's Content-Encoding: ask for what the client asked for, or identity.
    if (IS_DENO && !encoding) pairs.push(['accept-encoding', 'identity'])
    const init: RequestInit & { decompress?: boolean; duplex?: 'half' } = {
      method: options.method ?? this.method,
      headers: pairs,
      body,
      redirect: 'manual',
      signal,
    }
    if (body instanceof ReadableStream) init.duplex = 'half'
    // Bun: never decode the upstream's bytes (the client chose the encoding).
    if (IS_BUN) init.decompress = false
    return init
  }

  /** One chunk of the request body, or undefined at its end; silence past `bodyIdleTimeoutMs` → 408. */
  async #readChunk(): Promise<Uint8Array | undefined> {
    if (this.#bodyDone) return undefined
    this.#reader ??= this.#raw.body!.getReader()
    let chunk: ReadableStreamReadResult<Uint8Array>
    try {
      chunk = await readWithin(this.#reader, this.#init.bodyIdleTimeoutMs, () => new RequestTimeoutError({ message: 'Request body idle timeout' }))
    } catch (err) {
      this.#closeAfter = true
      this.#bodyDone = true
      if (err instanceof GatewayError) throw err
      // A client that went away mid-upload (or sent a broken body).
      this.#clientGone()
      throw err
    }
    if (chunk.done) {
      this.#bodyDone = true
      return undefined
    }
    this.#bytesIn += chunk.value.byteLength
    return chunk.value
  }

  async #readAll(max: number | undefined): Promise<Uint8Array> {
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const chunk = await this.#readChunk()
      if (chunk === undefined) break
      total += chunk.byteLength
      if (max !== undefined && total > max) {
        this.#closeAfter = true
        throw new PayloadTooLargeError({ details: { limit: max } })
      }
      chunks.push(chunk)
    }
    return concatBytes(chunks, total)
  }

  /** The request body as a stream for `fetch`, with the body limit and the idle timeout on the way. */
  #upload(max: number | undefined, failed: (err: unknown) => void): ReadableStream<Uint8Array> {
    let seen = 0
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const chunk = await this.#readChunk()
          if (chunk === undefined) return controller.close()
          seen += chunk.byteLength
          if (max !== undefined && seen > max) {
            this.#closeAfter = true
            throw new PayloadTooLargeError({ details: { limit: max } })
          }
          controller.enqueue(chunk)
        } catch (err) {
          failed(err)
          controller.error(err)
        }
      },
    })
  }

  /** A slot of the endpoint's concurrency bound (`pool.connections`, waiting at most `queueTimeout`); undefined when the client left first. */
  #admit(pool: UpstreamPool, limits: ExchangeForwardOptions['poolLimits']): Promise<(() => void) | undefined> {
    let gate = GATES.get(pool)
    if (!gate) GATES.set(pool, (gate = new Gate(limits?.connections ?? DEFAULT_CONNECTIONS, limits?.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS)))
    return gate.admit(this)
  }

  /** Lets the gate know when this exchange's client leaves while it waits. */
  set whenGone(fn: (() => void) | undefined) {
    this.#onGone = fn
  }
}

/** Per-endpoint concurrency bound of the native transport (undici's pool does it on node). */
class Gate {
  active = 0
  readonly #waiters = new Set<() => void>()
  constructor(
    readonly limit: number,
    readonly queueTimeoutMs: number,
  ) {}

  admit(ex: NativeExchange): Promise<(() => void) | undefined> {
    if (this.active < this.limit && this.#waiters.size === 0) {
      this.active++
      return Promise.resolve(this.#releaser())
    }
    return new Promise((resolve, reject) => {
      const start = (): void => {
        clearTimeout(timer)
        ex.whenGone = undefined
        this.active++
        resolve(this.#releaser())
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(start)
        ex.whenGone = undefined
        reject(new PoolSaturatedError({ details: { queueTimeoutMs: this.queueTimeoutMs } }))
      }, this.queueTimeoutMs)
      ex.whenGone = () => {
        this.#waiters.delete(start)
        clearTimeout(timer)
        resolve(undefined)
      }
      this.#waiters.add(start)
    })
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.active--
      const next = this.#waiters.values().next()
      if (next.done) return
      this.#waiters.delete(next.value)
      next.value()
    }
  }
}

const GATES = new WeakMap<UpstreamPool, Gate>()

/**
 * True while every slot of the native transport's bound for `pool` is taken (the native side of
 * `UpstreamPool.saturated`, which only sees undici's connections).
 * @example nativeSaturated(upstream.pool(endpoint)) // false when nothing ran natively
 */
export function nativeSaturated(pool: UpstreamPool): boolean {
  const gate = GATES.get(pool)
  return gate !== undefined && gate.active >= gate.limit
}

/** The slowest average rate a piped body may move at (bytes/s) before Bun's deadline cuts it. */
const PIPE_MIN_RATE = 64 * 1024
/** Bun's per-request timer takes whole seconds up to this. */
const PIPE_MAX_SECONDS = 255

/**
 * The deadline for piping a body of `declared` bytes, in whole seconds: the longer of the idle and
 * send waits plus the body at {@link PIPE_MIN_RATE}. Undefined when that exceeds what Bun's timer
 * takes: such a body streams through the gateway, under its own timers.
 */
function pipeDeadlineSeconds(declared: number, options: Pick<ExchangeForwardOptions, 'idleTimeoutMs' | 'sendTimeoutMs'>): number | undefined {
  const waitMs = Math.max(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS)
  const seconds = Math.ceil((waitMs + (declared / PIPE_MIN_RATE) * 1000) / 1000)
  return seconds <= PIPE_MAX_SECONDS ? seconds : undefined
}

/**
 * Errors a response body stream handed to the runtime, which cuts the connection (no clean end).
 * Without a reason: Bun prints any reason it is given, with its stack, to stderr, and why the body
 * was cut is the gateway's to log. Once the stream is closed there is nothing left to cut.
 */
function cutStream(controller: ReadableStreamDefaultController<Uint8Array>): void {
  try {
    controller.error()
  } catch {
    // Already closed.
  }
}

/** A final status a `Response` can carry (the runtime's fetch has dealt with 1xx itself). */
function relayable(status: number): boolean {
  return status >= 200 && status <= 599
}

/** Lowercase header record of a Web `Headers` (`set-cookie` kept as a list). */
export function headerRecord(headers: Headers): HeaderRecord {
  const out: HeaderRecord = {}
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') out[name] = value
  })
  const cookies = headers.getSetCookie?.()
  if (cookies && cookies.length > 0) out['set-cookie'] = cookies
  return out
}

/** Reads one chunk, failing with `timeout()` (504 idle by default) after `ms` of silence. */
function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
  timeout: () => Error = () => new UpstreamTimeoutError({ phase: 'idle' }),
): Promise<ReadableStreamReadResult<Uint8Array>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = timeout()
      void reader.cancel(err).catch(noop)
      reject(err)
    }, ms)
    reader.read().then(
      (r) => {
        clearTimeout(timer)
        resolve(r)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

/** Maps a `fetch` failure to what the client sees: our own errors as they are, timeouts 504, the rest 502. */
function toUpstreamError(error: unknown, abortReason: unknown): GatewayError {
  if (abortReason instanceof GatewayError) return abortReason
  if (error instanceof GatewayError) return error
  return new BadGatewayError({ cause: error })
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    const it = body[Symbol.asyncIterator]()
    await it.return?.()
  } catch {
    // Discarded body.
  }
}

function noop(): void {}
