import type { IncomingMessage } from 'node:http'
import type { HeaderRecord, UpstreamResponse } from '@switchboard/core'
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_INFORMATIONAL, DEFAULT_RESPONSE_TIMEOUT_MS, DEFAULT_VIA } from './forward.ts'
import { cleanResponseHeaders, isTrusted, lowerOverrides, upstreamHeaders } from './headers.ts'
import { sendRequest } from './send-request.ts'
import { UpstreamPoolImpl, type UpstreamPool } from './upstream-pool.ts'

/**
 * Options of {@link requestUpstream}.
 * @example requestUpstream(req, { pool, headers: { 'if-none-match': etag } })
 */
export interface RequestUpstreamOptions {
  /** Pool made by `createUpstreamPool()`. */
  pool: UpstreamPool
  /** Method to send. @default req.method */
  method?: string
  /** Path and query to send. @default req.url, byte-exact */
  target?: string
  /** Headers set on (or, with `undefined`, removed from) the upstream request. @default undefined */
  headers?: Record<string, string | undefined>
  /** Client address appended to `X-Forwarded-For`. @default req.socket.remoteAddress */
  clientIp?: string
  /** Same as `forward()`'s: whose forwarding headers are believed. @default undefined (trust nobody) */
  trustForwarded?: (clientIp: string) => boolean
  /** Also send an RFC 7239 `Forwarded` element. @default false */
  forwardedHeader?: boolean
  /** Most 1xx responses accepted before the final one; one more is a 502. @default 10 */
  maxInformational?: number
  /** Value of `X-Forwarded-Proto`. @default 'http' */
  proto?: 'http' | 'https'
  /** `Via` entry appended both ways; `false` adds none. @default '1.1 switchboard' */
  via?: string | false
  /** A buffered request body to send (the client's stream is never read here). @default no body */
  body?: Uint8Array
  /** Request sent → response head. @default 30_000 */
  responseTimeoutMs?: number
  /** Longest silence inside the response body. @default 60_000 */
  idleTimeoutMs?: number
  /** Aborts the upstream request. @default undefined */
  signal?: AbortSignal
}

/**
 * Sends a copy of a client request upstream (same header rules as `forward()`) and returns the
 * response instead of writing it to a client: for cache revalidation and for trying endpoints in
 * turn. Upstream failures reject with a `GatewayError` (502/504). The caller must consume the body
 * or call `cancel()`.
 * @example
 * const res = await requestUpstream(req, { pool, method: 'GET', headers: { 'if-none-match': etag } })
 * if (res.status === 304) res.cancel()
 */
export async function requestUpstream(
  req: Pick<IncomingMessage, 'rawHeaders' | 'headers' | 'method' | 'url' | 'socket'>,
  options: RequestUpstreamOptions,
): Promise<UpstreamResponse> {
  const upstream = UpstreamPoolImpl.unwrap(options.pool)
  const via = options.via ?? DEFAULT_VIA
  const method = options.method ?? req.method ?? 'GET'
  const body = options.body !== undefined && method !== 'GET' && method !== 'HEAD' ? options.body : undefined
  const clientIp = options.clientIp ?? req.socket?.remoteAddress
  const localPort = req.socket?.localPort
  const headers = upstreamHeaders(req.rawHeaders, {
    clientIp,
    proto: options.proto ?? 'http',
    host: req.headers.host,
    via,
    overrides: lowerOverrides(options.headers),
    // Without a body to send, the client's Content-Length must not survive (the upstream would wait).
    bodyLength: body?.byteLength ?? (req.headers['content-length'] !== undefined ? 0 : undefined),
    trusted: isTrusted(options.trustForwarded, clientIp),
    port: localPort === undefined ? undefined : String(localPort),
    forwardedHeader: options.forwardedHeader === true,
  })
  const response = await sendRequest(
    upstream,
    {
      origin: options.pool.origin,
      path: options.target ?? req.url ?? '/',
      method: method as 'GET',
      headers,
      body: body ?? null,
      bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    },
    {
      responseTimeoutMs: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
      maxInformational: options.maxInformational ?? DEFAULT_MAX_INFORMATIONAL,
      signal: options.signal,
    },
  )
  const status = response.statusCode
  const source = response.body
  const cleaned = cleanResponseHeaders(response.headers as HeaderRecord, via, undefined)
  return {
    status,
    headers: cleaned,
    body: source as AsyncIterable<Uint8Array>,
    cancel() {
      source.destroy()
    },
  }
}
