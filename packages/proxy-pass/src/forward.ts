import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform } from 'node:stream'
import { BadGatewayError, GatewayError, type HeaderRecord, PayloadTooLargeError, type ResponseTap, UpstreamTimeoutError } from '@switchboard/core'
import type { Dispatcher } from 'undici/index.js'
import { mapUpstreamError, SendTimeoutError } from './errors.ts'
import { cleanResponseHeaders, isTrusted, lowerOverrides, upstreamHeaders } from './headers.ts'
import { UpstreamPoolImpl, type UpstreamPool } from './upstream-pool.ts'

/**
 * Options of {@link forward}.
 * @example forward(req, res, { pool, clientIp, proto: 'https', responseTimeoutMs: 5_000 })
 */
export interface ForwardOptions {
  /** Connections to the upstream origin, from `createUpstreamPool()`. */
  pool: UpstreamPool
  /**
   * Path and query sent upstream, byte for byte (no decoding, no `//` merging).
   * @default req.url
   */
  target?: string
  /**
   * Method sent upstream (an envelope endpoint such as the gateway's `POST /proxy` sends another).
   * @default req.method
   */
  method?: string
  /**
   * Headers set on (or, with `undefined`, removed from) the upstream request, applied after every
   * other rule.
   * @default undefined
   */
  headers?: Record<string, string | undefined>
  /**
   * Client address appended to `X-Forwarded-For` (and passed to `trustForwarded`).
   * @default req.socket.remoteAddress
   */
  clientIp?: string
  /**
   * Decides whether the client is a proxy whose forwarding headers are believed. Untrusted (the
   * default): the client's `Forwarded`, `X-Forwarded-For`, `-Host`, `-Proto`, `-Port`, `-Prefix`
   * and `X-Real-IP` are dropped and ours set (`X-Forwarded-For: clientIp`, proto, host, and the
   * local port). Trusted: `clientIp` is appended to its `X-Forwarded-For` and its proto, host,
   * port and prefix are kept.
   * @default undefined (trust nobody)
   */
  trustForwarded?: (clientIp: string) => boolean
  /**
   * Also send an RFC 7239 `Forwarded: for=…;host=…;proto=…` element (appended to a trusted
   * client's `Forwarded`).
   * @default false
   */
  forwardedHeader?: boolean
  /**
   * Value of `X-Forwarded-Proto` (any client-sent value is replaced).
   * @default 'http'
   */
  proto?: 'http' | 'https'
  /**
   * `Via` entry appended on the upstream request and on the client response; `false` adds none.
   * @default '1.1 switchboard'
   */
  via?: string | false
  /**
   * Longest wait from the request being sent to the upstream's response head; past it the promise
   * rejects with a 504 `ERR_UPSTREAM_TIMEOUT` (phase `response`).
   * @default 30_000
   */
  responseTimeoutMs?: number
  /**
   * Longest silence inside the upstream response body; past it the client response is cut off.
   * Time spent waiting for a slow client (backpressure) does not count.
   * @default 60_000
   */
  idleTimeoutMs?: number
  /**
   * Longest time one write to the client may stay blocked (`res.write()` returned `false` and no
   * `'drain'` came). Past it the client connection is destroyed, the upstream request aborted (its
   * pool connection freed) and the promise resolves `{ aborted: true, reason: 'send-timeout' }`.
   * A client that stops reading otherwise pins an upstream connection for as long as it likes.
   * @default 30_000
   */
  sendTimeoutMs?: number
  /**
   * Most `1xx` responses accepted before the final one; one more is a 502 `ERR_BAD_GATEWAY`.
   * `103 Early Hints` (its `Link` fields) are relayed to the client where the runtime supports
   * `res.writeEarlyHints()`; other 1xx are dropped. They never extend `responseTimeoutMs`.
   * @default 10
   */
  maxInformational?: number
  /**
   * Request-body chunks relayed per event-loop turn: after this many, the upload takes no more
   * until `setImmediate`, so a client sending millions of tiny chunks yields the CPU to other
   * requests (and, if it keeps sending, is paused by backpressure). Small chunks are also
   * coalesced (up to {@link COALESCE_BYTES} or the end of the turn) before they reach undici.
   * @default 1_024
   */
  maxChunksPerTurn?: number
  /**
   * Buffered request body to send instead of streaming `req` (for example when the body was
   * already read, or for a retry). Replaces the client's framing with `Content-Length`.
   * @default undefined
   */
  body?: Uint8Array
  /**
   * Headers set on the client response over the upstream's.
   * @default undefined
   */
  responseHeaders?: Record<string, string | string[]>
  /**
   * Called with the cleaned response head just before it is written; may mutate `headers`
   * (set a field to `undefined` to remove it).
   * @default undefined
   */
  onResponseHead?: (status: number, headers: HeaderRecord) => void
  /**
   * Asked with every final response head (status ≥ 200) before anything is written to the client.
   * Returning `true` discards that response: nothing is written, the upstream request is aborted
   * (its connection closed) and the promise rejects with a {@link GatewayError} whose `code` is
   * `ERR_UPSTREAM_RETRYABLE_STATUS`, `status` the upstream's status and `headers` its (cleaned)
   * response head, so a caller can retry elsewhere. Called before `onResponseHead` and `tap`.
   * @default undefined (every response is relayed)
   */
  shouldRetry?: (status: number, headers: HeaderRecord) => boolean
  /**
   * Observes the response as it streams to the client.
   * @default undefined
   */
  tap?: ResponseTap
  /**
   * Aborts the exchange like a client disconnect would: the upstream request is aborted, the
   * client connection destroyed, and the promise resolves with `aborted: true`.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Set when the caller keeps an `'error'` listener on `req` and `res` for their whole life (the
   * gateway's transport does): `forward()` then adds none of its own. Leave unset otherwise: an
   * `'error'` without a listener kills the process (Bun emits one on a cut upload).
   * @default false
   */
  errorListenersSet?: boolean
  /**
   * Largest request body sent upstream. A declared `Content-Length` above it rejects with 413
   * `ERR_PAYLOAD_TOO_LARGE` before anything is sent; a chunked body that grows past it aborts the
   * upstream request and rejects the same way. Ignored with `body`.
   * @default undefined (no limit)
   */
  maxBodyBytes?: number
}

/**
 * How a {@link forward} call ended.
 * @example const { status, aborted } = await forward(req, res, { pool })
 */
export interface ForwardResult {
  /** Status sent to the client; `0` when the client went away before a response head. */
  status: number
  /** Response body bytes written to the client. */
  bytesSent: number
  /**
   * True when the response did not finish cleanly: the upstream failed mid-body (the client
   * connection was destroyed so the truncation is visible) or the client went away.
   */
  aborted: boolean
  /** Why it was aborted; absent when `aborted` is false. */
  reason?: ForwardAbortReason
}

/**
 * Why a {@link forward} ended with `aborted: true`: the client went away, `signal` aborted, a
 * write stayed blocked past `sendTimeoutMs`, or the upstream failed after the head was written.
 * @example if (result.reason === 'send-timeout') metrics.slowClients++
 */
export type ForwardAbortReason = 'client-gone' | 'signal' | 'send-timeout' | 'upstream-error'

/** `Via` entry added by default. @example DEFAULT_VIA // '1.1 switchboard' */
/** `code` of the error a {@link ForwardOptions.shouldRetry} discard rejects with. */
export const RETRYABLE_STATUS_CODE = 'ERR_UPSTREAM_RETRYABLE_STATUS'

export const DEFAULT_VIA = '1.1 switchboard'
/** Response-head timeout of {@link forward}. @example DEFAULT_RESPONSE_TIMEOUT_MS // 30000 */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000
/** Body idle timeout of {@link forward}. @example DEFAULT_IDLE_TIMEOUT_MS // 60000 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000
/**
 * Blocked-write limit of {@link forward}. nginx's `send_timeout` is 60 s, but nginx buffers the
 * upstream response and frees the upstream connection early; we stream, so a stuck client pins a
 * pool connection and a shorter bound (the same as the response-head timeout) is used.
 * @example DEFAULT_SEND_TIMEOUT_MS // 30000
 */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000
/** 1xx cap of {@link forward}. @example DEFAULT_MAX_INFORMATIONAL // 10 */
export const DEFAULT_MAX_INFORMATIONAL = 10
/** Upload chunks per event-loop turn of {@link forward}. @example DEFAULT_MAX_CHUNKS_PER_TURN // 1024 */
export const DEFAULT_MAX_CHUNKS_PER_TURN = 1_024
/** Small request-body chunks are gathered up to this many bytes before being sent. @example COALESCE_BYTES // 16384 */
export const COALESCE_BYTES = 16 * 1024

/**
 * Sends one `node:http` request to the pool's origin and streams the response back into `res`,
 * with backpressure both ways.
 *
 * Before any byte of the response head is written, an upstream failure REJECTS with a
 * `GatewayError` (502 `ERR_BAD_GATEWAY`, 504 `ERR_UPSTREAM_TIMEOUT` with `phase`) and `res` is left
 * unwritten, so the caller may answer or retry elsewhere (only ever for idempotent requests with a
 * replayable `body`: `forward` itself never retries). After the head is written, failures destroy
 * the client connection (a visible truncation, never a clean end) and the promise RESOLVES with
 * `aborted: true`. A client that goes away (or `signal`) aborts the upstream request at once,
 * destroys the client connection and also resolves with `aborted: true`.
 * @example
 * const pool = createUpstreamPool('http://127.0.0.1:3000')
 * http.createServer(async (req, res) => {
 *   try {
 *     await forward(req, res, { pool })
 *   } catch (err) {
 *     const error = mapUpstreamError(err) // 502, or 504 for a timeout
 *     res.writeHead(error.status, { 'content-type': 'application/json' }).end(error.toBody())
 *   }
 * })
 */
export function forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<ForwardResult> {
  const upstream = UpstreamPoolImpl.unwrap(options.pool)
  const pool = upstream.undici
  const max = options.maxBodyBytes
  if (max !== undefined && options.body === undefined && Number(req.headers['content-length']) > max) {
    return Promise.reject(new PayloadTooLargeError({ details: { limit: max } }))
  }
  return new Promise<ForwardResult>((resolve, reject) => {
    const handler = new ForwardHandler(req, res, options, resolve, reject)
    const send = (body: Dispatcher.DispatchOptions['body'], bodyLength: number | undefined): void => {
      const clientIp = options.clientIp ?? req.socket.remoteAddress
      const dispatchOptions: Dispatcher.DispatchOptions = {
        origin: options.pool.origin,
        path: options.target ?? req.url ?? '/',
        method: options.method ?? req.method ?? 'GET',
        headers: upstreamHeaders(req.rawHeaders, {
          clientIp,
          proto: options.proto ?? 'http',
          host: req.headers.host,
          via: options.via ?? DEFAULT_VIA,
          overrides: lowerOverrides(options.headers),
          bodyLength,
          trusted: isTrusted(options.trustForwarded, clientIp),
          port: req.socket.localPort === undefined ? undefined : String(req.socket.localPort),
          forwardedHeader: options.forwardedHeader === true,
        }),
        body,
        headersTimeout: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
        bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      }
      handler.queued(
        upstream.admit(
          (release) => handler.dispatch(pool, dispatchOptions, release),
          (error) => handler.saturated(error),
        ),
      )
    }
    if (options.body !== undefined) return send(options.body, options.body.byteLength)
    if (!hasBody(req)) return send(null, undefined)
    const length = smallBodyLength(req)
    // Like nginx's client_body_buffer_size: a small body with a declared length is read whole and
    // sent as one buffer, which costs far less than a stream hop; large or chunked bodies stream.
    if (length === undefined) return send(handler.upload(max, options.maxChunksPerTurn ?? DEFAULT_MAX_CHUNKS_PER_TURN), undefined)
    if (req.readableEnded) return send(Buffer.alloc(0), 0)
    handler.readSmallBody((bytes) => send(bytes, bytes.byteLength))
  })
}

/** Bodies up to this size with a Content-Length are buffered before forwarding. */
export const SMALL_BODY_BYTES = 64 * 1024

function smallBodyLength(req: IncomingMessage): number | undefined {
  const headers = req.headers
  if (headers['transfer-encoding'] !== undefined) return undefined
  const length = Number(headers['content-length'])
  return length > 0 && length <= SMALL_BODY_BYTES ? length : undefined
}

/** Marks a client that went away; the reason passed to undici's abort. */
class ClientGoneError extends Error {
  readonly code = 'ERR_CLIENT_GONE'
  constructor() {
    super('client closed the connection')
    this.name = 'ClientGoneError'
  }
}

/** Per-request undici handler (undici 7 handler API): the whole state of one `forward()`. */
class ForwardHandler implements Dispatcher.DispatchHandler {
  #req: IncomingMessage
  #res: ServerResponse
  #options: ForwardOptions
  #resolve: (result: ForwardResult) => void
  #reject: (error: unknown) => void
  #tap: ResponseTap | undefined
  #controller: Dispatcher.DispatchController | null = null
  #upload: Transform | null = null
  #status = 0
  #bytesSent = 0
  #headWritten = false
  #settled = false
  #gone = false
  #reason: ForwardAbortReason | undefined
  #resume: (() => void) | null = null
  #release: (() => void) | null = null
  #withdraw: (() => void) | null = null
  #sendTimer: ReturnType<typeof setTimeout> | undefined
  /** When the current client backpressure began (0: not blocked). */
  #blockedAt = 0
  #headTimer: ReturnType<typeof setTimeout> | undefined
  #sentAt = 0
  #informational = 0

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    options: ForwardOptions,
    resolve: (result: ForwardResult) => void,
    reject: (error: unknown) => void,
  ) {
    this.#req = req
    this.#res = res
    this.#options = options
    this.#resolve = resolve
    this.#reject = reject
    this.#tap = options.tap
    // Regression (Bun): a stalled upload that is cut after the exchange emits `error: aborted` on
    // `req`; an 'error' without a listener kills the process. These stay for the streams' lifetime.
    if (options.errorListenersSet !== true) {
      req.on('error', ignore)
      res.on('error', ignore)
    }
    res.on('close', this.#onClientClose)
    const signal = options.signal
    // Already gone: 'close' will not fire again, so abort as soon as the request starts.
    if (res.destroyed || signal?.aborted) {
      this.#gone = true
      this.#reason = signal?.aborted ? 'signal' : 'client-gone'
    } else if (signal) signal.addEventListener('abort', this.#onSignal, { once: true })
  }

  /**
   * The request body as undici should read it. `req` is piped through a Transform because undici
   * destroys the body stream when the upstream answers early; destroying `req` itself would kill
   * the client socket before it sees that answer (an early 413). The Transform also enforces
   * `maxBodyBytes`, coalesces small chunks and yields the CPU after `chunksPerTurn` chunks.
   */
  upload(maxBytes: number | undefined, chunksPerTurn: number): Transform {
    const upload = coalescingUpload(maxBytes, chunksPerTurn)
    // Written to after undici is done with it (early answer, abort): never an unhandled error.
    upload.on('error', ignore)
    this.#req.pipe(upload)
    this.#upload = upload
    return upload
  }

  /**
   * Reads a small declared-length body whole, then calls `send`. A client that goes away (or an
   * aborted `signal`) first settles the forward as aborted, and nothing is sent upstream.
   */
  readSmallBody(send: (bytes: Buffer) => void): void {
    const req = this.#req
    const chunks: Buffer[] = []
    let received = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      received += chunk.length
    }
    const onEnd = (): void => {
      done()
      if (this.#gone || this.#settled) return this.#finish(true)
      send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received))
    }
    const onGone = (): void => {
      done()
      if (!this.#settled) {
        this.#reason ??= 'client-gone'
        this.#res.destroy()
        this.#finish(true)
      }
    }
    const done = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onGone)
      req.off('close', onGone)
      this.#res.off('close', onGone)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onGone)
    req.on('close', onGone)
    this.#res.on('close', onGone)
  }

  /** Remembers how to withdraw the request while it waits for a pool connection. */
  queued(withdraw: () => void): void {
    if (this.#release === null && !this.#settled) this.#withdraw = withdraw
  }

  /** Admitted by the pool: send the request (or give the slot back if the client already left). */
  dispatch(pool: Dispatcher, options: Dispatcher.DispatchOptions, release: () => void): void {
    this.#withdraw = null
    if (this.#settled) return release()
    this.#release = release
    try {
      pool.dispatch(options, this)
    } catch (error) {
      this.onResponseError(null, error instanceof Error ? error : new Error(String(error)))
    }
  }

  /** No pool connection within `queueTimeoutMs`: nothing was sent. */
  saturated(error: Error): void {
    this.#withdraw = null
    if (this.#settled) return
    if (this.#gone) {
      this.#res.destroy()
      return this.#finish(true)
    }
    this.#settled = true
    this.#cleanup()
    this.#reject(error)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    this.#sentAt = Date.now()
    if (this.#gone) controller.abort(new ClientGoneError())
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: HeaderRecord,
    statusMessage?: string,
  ): void {
    if (this.#settled) return
    // One rule everywhere: a status outside 100–599 is a garbled head (502).
    if (status < 100 || status > 599) {
      return controller.abort(new BadGatewayError({ message: `Upstream sent status ${status}` }))
    }
    if (status < 200) return this.#onInformational(controller, status, headers)
    if (this.#headTimer !== undefined) {
      clearTimeout(this.#headTimer)
      this.#headTimer = undefined
    }
    const res = this.#res
    const options = this.#options
    headers = cleanResponseHeaders(headers, options.via ?? DEFAULT_VIA, options.responseHeaders)
    if (options.shouldRetry && !this.#gone) {
      let retry = false
      try {
        retry = options.shouldRetry(status, headers)
      } catch (error) {
        return controller.abort(error instanceof Error ? error : new Error(String(error)))
      }
      if (retry) {
        const discarded = Object.assign(
          new GatewayError(status, RETRYABLE_STATUS_CODE, `Upstream answered ${status}; response discarded for a retry`, { details: { upstreamStatus: status } }),
          { headers },
        )
        controller.abort(discarded)
        if (!this.#settled) {
          this.#settled = true
          this.#cleanup()
          this.#reject(discarded)
        }
        return
      }
    }
    try {
      if (options.onResponseHead) {
        options.onResponseHead(status, headers)
        for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name]
      }
      if (this.#tap && !this.#tap.onHead(status, headers)) this.#tap = undefined
      // An upstream that answers before the upload finished (an early 413): the rest of the upload
      // is discarded, so this client connection cannot carry another request.
      if (this.#upload !== null && !this.#req.complete) res.shouldKeepAlive = false
      if (statusMessage) res.writeHead(status, statusMessage, headers as Record<string, string | string[]>)
      else res.writeHead(status, headers as Record<string, string | string[]>)
    } catch (error) {
      controller.abort(error instanceof Error ? error : new Error(String(error)))
      return
    }
    this.#status = status
    this.#headWritten = true
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    this.#bytesSent += chunk.length
    this.#tap?.onData(chunk)
    if (!this.#res.write(chunk)) {
      // Client backpressure: stop reading the upstream until the client drains, for at most
      // sendTimeoutMs.
      controller.pause()
      this.#res.once('drain', (this.#resume ??= this.#onDrain))
      // One timer checks the blocked time, rather than a timer made and cleared at every
      // backpressure event (thousands on a large download, which Deno's timers made costly).
      if (this.#blockedAt === 0) this.#blockedAt = Date.now()
      this.#sendTimer ??= setTimeout(this.#checkSend, this.#options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS)
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#res.end()
    this.#tap?.onEnd()
    this.#finish(false)
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#settled) return
    if (this.#gone || this.#headWritten) {
      // With the head out, only a cut connection tells the client the body is incomplete
      // (RFC 9112 §8); a client that left or an aborted `signal` ends the same way.
      this.#reason ??= 'upstream-error'
      this.#res.destroy()
      this.#tap?.onAbort(error)
      this.#finish(true)
    } else {
      this.#settled = true
      this.#cleanup()
      this.#reject(mapUpstreamError(error))
    }
  }

  #onInformational(controller: Dispatcher.DispatchController, status: number, headers: HeaderRecord): void {
    const max = this.#options.maxInformational ?? DEFAULT_MAX_INFORMATIONAL
    if (++this.#informational > max) {
      return controller.abort(new BadGatewayError({ message: `Upstream sent more than ${max} informational responses` }))
    }
    // undici restarts its head timer on every 1xx; ours keeps the original deadline.
    if (this.#headTimer === undefined) {
      const timeout = this.#options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
      const left = Math.max(0, this.#sentAt + timeout - Date.now())
      this.#headTimer = setTimeout(() => {
        this.#headTimer = undefined
        controller.abort(new UpstreamTimeoutError({ phase: 'response' }))
      }, left)
    }
    // The gateway answers `Expect` itself (100 is never relayed); 103 carries Link preloads.
    const res = this.#res as ServerResponse & { writeEarlyHints?: (hints: Record<string, string | string[]>) => void }
    const link = headers.link
    if (status === 103 && link !== undefined && typeof res.writeEarlyHints === 'function' && !res.headersSent) {
      try {
        res.writeEarlyHints({ link })
      } catch {
        // Early hints are advisory.
      }
    }
  }

  #onDrain = (): void => {
    this.#blockedAt = 0
    this.#controller?.resume()
  }

  #checkSend = (): void => {
    this.#sendTimer = undefined
    if (this.#settled || this.#blockedAt === 0) return
    const left = this.#blockedAt + (this.#options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS) - Date.now()
    if (left > 0) this.#sendTimer = setTimeout(this.#checkSend, left)
    else this.#onSendTimeout()
  }

  #onSendTimeout = (): void => {
    this.#sendTimer = undefined
    if (this.#settled) return
    this.#reason = 'send-timeout'
    this.#gone = true
    this.#res.destroy()
    this.#controller?.abort(new SendTimeoutError())
  }

  #onSignal = (): void => {
    this.#reason ??= 'signal'
    this.#onClientClose()
  }

  #onClientClose = (): void => {
    if (this.#settled || this.#gone) return
    this.#gone = true
    this.#reason ??= 'client-gone'
    if (this.#withdraw !== null) {
      // Still waiting for a pool connection: nothing was sent.
      this.#withdraw()
      this.#withdraw = null
      this.#res.destroy()
      return this.#finish(true)
    }
    this.#controller?.abort(new ClientGoneError())
  }

  #finish(aborted: boolean): void {
    this.#settled = true
    this.#cleanup()
    const result: ForwardResult = { status: this.#status, bytesSent: this.#bytesSent, aborted }
    if (aborted) result.reason = this.#reason ?? 'client-gone'
    this.#resolve(result)
  }

  #cleanup(): void {
    this.#res.off('close', this.#onClientClose)
    if (this.#resume) this.#res.off('drain', this.#resume)
    if (this.#sendTimer !== undefined) clearTimeout(this.#sendTimer)
    if (this.#headTimer !== undefined) clearTimeout(this.#headTimer)
    this.#options.signal?.removeEventListener('abort', this.#onSignal)
    this.#withdraw?.()
    this.#withdraw = null
    // undici is done with the request once it reports an end or an error.
    this.#release?.()
    this.#release = null
    const upload = this.#upload
    if (upload !== null && !this.#req.complete) {
      // Discard what the client still sends; Node's server reads it to the end.
      this.#req.unpipe(upload)
      this.#req.resume()
      if (!this.#headWritten) this.#res.shouldKeepAlive = false
    }
  }
}

/**
 * The upload Transform: counts bytes against `maxBytes`, gathers small chunks (up to
 * COALESCE_BYTES or the end of the event-loop turn) into one write, and after `chunksPerTurn`
 * chunks in one turn holds its write callback until `setImmediate`, so the rest waits in the
 * stream buffer (then the client socket is paused by backpressure) while other requests run.
 */
function coalescingUpload(maxBytes: number | undefined, chunksPerTurn: number): Transform {
  // Small chunks are copied into one buffer rather than kept: a flood of 1-byte chunks then leaves
  // short-lived garbage only, instead of ~100k retained Buffer objects per upload.
  let acc: Buffer | undefined
  let pendingBytes = 0
  let seen = 0
  let turnChunks = 0
  let scheduled = false
  let stream: Transform
  const flushPending = (): void => {
    if (pendingBytes === 0 || acc === undefined) return
    const data = acc.subarray(0, pendingBytes)
    acc = undefined
    pendingBytes = 0
    if (!stream.destroyed) stream.push(data)
  }
  const nextTurn = (): void => {
    scheduled = false
    turnChunks = 0
    flushPending()
  }
  stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      // Failing the body stream makes undici abort the request with this error.
      if (maxBytes !== undefined && seen > maxBytes) {
        return callback(new PayloadTooLargeError({ details: { limit: maxBytes } }))
      }
      if (chunk.length >= COALESCE_BYTES) {
        flushPending()
        this.push(chunk)
      } else {
        if (pendingBytes + chunk.length > COALESCE_BYTES) flushPending()
        acc ??= Buffer.allocUnsafe(COALESCE_BYTES)
        chunk.copy(acc, pendingBytes)
        pendingBytes += chunk.length
        if (pendingBytes === COALESCE_BYTES) flushPending()
      }
      if (pendingBytes > 0 && !scheduled) {
        scheduled = true
        setImmediate(nextTurn)
      }
      if (++turnChunks < chunksPerTurn) return callback()
      // Budget of this turn used up: take the next chunk only after other I/O had its turn.
      setImmediate(() => {
        turnChunks = 0
        flushPending()
        callback()
      })
    },
    flush(callback) {
      flushPending()
      callback()
    },
  })
  return stream
}

function ignore(): void {}

function hasBody(req: IncomingMessage): boolean {
  const headers = req.headers
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}
