import { ConfigValidator, definePolicy, type HeaderEditConfig, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'

/** Options of {@link headers}. */
export interface HeadersOptions {
  /** Edits of the request sent upstream. @default none */
  request?: Partial<HeaderEditConfig>
  /** Edits of the response sent to the client, error responses included. @default none */
  response?: Partial<HeaderEditConfig>
}

/**
 * Sets and removes request headers (towards the upstream) and response headers (towards the
 * client). Response edits apply to every answer that passes this layer: upstream responses and the
 * gateway's own errors (401, 404, 502 …) alike. Names are case-insensitive.
 * @example
 * const layer = headers({ request: { set: { 'x-from': 'gw' }, remove: ['cookie'] }, response: { remove: ['server'] } })
 */
export function headers(options: HeadersOptions = {}): Middleware {
  const upstream = Object.create(null) as Record<string, string | undefined>
  for (const name of options.request?.remove ?? []) upstream[name.toLowerCase()] = undefined
  for (const [name, value] of Object.entries(options.request?.set ?? {})) upstream[name.toLowerCase()] = value
  const hasUpstream = Object.keys(upstream).length > 0
  const set = Object.entries(options.response?.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const)
  const remove = (options.response?.remove ?? []).map((n) => n.toLowerCase())
  const editResponse = set.length > 0 || remove.length > 0
  const onHead = (_status: number, out: Record<string, string | string[] | undefined>): void => {
    for (const name of remove) delete out[name]
    for (const [name, value] of set) out[name] = value
  }
  return async function headersPolicy(ex, next) {
    if (hasUpstream) Object.assign(ex.upstreamHeaders, upstream)
    if (editResponse) ex.onResponseHead(onHead)
    await next()
  }
}

/** Parses `{ request: { set, remove }, response: { set, remove } }` (key paths in errors). */
export function parseHeadersOptions(raw: Record<string, unknown>, at: string, validator = new ConfigValidator()): HeadersOptions {
  const r = new OptionReader(raw, at, validator)
  const request = r.get('request')
  const response = r.get('response')
  r.done()
  return {
    request: request === undefined ? undefined : validator.headerEdit(request, r.path('request')),
    response: response === undefined ? undefined : validator.headerEdit(response, r.path('response')),
  }
}

/**
 * The `headers` policy type: `{ use: headers, request: { set: {NAME: VALUE}, remove: [NAME] }, response: { set, remove } }`.
 * @example registry.policies.set(headersPolicy.name, headersPolicy)
 */
export const headersPolicy: PolicyDefinition<HeadersOptions> = definePolicy({
  name: 'headers',
  parse: (raw, at) => parseHeadersOptions(raw, at),
  create: (options) => headers(options),
})
