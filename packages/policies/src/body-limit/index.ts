import { definePolicy, type Middleware, OptionReader, PayloadTooLargeError, type PolicyDefinition } from '@switchboard/core'

/** Options of {@link bodyLimit}. */
export interface BodyLimitOptions {
  /** Largest request body in bytes (config accepts sizes such as `1mb`). */
  max: number
  /**
   * Read a body without a declared length (chunked) here, up to `max`, so that one growing past it
   * is answered 413 before anything is forwarded. Costs up to `max` bytes of memory per upload.
   * When false, such a body is cut by the transport once it reads {@link BODY_LIMIT_STATE}.
   * @default false
   */
  bufferChunked?: boolean
}

/**
 * Exchange state key holding the per-request body limit in bytes (the smallest one set by any
 * layer), for the proxying step to enforce on streamed uploads. @example ex.state.get(BODY_LIMIT_STATE) // 1048576
 */
export const BODY_LIMIT_STATE = 'switchboard.maxBodyBytes'

/**
 * Limits the request body of the routes it is attached to: a declared `Content-Length` over `max`
 * is answered 413 `ERR_PAYLOAD_TOO_LARGE` before anything is forwarded, and the limit is stored under
 * {@link BODY_LIMIT_STATE} for the transport. Throws a `RangeError` for a bad `max`.
 * @example const layer = bodyLimit({ max: 1024 * 1024 })
 */
export function bodyLimit(options: BodyLimitOptions): Middleware {
  const max = options.max
  if (!Number.isSafeInteger(max) || max < 0) throw new RangeError('bodyLimit: max must be a whole number of bytes ≥ 0')
  const buffer = options.bufferChunked ?? false
  return async function bodyLimitPolicy(ex, next) {
    const cl = ex.request.headers['content-length']
    const declared = typeof cl === 'string' ? Number(cl) : Number.NaN
    if (declared > max) throw new PayloadTooLargeError({ details: { limit: max } })
    const previous = ex.state.get(BODY_LIMIT_STATE)
    ex.state.set(BODY_LIMIT_STATE, typeof previous === 'number' ? Math.min(previous, max) : max)
    if (buffer && cl === undefined && ex.request.headers['transfer-encoding'] !== undefined) await ex.readBody(max)
    await next()
  }
}

/**
 * The `body-limit` policy type: `{ use: body-limit, max: 1mb, bufferChunked: false }`.
 * @example registry.policies.set(bodyLimitPolicy.name, bodyLimitPolicy)
 */
export const bodyLimitPolicy: PolicyDefinition<BodyLimitOptions> = definePolicy({
  name: 'body-limit',
  parse: (raw, at) => {
    const r = new OptionReader(raw, at)
    if (!r.has('max')) r.v.fail(r.path('max'), 'a size such as 16kb, 10mb or a number of bytes', undefined)
    const options: BodyLimitOptions = { max: r.size('max', 0, 0), bufferChunked: r.boolean('bufferChunked', false) }
    r.done()
    return options
  },
  create: (options) => bodyLimit(options),
})
