import type { Exchange, ExchangeRequest, ExchangeResponseInfo, MatchedRoute, ResponseTap, UpstreamFetchInit, UpstreamResponse } from './exchange.ts'
import type { HeaderRecord } from './types.ts'
import { PayloadTooLargeError } from './errors.ts'

/** How {@link createTestExchange} builds its request and answers `fetchUpstream()`. */
export interface TestExchangeInit {
  /** @default 'GET' */
  method?: string
  /** Path and query. @default '/' */
  target?: string
  /** Lowercase names. @default {} */
  headers?: HeaderRecord
  /** @default '127.0.0.1' */
  clientIp?: string
  /** The request body `readBody()` returns. @default empty */
  body?: string | Uint8Array
  /** Answers `fetchUpstream()` (revalidation); without it the call rejects. */
  upstream?: (init: UpstreamFetchInit | undefined, ex: TestExchange) => UpstreamResponse | Promise<UpstreamResponse>
}

/** What a test exchange recorded of its response. */
export interface RecordedResponse {
  readonly status: number
  readonly headers: HeaderRecord
  readonly body: Uint8Array
  /** The body as UTF-8 text. */
  readonly text: string
}

/** An in-memory {@link Exchange} for unit tests of layers; see {@link createTestExchange}. */
export interface TestExchange extends Exchange {
  /** The response written with `respond()`, once it finished. */
  readonly sent: RecordedResponse | undefined
  /** How many times `fetchUpstream()` was called. */
  readonly upstreamCalls: number
}

/**
 * An in-memory exchange for unit-testing a layer or a whole `compose()` chain without a server:
 * `respond()` records status, headers (after every `onResponseHead` hook and `responseHeaders`)
 * and body; `fetchUpstream()` asks `init.upstream`. Tests of real proxying still use real sockets.
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
    headers,
    clientIp: init.clientIp ?? '127.0.0.1',
    protocol: 'http',
    host: typeof headers.host === 'string' ? headers.host : '',
  }
  const body = typeof init.body === 'string' ? new TextEncoder().encode(init.body) : (init.body ?? new Uint8Array(0))
  const hooks: Array<(status: number, headers: HeaderRecord) => void> = []
  const taps: ResponseTap[] = []
  let sent: RecordedResponse | undefined
  let head: ExchangeResponseInfo | undefined
  let upstreamCalls = 0
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
    async readBody(limit) {
      if (body.byteLength > limit) throw new PayloadTooLargeError({ details: { limit } })
      return body
    },
    async respond(status, h = {}, payload) {
      if (head) throw new Error('respond() called after the response started')
      const out: HeaderRecord = { ...h }
      for (const hook of hooks) hook(status, out)
      Object.assign(out, ex.responseHeaders)
      head = { status, headers: out }
      let bytes: Uint8Array
      if (payload === undefined) bytes = new Uint8Array(0)
      else if (typeof payload === 'string') bytes = new TextEncoder().encode(payload)
      else if (payload instanceof Uint8Array) bytes = payload
      else {
        const parts: Uint8Array[] = []
        for await (const chunk of payload) parts.push(chunk)
        bytes = concat(parts)
      }
      sent = { status, headers: out, body: bytes, text: new TextDecoder().decode(bytes) }
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

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
