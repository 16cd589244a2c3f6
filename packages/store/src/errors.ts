import { GatewayError, type GatewayErrorOptions } from '@switchboard/core'

/**
 * 503 `ERR_STORE_UNAVAILABLE`: a remote store (Redis) did not answer in time or is disconnected,
 * and the driver runs with `failMode: 'closed'`. The original failure stays in `cause`.
 * @example
 * try { await store.get('k') } catch (err) { if (err instanceof StoreUnavailableError) serveStale() }
 */
export class StoreUnavailableError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_STORE_UNAVAILABLE', 'Store unavailable', options)
  }
}
