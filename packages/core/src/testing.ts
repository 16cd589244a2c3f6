import type { Exchange, ExchangeRequest, ExchangeResponseInfo, MatchedRoute, ResponseTap, UpstreamFetchInit, UpstreamResponse } from './exchange.ts'
import type { HeaderRecord } from './types.ts'
import { PayloadTooLargeError } from './errors.ts'
import { concatBytes } from './bounded.ts'

/**
 * Where a test exchange writes a response: status, the final head (every `onResponseHead` hook and
 * `responseHeaders` applied, `undefined` fields dropped) and the body as it is pulled. A harness in
 * front of a real server writes them to its socket; pulling the next chunk only once the previous
 * one was written keeps backpressure. Rejecting (or stopping early) cuts the response: taps get
 * `onAbort` and the upstream is cancelled.
 */
export type TestResponseSink = (status: number, headers: HeaderRecord, body: AsyncIterable<Uint8Array>) => Promise<void> | void

/** How {@link createTestExchange} builds its request and answers `fetchUpstream()`. */
export interface TestExchangeInit {
  /** @default 'GET' */
  method?: string
  /** Path and query. @default '/' */
  target?: string
  /** Lowercase names. @default {} */
  headers?: HeaderRecord
  /**
   * `request.normalizedPath`. The gateway computes it with `normalizePath()` from
   * `@switchboard/matcher`; core cannot, so a test that cares passes it.
   * @default the path part of `target`, as is
   */
  normalizedPath?: string
  /** @default '127.0.0.1' */
  clientIp?: string
  /** How the client reached the gateway. @default 'http' */
  protocol?: 'http' | 'https'
  /**
   * The request body `readBody()` returns: bytes, text, or a stream (e.g. a server's incoming
   * request) that `readBody(limit)` reads only when asked, failing with 413 past `limit`.
   * @default empty
   */
  body?: string | Uint8Array | AsyncIterable<Uint8Array>
  /** Answers `fetchUpstream()` (revalidation); without it the call rejects. */
  upstream?: (init: UpstreamFetchInit | undefined, ex: TestExchange) => UpstreamResponse | Promise<UpstreamResponse>
  /**
   * Receives every response written by `respond()` or `deliver()`; the promise they return
   * settles when the sink does. The response is still recorded in `sent`.
   * @default none: the body is read into `sent`
   */
  onRespond?: TestResponseSink
}

/** What a test exchange recorded of its response. */
export interface RecordedResponse {
  readonly status: number
  readonly headers: HeaderRecord
  readonly body: Uint8Array
  /** The body as UTF-8 text. */
  readonly text: string
}

/** An upstream response played through a test exchange with {@link TestExchange.deliver}. */
export interface DeliveredResponse {
  readonly status: number
  /** Lowercase header record as the upstream sent it (hop-by-hop fields already removed). */
  readonly headers: HeaderRecord
  /** @default empty */
  readonly body?: string | Uint8Array | AsyncIterable<Uint8Array>
  /** Called when the response is cut short, to release the upstream. @default none */
  cancel?(): void
}

/** An in-memory {@link Exchange} for unit tests of layers; see {@link createTestExchange}. */
export interface TestExchange extends Exchange {
  /** The response written with `respond()` or `deliver()`, once it finished whole. */
  readonly sent: RecordedResponse | undefined
  /** How many times `fetchUpstream()` was called. */
  readonly upstreamCalls: number
  /** The bytes `readBody()` read, to forward upstream instead of the stream; `undefined` before. */
  readonly bufferedBody: Uint8Array | undefined
  /**
   * Plays an upstream response to the client the way the gateway's proxy step does: the
   * `onResponseHead` hooks, then `responseHeaders`, edit the upstream head; each tap's `onHead`
   * sees the edited head (returning false detaches it); the head is written; every chunk goes to
   * the active taps' `onData` just before it is written; `onEnd` follows the last chunk, and a
   * failing upstream body or a sink that stops early gives `onAbort` (and `cancel()`), then rejects.
   */
  deliver(response: DeliveredResponse): Promise<void>
}

/**
 * An in-memory exchange for unit-testing a layer or a whole `compose()` chain, or, with a streamed
 * `body` and an `onRespond` sink, the exchange behind a test server: `respond()` records status,
 * headers (after every `onResponseHead` hook and `responseHeaders`) and body; `deliver()` plays an
 * upstream response through the taps; `fetchUpstream()` asks `init.upstream`.
 * @example
 * const ex = createTestExchange({ target: '/hello' })
 * await compose([requestId()], { terminal: (e) => e.respond(200, {}, 'hi') })(ex)
 * ex.sent?.status // 200
 */
export function createTestExchange(init: TestExchangeInit = {}): TestExchange {
  const target = init.target ?? '/'
  const q = target.indexOf('?')
  const headers: HeaderRecord = { ...init.headers }
  const request: ExchangeRequest = {
    method: (init.method ?? 'GET').toUpperCase(),
    target,
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? '' : target.slice(q),
    normalizedPath: init.normalizedPath ?? (q === -1 ? target : target.slice(0, q)),
    headers,
    clientIp: init.clientIp ?? '127.0.0.1',
    protocol: init.protocol ?? 'http',
    host: typeof headers.host === 'string' ? headers.host : '',
  }
  const source = init.body
  const stream = isStream(source) ? source : undefined
  const fixed = typeof source === 'string' ? encode(source) : source instanceof Uint8Array ? source : new Uint8Array(0)
  let reading: Promise<Uint8Array> | undefined
  let read: Uint8Array | undefined
  const hooks: Array<(status: number, headers: HeaderRecord) => void> = []
  const taps: ResponseTap[] = []
  let sent: RecordedResponse | undefined
  let head: ExchangeResponseInfo | undefined
  let upstreamCalls = 0

  /** Claims the response: one head per exchange, edited as the gateway edits it. */
  const start = (status: number, raw: Record<string, string | string[]> | HeaderRecord): HeaderRecord => {
    if (head) throw new Error('respond() called after the response started')
    const out: HeaderRecord = { ...raw }
    for (const hook of hooks) hook(status, out)
    Object.assign(out, ex.responseHeaders)
    for (const name of Object.keys(out)) if (out[name] === undefined) delete out[name]
    head = { status, headers: out }
    return out
  }

  /** Hands the body to the sink (or drains it), recording it; resolves once the sink is done. */
  const write = async (status: number, out: HeaderRecord, body: AsyncIterable<Uint8Array>): Promise<void> => {
    const parts: Uint8Array[] = []
    let whole = false
    async function* recorded(): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        parts.push(chunk)
        yield chunk
      }
      whole = true
    }
    if (init.onRespond) await init.onRespond(status, out, recorded())
    else for await (const chunk of recorded()) void chunk
    if (!whole) return
    const bytes = concatBytes(parts)
    sent = { status, headers: out, body: bytes, text: new TextDecoder().decode(bytes) }
  }

  const ex: TestExchange = {
    request,
    route: undefined as MatchedRoute | undefined,
    state: new Map(),
    upstreamHeaders: {},
    upstreamTarget: target,
    responseHeaders: {},
    error: undefined,
    get responded() {
      return head !== undefined
    },
    get response() {
      return head
    },
    get sent() {
      return sent
    },
    get upstreamCalls() {
      return upstreamCalls
    },
    get bufferedBody() {
      return read
    },
    async readBody(limit) {
      let bytes = read
      if (bytes === undefined) {
        if (stream) {
          // A declared length past the limit fails before a byte is read, as the gateway does.
          const declared = Number(headers['content-length'] ?? Number.NaN)
          if (declared > limit) throw new PayloadTooLargeError({ details: { limit } })
          reading ??= readAll(stream, limit)
          bytes = await reading
        } else bytes = fixed
      }
      if (bytes.byteLength > limit) throw new PayloadTooLargeError({ details: { limit } })
      read = bytes
      return bytes
    },
    async respond(status, h = {}, payload) {
      const out = start(status, h)
      await write(status, out, toStream(payload))
    },
    async deliver(response) {
      const status = response.status
      const out = start(status, response.headers)
      const active = taps.filter((t) => t.onHead(status, out))
      let state: 'idle' | 'ended' | 'aborted' = 'idle'
      let failure: unknown
      const abort = (error: unknown): void => {
        if (state !== 'idle') return
        state = 'aborted'
        failure = error
        for (const t of active) t.onAbort(error)
        response.cancel?.()
      }
      const upstream = toStream(response.body)
      async function* played(): AsyncGenerator<Uint8Array> {
        try {
          for await (const chunk of upstream) {
            for (const t of active) t.onData(chunk)
            yield chunk
          }
          state = 'ended'
          for (const t of active) t.onEnd()
        } catch (error) {
          abort(error)
          throw error
        }
      }
      // A sink that stops pulling (the client went away) cuts the response: the taps hear why once
      // the sink settles, with its error when it failed.
      try {
        await write(status, out, played())
      } catch (error) {
        abort(error)
        throw error
      }
      abort(new Error('response cut short'))
      if ((state as string) === 'aborted') throw failure
    },
    async fetchUpstream(fetchInit) {
      upstreamCalls++
      if (!init.upstream) throw new Error('createTestExchange: no upstream given')
      return init.upstream(fetchInit, ex)
    },
    tap(t) {
      taps.push(t)
    },
    onResponseHead(hook) {
      hooks.push(hook)
    },
  }
  return ex
}

async function readAll(body: AsyncIterable<Uint8Array>, limit: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > limit) throw new PayloadTooLargeError({ details: { limit } })
    parts.push(chunk)
  }
  return parts.length === 1 ? parts[0] : concatBytes(parts)
}

function isStream(body: TestExchangeInit['body']): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && !(body instanceof Uint8Array)
}

function toStream(body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined): AsyncIterable<Uint8Array> {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    const bytes = typeof body === 'string' ? encode(body) : body
    return (async function* () {
      if (bytes !== undefined && bytes.byteLength > 0) yield bytes
    })()
  }
  return body
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}
