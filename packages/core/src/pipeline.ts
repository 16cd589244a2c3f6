import { GatewayError, isGatewayError } from './errors.ts'
import type { Exchange, Middleware } from './exchange.ts'

/** Turns an error that left a layer into a response (or, once the response started, cuts it). */
export type ErrorHandler = (error: unknown, ex: Exchange) => Promise<void> | void

/** The step after the last layer: proxying, the tunnel, or a router that runs the next phase. */
export type Terminal = (ex: Exchange) => Promise<void>

/** Options of {@link compose}. */
export interface ComposeOptions {
  /** Runs when every layer called `next()` and none answered. @default none: the chain just ends */
  terminal?: Terminal
  /**
   * Turns an error into a response inside the chain, so the layers outside the one that failed still
   * run their code after `next()` and their response-head edits apply to the error response.
   * @default {@link respondWithError}
   */
  onError?: ErrorHandler
}

/**
 * Headers of every JSON answer the gateway writes itself (errors, health, admin): never cached.
 * @example ex.respond(503, { ...JSON_RESPONSE_HEADERS }, err.toBody())
 */
export const JSON_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
const JSON_HEADERS = JSON_RESPONSE_HEADERS

/**
 * Composes layers into one handler. Layers run in order on the way in and in reverse on the way
 * out; a layer that does not call `next()` answers on its own. An error thrown anywhere (a layer,
 * the terminal) becomes a response at the point it was thrown: `next()` in the outer layer resolves,
 * `ex.error` holds the error, and `ex.response` its status. Calling `next()` twice is an error.
 * @example
 * const run = compose([requestId(), cors()], { terminal: (ex) => ex.respond(200, {}, 'ok') })
 * await run(exchange)
 */
export function compose(layers: readonly Middleware[], options: ComposeOptions = {}): (ex: Exchange) => Promise<void> {
  const list = [...layers]
  const terminal = options.terminal
  const onError = options.onError ?? respondWithError
  const n = list.length
  async function dispatch(ex: Exchange, i: number): Promise<void> {
    try {
      if (i === n) {
        if (terminal !== undefined && !ex.responded) await terminal(ex)
        return
      }
      const layer = list[i]
      let called = false
      await layer(ex, () => {
        if (called) return Promise.reject(new Error(`next() called twice in ${layer.name || `layer ${i}`}`))
        called = true
        return dispatch(ex, i + 1)
      })
    } catch (error) {
      await onError(error, ex)
    }
  }
  if (n === 0 && terminal !== undefined) {
    // No layers (the common default): call the terminal directly, one async frame less per request.
    return (ex) => {
      if (ex.responded) return Promise.resolve()
      let pending: Promise<void>
      try {
        pending = terminal(ex)
      } catch (error) {
        return Promise.resolve(onError(error, ex))
      }
      return pending.then(undefined, (error: unknown) => onError(error, ex))
    }
  }
  return (ex) => dispatch(ex, 0)
}

/**
 * The default {@link ErrorHandler}: a {@link GatewayError} becomes its status and short JSON body,
 * anything else a 500 `ERR_INTERNAL` (the original stays in `cause`, never sent). Records the error
 * on `ex.error`. Once the response head was written nothing can be answered: the error is rethrown
 * so the transport cuts the response (a truncated body must never look complete).
 * @example compose(layers, { onError: respondWithError })
 */
export async function respondWithError(error: unknown, ex: Exchange): Promise<void> {
  const err = toGatewayError(error)
  ex.error = err
  if (ex.responded) throw err
  await ex.respond(err.status, { ...JSON_HEADERS }, err.toBody())
}

/**
 * `error` as a {@link GatewayError}: itself when it is one, else a 500 `ERR_INTERNAL` keeping it as `cause`.
 * @example const e = toGatewayError(new Error('boom')) // e.status === 500
 */
export function toGatewayError(error: unknown): GatewayError {
  return isGatewayError(error) ? error : new GatewayError(500, 'ERR_INTERNAL', 'Internal error', { cause: error })
}
