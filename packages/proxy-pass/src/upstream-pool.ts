import { Pool } from 'undici/index.js'
import { PoolSaturatedError } from './errors.ts'

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
   * Longest wait for a free connection when all `connections` are busy; past it the request is
   * rejected with a 503 `ERR_UPSTREAM_POOL_SATURATED` ({@link PoolSaturatedError}) and never sent.
   * @default 1_000
   */
  queueTimeoutMs?: number
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
  /**
   * How `https:` origins are verified: `ca` (PEM) trusted instead of the runtime's store, `servername`
   * sent as SNI and checked against the certificate instead of the URL's host, and
   * `rejectUnauthorized: false` to accept any certificate (tests only). Ignored for `http:`.
   * @default undefined (the runtime's CA store, SNI from the URL, certificates verified)
   */
  tls?: { ca?: string; servername?: string; rejectUnauthorized?: boolean }
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
  /** Live counters (undici's `pool.stats` plus the requests waiting for a connection here). */
  stats(): UpstreamPoolStats
  /** True while every connection carries a request: the next one has to wait (up to `queueTimeoutMs`). */
  readonly saturated: boolean
}

/**
 * Counters of an {@link UpstreamPool}.
 * @example const { busy, queued } = pool.stats()
 */
export interface UpstreamPoolStats {
  /** Open sockets to the origin. */
  connected: number
  /** Open sockets carrying a request (`connected - free`). */
  busy: number
  /** Requests handed to undici and not yet written to a socket. */
  pending: number
  /** Requests waiting for a connection (ours, bounded by `queueTimeoutMs`, plus undici's queue). */
  queued: number
  /** Every request in the pool: waiting, pending or running. */
  size: number
}

/** Connect timeout of {@link createUpstreamPool}. @example DEFAULT_CONNECT_TIMEOUT_MS // 2000 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000
/** Idle keep-alive time of {@link createUpstreamPool}. @example DEFAULT_KEEP_ALIVE_TIMEOUT_MS // 4000 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 4_000
/** Sockets per origin of {@link createUpstreamPool}. @example DEFAULT_CONNECTIONS // 128 */
export const DEFAULT_CONNECTIONS = 128
/** Wait for a free connection of {@link createUpstreamPool}. @example DEFAULT_QUEUE_TIMEOUT_MS // 1000 */
export const DEFAULT_QUEUE_TIMEOUT_MS = 1_000

/** A request waiting for a connection. */
interface Waiter {
  start: (release: () => void) => void
  fail: (error: PoolSaturatedError) => void
  timer: ReturnType<typeof setTimeout>
}

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
  #limit: number
  #queueTimeoutMs: number
  #active = 0
  // Set iteration order is insertion order: FIFO with O(1) removal of a waiter that gave up.
  #waiters = new Set<Waiter>()

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
    this.#queueTimeoutMs = positiveInteger(options.queueTimeoutMs, DEFAULT_QUEUE_TIMEOUT_MS, 'queueTimeoutMs')
    this.#limit = connections
    this.origin = url.origin
    this.#pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: keepAliveTimeoutMs,
      // An upstream hint may shorten the idle time, never stretch it past our setting.
      keepAliveMaxTimeout: keepAliveTimeoutMs,
      // tls.connect options for https: origins; an undefined rejectUnauthorized would mean "accept anything".
      connect: { timeout: connectTimeoutMs, ...(url.protocol === 'https:' && options.tls ? { ca: options.tls.ca, servername: options.tls.servername, rejectUnauthorized: options.tls.rejectUnauthorized !== false } : {}) },
    })
    const { onConnect, onDisconnect } = options
    if (onConnect) this.#pool.on('connect', () => onConnect())
    if (onDisconnect) this.#pool.on('disconnect', () => onDisconnect())
    // An EventEmitter without an 'error' listener throws; a pool failure must never crash the process.
    ;(this.#pool as unknown as { on(event: 'error', listener: () => void): void }).on('error', ignore)
  }

  stats(): UpstreamPoolStats {
    const s = this.#pool.stats
    const waiting = this.#waiters.size
    return {
      connected: s.connected,
      busy: s.connected - s.free,
      pending: s.pending,
      queued: s.queued + waiting,
      size: s.size + waiting,
    }
  }

  get saturated(): boolean {
    return this.#active >= this.#limit
  }

  /**
   * Admission control: calls `start(release)` now if fewer than `connections` exchanges run, else
   * when one calls its `release`; after `queueTimeoutMs` of waiting calls `fail` instead. undici's
   * own queue has no deadline, so without this a request waits behind stuck ones indefinitely.
   * Returns a function that withdraws a waiting request (no-op once started).
   */
  admit(start: (release: () => void) => void, fail: (error: PoolSaturatedError) => void): () => void {
    if (this.#active < this.#limit && this.#waiters.size === 0) {
      this.#active++
      start(this.#releaser())
      return ignore
    }
    const waiter: Waiter = {
      start,
      fail,
      timer: setTimeout(() => {
        this.#waiters.delete(waiter)
        fail(new PoolSaturatedError({ details: { queueTimeoutMs: this.#queueTimeoutMs } }))
      }, this.#queueTimeoutMs),
    }
    this.#waiters.add(waiter)
    return () => {
      if (this.#waiters.delete(waiter)) clearTimeout(waiter.timer)
    }
  }

  /** Promise form of {@link admit}: resolves with `release`, rejects with a 503. */
  acquire(): Promise<() => void> {
    return new Promise((resolve, reject) => void this.admit(resolve, reject))
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active--
      const next = this.#waiters.values().next()
      if (next.done) return
      const waiter = next.value
      this.#waiters.delete(waiter)
      clearTimeout(waiter.timer)
      this.#active++
      waiter.start(this.#releaser())
    }
  }

  close(): Promise<void> {
    const closed = this.#pool.close()
    this.#drainWaiters()
    return closed
  }

  destroy(): Promise<void> {
    const destroyed = this.#pool.destroy()
    this.#drainWaiters()
    return destroyed
  }

  /** On close: waiting requests go to undici now, which fails them like any request to a closed pool (502). */
  #drainWaiters(): void {
    for (const waiter of this.#waiters) {
      this.#waiters.delete(waiter)
      clearTimeout(waiter.timer)
      this.#active++
      waiter.start(this.#releaser())
    }
  }

  /** The undici pool behind it. */
  get undici(): Pool {
    return this.#pool
  }

  /** The implementation of a pool made by {@link createUpstreamPool}. */
  static unwrap(pool: UpstreamPool): UpstreamPoolImpl {
    if (!(pool instanceof UpstreamPoolImpl)) {
      throw new TypeError('options.pool must come from createUpstreamPool()')
    }
    return pool
  }
}

function ignore(): void {}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`)
  return value
}
