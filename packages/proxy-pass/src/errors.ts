import {
  BadGatewayError,
  GatewayError,
  UpstreamTimeoutError,
  isGatewayError,
  type GatewayErrorOptions,
} from '@switchboard/core'

/**
 * 503 `ERR_UPSTREAM_POOL_SATURATED`: every connection of the endpoint's pool stayed busy for
 * `queueTimeoutMs`; the request was not sent, so any method may be retried on another endpoint.
 * @example const tryAnotherEndpoint = err instanceof PoolSaturatedError // never sent: safe for any method
 */
export class PoolSaturatedError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_UPSTREAM_POOL_SATURATED', 'Upstream connection pool saturated', options)
  }
}

/**
 * Marks a client response cut because a write stayed blocked past `sendTimeoutMs`; the reason
 * passed to undici's abort.
 */
export class SendTimeoutError extends Error {
  readonly code = 'ERR_SEND_TIMEOUT'
  constructor() {
    super('client did not read the response within sendTimeoutMs')
    this.name = 'SendTimeoutError'
  }
}

/**
 * Maps a failure talking to the upstream to the {@link GatewayError} a client should see:
 * connect, response-head and body-idle timeouts are 504 `ERR_UPSTREAM_TIMEOUT` (with `phase`);
 * everything else (refused, reset, DNS, garbled head or framing) is 502 `ERR_BAD_GATEWAY`.
 * The original error stays in `cause`.
 * @example
 * mapUpstreamError(Object.assign(new Error('x'), { code: 'UND_ERR_CONNECT_TIMEOUT' })).status // 504
 */
export function mapUpstreamError(error: unknown): GatewayError {
  if (isGatewayError(error)) return error
  switch ((error as { code?: unknown } | null)?.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new UpstreamTimeoutError({ phase: 'connect', cause: error })
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamTimeoutError({ phase: 'response', cause: error })
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamTimeoutError({ phase: 'idle', cause: error })
    default:
      return new BadGatewayError({ cause: error })
  }
}
