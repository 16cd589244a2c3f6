/** Options every {@link GatewayError} accepts. */
export interface GatewayErrorOptions {
  /** The original failure, kept for logs; never sent to the client. */
  cause?: unknown
  /** Replaces the default message. Keep it short: clients see it. */
  message?: string
  /** Extra fields for the JSON body (for example `{ upstream: 'api' }`). Never secrets. */
  details?: Record<string, unknown>
}

/** The JSON body a client receives for a gateway failure. */
export interface GatewayErrorBody {
  error: { code: string; message: string } & Record<string, unknown>
}

/**
 * Base class of every failure the gateway answers itself. Carries an HTTP `status` and a stable
 * `code` that callers switch on; the original failure stays in `cause`.
 * @example
 * if (isGatewayError(err)) return err.toResponse() // 502, 503, 504 …: the status and JSON body the client gets
 */
export class GatewayError extends Error {
  readonly status: number
  readonly code: string
  readonly details: Record<string, unknown> | undefined

  constructor(status: number, code: string, message: string, options: GatewayErrorOptions = {}) {
    super(options.message ?? message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.status = status
    this.code = code
    this.details = options.details
  }

  /** The short JSON body sent to clients: code and message, no stack, no cause. */
  toJSON(): GatewayErrorBody {
    return { error: { code: this.code, message: this.message, ...this.details } }
  }

  /** Serialised {@link toJSON}, ready to write. */
  toBody(): string {
    return JSON.stringify(this.toJSON())
  }

  /** A Web `Response` with the status and JSON body (for Web-standard handlers). */
  toResponse(): Response {
    return new Response(this.toBody(), {
      status: this.status,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    })
  }
}

/** True when `value` is a {@link GatewayError} (works across package copies by duck-typing). */
export const isGatewayError = (value: unknown): value is GatewayError =>
  value instanceof GatewayError ||
  (typeof value === 'object' &&
    value !== null &&
    typeof (value as GatewayError).status === 'number' &&
    typeof (value as GatewayError).code === 'string' &&
    typeof (value as GatewayError).toBody === 'function')

/** 400 `ERR_BAD_REQUEST`: malformed request line, headers or framing. */
export class BadRequestError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(400, 'ERR_BAD_REQUEST', 'Bad request', options)
  }
}

/** 401 `ERR_UNAUTHORIZED`: credentials missing or invalid. */
export class UnauthorizedError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(401, 'ERR_UNAUTHORIZED', 'Unauthorized', options)
  }
}

/** 403 `ERR_FORBIDDEN`: authenticated but not allowed. */
export class ForbiddenError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(403, 'ERR_FORBIDDEN', 'Forbidden', options)
  }
}

/** 404 `ERR_NO_ROUTE`: no route matches the request. */
export class NoRouteError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(404, 'ERR_NO_ROUTE', 'No route matches this request', options)
  }
}

/** 405 `ERR_METHOD_NOT_ALLOWED`: for example `CONNECT`, which the gateway never tunnels. */
export class MethodNotAllowedError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(405, 'ERR_METHOD_NOT_ALLOWED', 'Method not allowed', options)
  }
}

/** 408 `ERR_REQUEST_TIMEOUT`: the client was too slow sending its head or body. */
export class RequestTimeoutError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(408, 'ERR_REQUEST_TIMEOUT', 'Request timeout', options)
  }
}

/** 413 `ERR_PAYLOAD_TOO_LARGE`: a request body over the configured limit. */
export class PayloadTooLargeError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(413, 'ERR_PAYLOAD_TOO_LARGE', 'Payload too large', options)
  }
}

/** 429 `ERR_RATE_LIMITED`: the client exceeded a rate limit. */
export class RateLimitedError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(429, 'ERR_RATE_LIMITED', 'Too many requests', options)
  }
}

/** 431 `ERR_HEADERS_TOO_LARGE`: the request head exceeded `maxHeaderBytes`. */
export class HeadersTooLargeError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(431, 'ERR_HEADERS_TOO_LARGE', 'Request header fields too large', options)
  }
}

/** 502 `ERR_BAD_GATEWAY`: the upstream refused, reset, or sent something unparseable. */
export class BadGatewayError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(502, 'ERR_BAD_GATEWAY', 'Bad gateway', options)
  }
}

/** 503 `ERR_NO_HEALTHY_UPSTREAM`: every endpoint of the upstream is unhealthy or ejected. */
export class NoHealthyUpstreamError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_NO_HEALTHY_UPSTREAM', 'No healthy upstream', options)
  }
}

/** 503 `ERR_SERVICE_UNAVAILABLE`: the gateway is shutting down, in maintenance, or a breaker is open. */
export class ServiceUnavailableError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_SERVICE_UNAVAILABLE', 'Service unavailable', options)
  }
}

/**
 * 503 (or 429) `ERR_POOL_SATURATED`: every endpoint of the upstream is healthy but full (an LLM
 * pool whose engines all queue past `maxQueue`). A balancer throws it from `pick()`; the client
 * gets `Retry-After` from {@link PoolSaturatedError.headers}.
 * @example throw new PoolSaturatedError({ status: 429, retryAfterSeconds: 2 })
 */
export class PoolSaturatedError extends GatewayError {
  /** Seconds the client should wait, sent as `Retry-After`. */
  readonly retryAfterSeconds: number
  /** Response headers the gateway adds to this error's answer (`retry-after`). */
  readonly headers: Readonly<Record<string, string>>
  constructor(options: GatewayErrorOptions & { status?: 429 | 503; retryAfterSeconds?: number } = {}) {
    const retryAfterSeconds = Math.max(1, Math.ceil(options.retryAfterSeconds ?? 1))
    super(options.status ?? 503, 'ERR_POOL_SATURATED', 'Every upstream engine is saturated', {
      ...options,
      details: { retryAfter: retryAfterSeconds, ...options.details },
    })
    this.retryAfterSeconds = retryAfterSeconds
    this.headers = Object.freeze({ 'retry-after': String(retryAfterSeconds) })
  }
}

/** Which wait ran out for an {@link UpstreamTimeoutError}. */
export type TimeoutPhase = 'connect' | 'response' | 'idle'

/** 504 `ERR_UPSTREAM_TIMEOUT`: connect, response-head or body-idle timeout towards the upstream. */
export class UpstreamTimeoutError extends GatewayError {
  readonly phase: TimeoutPhase
  constructor(options: GatewayErrorOptions & { phase?: TimeoutPhase } = {}) {
    const phase = options.phase ?? 'response'
    super(504, 'ERR_UPSTREAM_TIMEOUT', `Upstream ${phase} timeout`, {
      ...options,
      details: { phase, ...options.details },
    })
    this.phase = phase
  }
}

/**
 * A configuration problem found before anything starts. `path` is the key path
 * (`upstreams.backend.targets[1].url`) and `file` the file it came from, when there is one.
 * @example throw new ConfigError('upstreams.api.targets', 'a non-empty list', { file })
 */
export class ConfigError extends Error {
  readonly path: string
  readonly expected: string
  readonly file: string | undefined

  /** What was found instead, described (`, got "soon"`), or `''`. */
  readonly got: string

  constructor(path: string, expected: string, options: { file?: string; got?: unknown; cause?: unknown } = {}) {
    const got = 'got' in options ? `, got ${describeValue(options.got)}` : ''
    const where = options.file ? `${options.file}: ` : ''
    super(`${where}${path || '(root)'}: expected ${expected}${got}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ConfigError'
    this.path = path
    this.expected = expected
    this.file = options.file
    this.got = got
  }

  /**
   * The same error naming `file` (for errors thrown by option parsers that do not know the file).
   * @example throw ConfigError.inFile(err, 'gw.yaml')
   */
  static inFile(error: ConfigError, file: string | undefined): ConfigError {
    if (error.file !== undefined || file === undefined) return error
    const copy = new ConfigError(error.path, error.expected, { file, cause: error.cause })
    ;(copy as { got: string }).got = error.got
    copy.message = `${file}: ${error.path || '(root)'}: expected ${error.expected}${error.got}`
    return copy
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
  if (Array.isArray(value)) return 'a list'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'a mapping'
  return String(value)
}
