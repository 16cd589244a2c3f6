import { Pool } from 'undici/index.js'

/**
 * Options of {@link createUpstreamPool}.
 * @example createUpstreamPool(url, { connectTimeoutMs: 1_000, connections: 64 })
 */
export interface UpstreamPoolOptions {
  /**
   * Longest wait for a TCP (and TLS) connection; past it `forward()` rejects with a 504
   * `ERR_UPSTREAM_TIMEOUT` (phase `connect`). A refused connection is a 502 right away.
   * @default 2_000
   */
  connectTimeoutMs?: number
  /**
   * How long an idle upstream connection is kept for reuse. A shorter `Keep-Alive: timeout=`
   * hint from the upstream wins.
   * @default 4_000
   */
  keepAliveTimeoutMs?: number
  /**
   * Most sockets open to this origin at once; further requests queue inside the pool.
   * @default 128
   */
  connections?: number
  /**
   * Called when a connection to the origin opens (the gateway feeds `EndpointState.connectionOpened`).
   * @default undefined
   */
  onConnect?: () => void
  /**
   * Called when a connection to the origin closes (the gateway feeds `EndpointState.connectionClosed`).
   * @default undefined
   */
  onDisconnect?: () => void
}

/**
 * Keep-alive connections to one origin, shared by every `forward()` to it.
 * @example await pool.close() // on shutdown
 */
export interface UpstreamPool {
  /** `scheme://host:port` of the upstream. */
  readonly origin: string
  /** Lets in-flight requests finish, then closes every connection. */
  close(): Promise<void>
  /** Aborts in-flight requests and closes every connection now. */
  destroy(): Promise<void>
}

/** Connect timeout of {@link createUpstreamPool}. @example DEFAULT_CONNECT_TIMEOUT_MS // 2000 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000
/** Idle keep-alive time of {@link createUpstreamPool}. @example DEFAULT_KEEP_ALIVE_TIMEOUT_MS // 4000 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 4_000
/** Sockets per origin of {@link createUpstreamPool}. @example DEFAULT_CONNECTIONS // 128 */
export const DEFAULT_CONNECTIONS = 128

/**
 * Creates a keep-alive connection pool to one origin (an undici `Pool`), for {@link forward}.
 * Only the origin of `origin` is used; a path is ignored.
 * @example
 * const pool = createUpstreamPool('http://127.0.0.1:3000', { connections: 64 })
 * http.createServer((req, res) => forward(req, res, { pool }).catch((err) => res.writeHead(err.status).end()))
 */
export function createUpstreamPool(origin: string, options: UpstreamPoolOptions = {}): UpstreamPool {
  return new UpstreamPoolImpl(origin, options)
}

/** The real pool behind {@link UpstreamPool}; internal to this package. */
export class UpstreamPoolImpl implements UpstreamPool {
  readonly origin: string
  #pool: Pool

  constructor(origin: string, options: UpstreamPoolOptions) {
    let url: URL
    try {
      url = new URL(origin)
    } catch (cause) {
      throw new TypeError(`origin must be an absolute http(s) URL, got ${JSON.stringify(origin)}`, { cause })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`origin must use http: or https:, got ${JSON.stringify(url.protocol)}`)
    }
    const connectTimeoutMs = positiveInteger(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs')
    const keepAliveTimeoutMs = positiveInteger(
      options.keepAliveTimeoutMs,
      DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      'keepAliveTimeoutMs',
    )
    const connections = positiveInteger(options.connections, DEFAULT_CONNECTIONS, 'connections')
    this.origin = url.origin
    this.#pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: keepAliveTimeoutMs,
      // An upstream hint may shorten the idle time, never stretch it past our setting.
      keepAliveMaxTimeout: keepAliveTimeoutMs,
      connect: { timeout: connectTimeoutMs },
    })
    const { onConnect, onDisconnect } = options
    if (onConnect) this.#pool.on('connect', () => onConnect())
    if (onDisconnect) this.#pool.on('disconnect', () => onDisconnect())
  }

  close(): Promise<void> {
    return this.#pool.close()
  }

  destroy(): Promise<void> {
    return this.#pool.destroy()
  }

  /** The undici pool of a pool made by {@link createUpstreamPool}. */
  static unwrap(pool: UpstreamPool): Pool {
    if (!(pool instanceof UpstreamPoolImpl)) {
      throw new TypeError('options.pool must come from createUpstreamPool()')
    }
    return pool.#pool
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`)
  return value
}
