import { GatewayError, type GatewayErrorOptions } from '@switchboard/core'

/**
 * 503 `ERR_STORE_UNAVAILABLE`: the backend did not answer in time, is disconnected, locked, or its
 * file failed (Redis down, SQLite busy, I/O error, file deleted), and the driver runs with
 * `failMode: 'closed'`. The original failure stays in `cause`.
 * @example
 * try { await store.get('k') } catch (err) { if (err instanceof StoreUnavailableError) return undefined } // degrade: no cache
 */
export class StoreUnavailableError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_STORE_UNAVAILABLE', 'Store unavailable', options)
  }
}

/** Why a store could not be opened; the `reason` of a {@link StoreOpenError}. */
export type StoreOpenReason =
  | 'not-a-database'
  | 'corrupt'
  | 'read-only'
  | 'missing-directory'
  | 'cannot-open'
  | 'busy'
  | 'io'
  | 'unsupported-runtime'
  | 'other'

/**
 * `ERR_STORE_OPEN`: a store could not be opened at startup (a file that is not a database, a
 * read-only file or directory, a missing directory, no SQLite binding). The message is one line
 * naming the driver, the file and the cause, e.g. `sqlite store ./x.db: file is not a database`.
 * @example
 * try { await createStore({ driver: 'sqlite', path }) } catch (err) { if (err instanceof StoreOpenError) console.error(err.message) }
 */
export class StoreOpenError extends Error {
  /** Always `'ERR_STORE_OPEN'`. */
  readonly code: 'ERR_STORE_OPEN' = 'ERR_STORE_OPEN'
  /** What went wrong, for callers that switch on it. */
  readonly reason: StoreOpenReason
  /** The driver name, e.g. `'sqlite'`. */
  readonly driver: string
  /** The file (or other target) that failed to open. */
  readonly path: string

  constructor(driver: string, path: string, reason: StoreOpenReason, detail: string, options: { cause?: unknown } = {}) {
    super(`${driver} store ${path}: ${detail.replace(/\s*\n\s*/g, ' ')}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'StoreOpenError'
    this.driver = driver
    this.path = path
    this.reason = reason
  }
}
