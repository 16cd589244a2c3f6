import type { Readable } from 'node:stream'
import { BadGatewayError, UpstreamTimeoutError } from '@switchboard/core'
import type { Dispatcher } from 'undici/index.js'
import { mapUpstreamError } from './errors.ts'
import type { UpstreamPoolImpl } from './upstream-pool.ts'

/** What {@link sendRequest} needs besides undici's own request options. */
export interface GuardOptions {
  responseTimeoutMs: number
  maxInformational: number
  signal: AbortSignal | undefined
}

/** A final upstream response with a body that frees its pool slot when it closes. */
export interface GuardedResponse {
  statusCode: number
  statusText: string
  headers: Dispatcher.ResponseData['headers']
  body: Readable
}

/**
 * `pool.request()` with the rules `forward()` applies: admission through the pool (503 when
 * saturated), a status outside 100–599 is a 502, at most `maxInformational` 1xx, and 1xx never
 * extend the response-head deadline. Rejects with a `GatewayError`.
 */
export async function sendRequest(
  upstream: UpstreamPoolImpl,
  options: Omit<Dispatcher.RequestOptions, 'signal' | 'onInfo' | 'headersTimeout'>,
  guard: GuardOptions,
): Promise<GuardedResponse> {
  const release = await upstream.acquire()
  const controller = new AbortController()
  const outer = guard.signal
  const onOuterAbort = (): void => controller.abort(outer?.reason)
  if (outer?.aborted) onOuterAbort()
  else outer?.addEventListener('abort', onOuterAbort, { once: true })
  let informational = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const sentAt = Date.now()
  const done = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    outer?.removeEventListener('abort', onOuterAbort)
  }
  let response: Dispatcher.ResponseData
  try {
    response = await upstream.undici.request({
      ...options,
      signal: controller.signal,
      headersTimeout: guard.responseTimeoutMs,
      onInfo: ({ statusCode }) => {
        if (statusCode < 100) {
          return controller.abort(new BadGatewayError({ message: `Upstream sent status ${statusCode}` }))
        }
        if (++informational > guard.maxInformational) {
          return controller.abort(
            new BadGatewayError({ message: `Upstream sent more than ${guard.maxInformational} informational responses` }),
          )
        }
        // undici restarts its head timer on every 1xx; ours keeps the original deadline.
        timer ??= setTimeout(
          () => controller.abort(new UpstreamTimeoutError({ phase: 'response' })),
          Math.max(0, sentAt + guard.responseTimeoutMs - Date.now()),
        )
      },
    })
  } catch (error) {
    done()
    release()
    throw mapUpstreamError(error)
  }
  done()
  const body = response.body as unknown as Readable
  // Never an unhandled 'error', even if the caller never reads or cancels the body.
  body.on('error', ignore)
  body.once('close', release)
  if (response.statusCode < 100 || response.statusCode > 599) {
    body.destroy()
    throw new BadGatewayError({ message: `Upstream sent status ${response.statusCode}` })
  }
  return {
    statusCode: response.statusCode,
    statusText: (response as { statusText?: string }).statusText ?? '',
    headers: response.headers,
    body,
  }
}

function ignore(): void {}
