import { definePolicy, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'

/** Options of {@link requestId}. */
export interface RequestIdOptions {
  /** Header carrying the id, both ways. @default 'x-request-id' */
  header?: string
  /** Keep a well-formed id the client sent (else always generate). @default true */
  trustIncoming?: boolean
  /** Makes a new id. @default crypto.randomUUID */
  generate?: () => string
}

/** Exchange state key under which the id is stored for later layers and logs. @example ex.state.get(REQUEST_ID_STATE) */
export const REQUEST_ID_STATE = 'switchboard.requestId'

// A client-sent id is kept only when it is short and made of safe characters (it ends up in logs).
const SAFE_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/

/**
 * Keeps or generates a request id, sends it upstream and back to the client (error responses
 * included), and stores it in `ex.state` under {@link REQUEST_ID_STATE}.
 * @example const layer = requestId({ header: 'x-correlation-id' })
 */
export function requestId(options: RequestIdOptions = {}): Middleware {
  const header = (options.header ?? 'x-request-id').toLowerCase()
  const trust = options.trustIncoming ?? true
  const generate = options.generate ?? (() => crypto.randomUUID())
  return async function requestIdPolicy(ex, next) {
    const given = ex.request.headers[header]
    const value = typeof given === 'string' ? given : undefined
    const id = trust && value !== undefined && SAFE_ID.test(value) ? value : generate()
    ex.state.set(REQUEST_ID_STATE, id)
    ex.upstreamHeaders[header] = id
    ex.responseHeaders[header] = id
    await next()
  }
}

/**
 * The `request-id` policy type: `{ use: request-id, header: x-request-id, trustIncoming: true }`.
 * @example registry.policies.set(requestIdPolicy.name, requestIdPolicy)
 */
export const requestIdPolicy: PolicyDefinition<RequestIdOptions> = definePolicy({
  name: 'request-id',
  parse: (raw, at) => {
    const r = new OptionReader(raw, at)
    const options = { header: r.token('header', 'x-request-id'), trustIncoming: r.boolean('trustIncoming', true) }
    r.done()
    return options
  },
  create: (options) => requestId(options),
})
