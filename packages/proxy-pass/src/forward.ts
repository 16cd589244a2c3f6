import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, Transform } from 'node:stream'
import { type HeaderRecord, PayloadTooLargeError, type ResponseTap } from '@switchboard/core'
import type { Dispatcher } from 'undici/index.js'
import { mapUpstreamError } from './errors.ts'
import { cleanResponseHeaders, lowerOverrides, upstreamHeaders } from './headers.ts'
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
   * Headers set on (or, with `undefined`, removed from) the upstream request, applied after every
   * other rule.
   * @default undefined
   */
  headers?: Record<string, string | undefined>
  /**
   * Client address appended to `X-Forwarded-For`.
   * @default req.socket.remoteAddress
   */
  clientIp?: string
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
}

/** `Via` entry added by default. @example DEFAULT_VIA // '1.1 switchboard' */
export const DEFAULT_VIA = '1.1 switchboard'
/** Response-head timeout of {@link forward}. @example DEFAULT_RESPONSE_TIMEOUT_MS // 30000 */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000
/** Body idle timeout of {@link forward}. @example DEFAULT_IDLE_TIMEOUT_MS // 60000 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000

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
 *     res.writeHead(err.status, { 'content-type': 'application/json' }).end(err.toBody())
 *   }
 * })
 */
export function forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<ForwardResult> {
  const pool = UpstreamPoolImpl.unwrap(options.pool)
  const max = options.maxBodyBytes
  if (max !== undefined && options.body === undefined && Number(req.headers['content-length']) > max) {
    return Promise.reject(new PayloadTooLargeError({ details: { limit: max } }))
  }
  return new Promise<ForwardResult>((resolve, reject) => {
    const handler = new ForwardHandler(req, res, options, resolve, reject)
    const send = (body: Dispatcher.DispatchOptions['body'], bodyLength: number | undefined): void => {
      pool.dispatch(
        {
          origin: options.pool.origin,
          path: options.target ?? req.url ?? '/',
          method: req.method ?? 'GET',
          headers: upstreamHeaders(req.rawHeaders, {
            clientIp: options.clientIp ?? req.socket.remoteAddress,
            proto: options.proto ?? 'http',
            host: req.headers.host,
            via: options.via ?? DEFAULT_VIA,
            overrides: lowerOverrides(options.headers),
            bodyLength,
          }),
          body,
          headersTimeout: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
          bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        },
        handler,
      )
    }
    if (options.body !== undefined) return send(options.body, options.body.byteLength)
    if (!hasBody(req)) return send(null, undefined)
    const length = smallBodyLength(req)
    // Like nginx's client_body_buffer_size: a small body with a declared length is read whole and
    // sent as one buffer, which costs far less than a stream hop; large or chunked bodies stream.
    if (length === undefined) return send(handler.upload(max), undefined)
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
  #upload: PassThrough | Transform | null = null
  #status = 0
  #bytesSent = 0
  #headWritten = false
  #settled = false
  #gone = false
  #resume: (() => void) | null = null

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
    res.on('close', this.#onClientClose)
    const signal = options.signal
    // Already gone: 'close' will not fire again, so abort as soon as the request starts.
    if (res.destroyed || signal?.aborted) this.#gone = true
    else if (signal) signal.addEventListener('abort', this.#onClientClose, { once: true })
  }

  /**
   * The request body as undici should read it. `req` is piped through a PassThrough because undici
   * destroys the body stream when the upstream answers early; destroying `req` itself would kill
   * the client socket before it sees that answer (an early 413).
   */
  upload(maxBytes: number | undefined): PassThrough | Transform {
    let upload: PassThrough | Transform
    if (maxBytes === undefined) upload = new PassThrough()
    else {
      let seen = 0
      upload = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          seen += chunk.length
          // Failing the body stream makes undici abort the request with this error.
          if (seen > maxBytes) callback(new PayloadTooLargeError({ details: { limit: maxBytes } }))
          else callback(null, chunk)
        },
      })
    }
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

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#gone) controller.abort(new ClientGoneError())
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: HeaderRecord,
    statusMessage?: string,
  ): void {
    if (status < 200 || this.#settled) return // 1xx: the gateway already answered `Expect`
    const res = this.#res
    const options = this.#options
    cleanResponseHeaders(headers, options.via ?? DEFAULT_VIA, options.responseHeaders)
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
      // Client backpressure: stop reading the upstream until the client drains.
      controller.pause()
      this.#res.once('drain', (this.#resume ??= () => controller.resume()))
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#res.end()
    this.#tap?.onEnd()
    this.#finish(false)
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#settled) return
    if (this.#gone || this.#headWritten) {
      // With the head out, only a cut connection tells the client the body is incomplete
      // (RFC 9112 §8); a client that left or an aborted `signal` ends the same way.
      this.#res.destroy()
      this.#tap?.onAbort(error)
      this.#finish(true)
    } else {
      this.#settled = true
      this.#cleanup()
      this.#reject(mapUpstreamError(error))
    }
  }

  #onClientClose = (): void => {
    if (this.#settled || this.#gone) return
    this.#gone = true
    this.#controller?.abort(new ClientGoneError())
  }

  #finish(aborted: boolean): void {
    this.#settled = true
    this.#cleanup()
    this.#resolve({ status: this.#status, bytesSent: this.#bytesSent, aborted })
  }

  #cleanup(): void {
    this.#res.off('close', this.#onClientClose)
    if (this.#resume) this.#res.off('drain', this.#resume)
    this.#options.signal?.removeEventListener('abort', this.#onClientClose)
    const upload = this.#upload
    if (upload !== null && !this.#req.complete) {
      // Discard what the client still sends; Node's server reads it to the end.
      this.#req.unpipe(upload)
      this.#req.resume()
      if (!this.#headWritten) this.#res.shouldKeepAlive = false
    }
  }
}

function hasBody(req: IncomingMessage): boolean {
  const headers = req.headers
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}
