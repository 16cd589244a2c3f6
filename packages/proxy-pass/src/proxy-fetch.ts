import type { Readable } from 'node:stream'
import type { HeaderRecord } from '@switchboard/core'
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_INFORMATIONAL, DEFAULT_RESPONSE_TIMEOUT_MS, DEFAULT_VIA } from './forward.ts'
import { mapUpstreamError } from './errors.ts'
import { cleanResponseHeaders, isTrusted, lowerOverrides, upstreamHeaders } from './headers.ts'
import { sendRequest } from './send-request.ts'
import { sharedPool, splitTarget } from './pools.ts'
import { UpstreamPoolImpl, type UpstreamPool, type UpstreamPoolOptions } from './upstream-pool.ts'

/**
 * Options of {@link proxyFetch}.
 * @example proxyFetch(request, 'http://127.0.0.1:3000', { clientIp: info.remoteAddr.hostname })
 */
export interface ProxyFetchOptions {
  /**
   * Pool to use; by default a shared pool per origin of `target`.
   * @default a shared pool
   */
  pool?: UpstreamPool
  /**
   * Settings for the shared pool, used when it is first created (ignored with `pool`).
   * @default {}
   */
  poolOptions?: UpstreamPoolOptions
  /**
   * Client address appended to `X-Forwarded-For`. A Web `Request` does not carry one: pass it from
   * your server (`server.requestIP(req)` on Bun, `info.remoteAddr` on Deno). Without it the client
   * cannot be trusted, so its forwarding headers are dropped and no `X-Forwarded-For` is sent.
   * @default undefined
   */
  clientIp?: string
  /** Same as `forward()`'s: whose forwarding headers are believed. @default undefined (trust nobody) */
  trustForwarded?: (clientIp: string) => boolean
  /** Also send an RFC 7239 `Forwarded` element. @default false */
  forwardedHeader?: boolean
  /** Most 1xx responses accepted before the final one; one more is a 502. @default 10 */
  maxInformational?: number
  /**
   * Value of `X-Forwarded-Proto` (any client-sent value is replaced).
   * @default the scheme of `request.url`
   */
  proto?: 'http' | 'https'
  /**
   * `Via` entry appended both ways; `false` adds none.
   * @default '1.1 switchboard'
   */
  via?: string | false
  /**
   * Headers set on (or, with `undefined`, removed from) the upstream request.
   * @default undefined
   */
  headers?: Record<string, string | undefined>
  /**
   * Headers set on the response over the upstream's.
   * @default undefined
   */
  responseHeaders?: Record<string, string | string[]>
  /**
   * Request sent → response head; past it a 504 `ERR_UPSTREAM_TIMEOUT` response.
   * @default 30_000
   */
  responseTimeoutMs?: number
  /**
   * Longest silence inside the upstream response body; past it the body stream errors.
   * @default 60_000
   */
  idleTimeoutMs?: number
  /**
   * Aborts the upstream request. Deno 2.9 aborts `request.signal` after successful responses, so
   * it is not used by default.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Web-standard variant for `Bun.serve`, `Deno.serve` or Hono: forwards `request` to `target` with
 * the same header rules as `forward()`, streams both bodies, never decompresses, and answers
 * upstream failures with `err.toResponse()` (502/504 JSON). A path in `target` is prefixed to the
 * request's path.
 * @example
 * Bun.serve({ fetch: (req, server) => proxyFetch(req, 'http://127.0.0.1:3000', { clientIp: server.requestIP(req)?.address }) })
 */
export async function proxyFetch(
  request: Request,
  target: string | URL,
  options: ProxyFetchOptions = {},
): Promise<Response> {
  const { origin, prefix } = splitTarget(target)
  const upstream = options.pool ?? sharedPool(origin, options.poolOptions)
  const impl = UpstreamPoolImpl.unwrap(upstream)
  const url = new URL(request.url)
  const raw: string[] = []
  for (const [name, value] of request.headers) raw.push(name, value)
  const host = request.headers.get('host') ?? url.host
  if (!request.headers.has('host')) raw.push('host', host)
  const via = options.via ?? DEFAULT_VIA
  const method = request.method
  // undici streams any AsyncIterable body (Dispatcher.md), a web ReadableStream included; its
  // types only list Node streams.
  let body: Readable | null = null
  if (request.body !== null && method !== 'GET' && method !== 'HEAD') body = request.body as unknown as Readable
  const proto = options.proto ?? (url.protocol === 'https:' ? 'https' : 'http')
  try {
    const response = await sendRequest(
      impl,
      {
        origin: upstream.origin,
        path: prefix + url.pathname + url.search,
        method: method as 'GET',
        headers: upstreamHeaders(raw, {
          clientIp: options.clientIp,
          proto,
          host,
          via,
          overrides: lowerOverrides(options.headers),
          bodyLength: undefined,
          trusted: isTrusted(options.trustForwarded, options.clientIp),
          // The port the client connected to, as the server saw it in the request URL.
          port: url.port || (url.protocol === 'https:' ? '443' : '80'),
          forwardedHeader: options.forwardedHeader === true,
        }),
        body,
        bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      },
      {
        responseTimeoutMs: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
        maxInformational: options.maxInformational ?? DEFAULT_MAX_INFORMATIONAL,
        signal: options.signal,
      },
    )
    const status = response.statusCode
    const headers = toHeaders(cleanResponseHeaders(response.headers as HeaderRecord, via, options.responseHeaders))
    // RFC 9110 §6.4.1: HEAD, 204 and 304 responses carry no content.
    if (method === 'HEAD' || status === 204 || status === 304) {
      response.body.resume() // empty: releases the connection for reuse
      return new Response(null, { status, statusText: response.statusText, headers })
    }
    const source = response.body
    const iterator = source[Symbol.asyncIterator]()
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await iterator.next()
          if (next.done) controller.close()
          else controller.enqueue(next.value as Uint8Array)
        } catch (error) {
          // Mid-body failure: the client sees an errored stream, never a clean end.
          controller.error(error)
        }
      },
      cancel(reason) {
        source.destroy(reason instanceof Error ? reason : undefined)
      },
    })
    return new Response(stream, { status, statusText: response.statusText, headers })
  } catch (error) {
    return mapUpstreamError(error).toResponse()
  }
}

function toHeaders(record: HeaderRecord): Headers {
  const headers = new Headers()
  for (const name of Object.keys(record)) {
    const value = record[name]
    if (value === undefined) continue
    if (typeof value === 'string') headers.append(name, value)
    else for (const item of value) headers.append(name, item)
  }
  return headers
}
