import { BadGatewayError, concatBytes, definePolicy, type HeaderRecord, type Middleware, OptionReader, type PolicyDefinition, type UpstreamResponse } from '@switchboard/core'
import { REQUEST_ID_STATE } from '../request-id/index.ts'

/** Options of {@link jsonEnvelope}. */
export interface JsonEnvelopeOptions {
  /** Largest upstream body that is wrapped; a bigger one (declared or as read) passes through untouched, never buffered past this bound. @default 1048576 (1 MiB) */
  maxBytes?: number
  /**
   * Largest request body buffered so it can be replayed upstream. A declared length above it skips
   * the envelope (the request is proxied as usual); a chunked body growing past it is a 413.
   * @default 1048576 (1 MiB)
   */
  maxRequestBytes?: number
  /** Methods whose responses are wrapped (`HEAD` never is). @default ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] */
  methods?: string[]
}

/** The body a wrapped response carries. */
export interface JsonEnvelope {
  /** The upstream's JSON body, byte for byte. */
  data: unknown
  meta: { status: number; requestId: string | null }
}

/** Default of {@link JsonEnvelopeOptions.maxBytes}. @example DEFAULT_ENVELOPE_MAX_BYTES // 1048576 */
export const DEFAULT_ENVELOPE_MAX_BYTES = 1024 * 1024

const DEFAULT_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

/**
 * Wraps JSON upstream responses as `{ "data": …, "meta": { "status", "requestId" } }`. The layer
 * answers itself: it sends the request with `ex.fetchUpstream()` (after buffering a request body
 * up to `maxRequestBytes`), reads the response up to `maxBytes`, and responds with the envelope.
 * Left untouched (streamed through as received): non-JSON, compressed, ranged, 1xx/204/304
 * responses, responses without a `Content-Length` or above `maxBytes`, invalid JSON, `HEAD`,
 * SSE (`Accept: text/event-stream`) and upgrades. The gateway's own error answers are not wrapped.
 * Put it last in a route's `policies`: layers after it never run.
 * @example const layer = jsonEnvelope({ maxBytes: 256 * 1024 })
 */
export function jsonEnvelope(options: JsonEnvelopeOptions = {}): Middleware {
  const maxBytes = options.maxBytes ?? DEFAULT_ENVELOPE_MAX_BYTES
  const maxRequest = options.maxRequestBytes ?? DEFAULT_ENVELOPE_MAX_BYTES
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError('jsonEnvelope: maxBytes must be a whole number of bytes ≥ 0')
  if (!Number.isSafeInteger(maxRequest) || maxRequest < 0) throw new RangeError('jsonEnvelope: maxRequestBytes must be a whole number of bytes ≥ 0')
  const methods = new Set((options.methods ?? DEFAULT_METHODS).map((m) => m.toUpperCase()))
  methods.delete('HEAD')
  return async function jsonEnvelopePolicy(ex, next) {
    const h = ex.request.headers
    if (!methods.has(ex.request.method) || h.upgrade !== undefined || includes(h.accept, 'text/event-stream')) return next()
    const cl = h['content-length']
    if ((cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined) {
      // The upstream call replays the buffered body; one too large to buffer is proxied unwrapped.
      if (Number(cl) > maxRequest) return next()
      await ex.readBody(maxRequest)
    }
    const res = await ex.fetchUpstream()
    if (!wrappable(res.status, res.headers, maxBytes)) return ex.respond(res.status, clean(res.headers), guarded([], res))
    const iterator = res.body[Symbol.asyncIterator]()
    const parts: Uint8Array[] = []
    let total = 0
    try {
      for (;;) {
        const r = await iterator.next()
        if (r.done) break
        parts.push(r.value)
        total += r.value.byteLength
        // A length that lied: stop buffering, send what came and the rest untouched.
        if (total > maxBytes) return ex.respond(res.status, clean(res.headers), guarded(parts, res, iterator))
      }
    } catch (error) {
      res.cancel()
      throw new BadGatewayError({ cause: error })
    }
    const bytes = concatBytes(parts, total)
    const text = validJson(bytes)
    if (text === undefined) return ex.respond(res.status, clean(res.headers), bytes)
    const id = ex.state.get(REQUEST_ID_STATE)
    const meta = JSON.stringify({ status: res.status, requestId: typeof id === 'string' ? id : null })
    const out = clean(res.headers)
    // The body changed: validators and digests of the original no longer describe it.
    for (const name of ['content-length', 'etag', 'content-md5', 'digest', 'repr-digest', 'content-digest', 'accept-ranges']) delete out[name]
    out['content-type'] = 'application/json; charset=utf-8'
    return ex.respond(res.status, out, `{"data":${text},"meta":${meta}}`)
  }
}

/**
 * The `json-envelope` policy type: `{ use: json-envelope, maxBytes: 1mb, maxRequestBytes: 1mb, methods: [GET, POST] }` (route phase, last).
 * @example registry.policies.set(jsonEnvelopePolicy.name, jsonEnvelopePolicy)
 */
export const jsonEnvelopePolicy: PolicyDefinition<JsonEnvelopeOptions> = definePolicy({
  name: 'json-envelope',
  phases: ['route'],
  parse: (raw, at) => {
    const r = new OptionReader(raw, at)
    const options: JsonEnvelopeOptions = {
      maxBytes: r.size('maxBytes', DEFAULT_ENVELOPE_MAX_BYTES, 0),
      maxRequestBytes: r.size('maxRequestBytes', DEFAULT_ENVELOPE_MAX_BYTES, 0),
      methods: r.strings('methods', DEFAULT_METHODS).map((m, i) => {
        if (!/^[A-Za-z]+$/.test(m)) r.v.fail(`${r.path('methods')}[${i}]`, 'an HTTP method name', m)
        return m.toUpperCase()
      }),
    }
    r.done()
    return options
  },
  create: (options) => jsonEnvelope(options),
})

// ---- internals ----------------------------------------------------------------------------

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i

function wrappable(status: number, headers: HeaderRecord, maxBytes: number): boolean {
  if (status < 200 || status === 204 || status === 206 || status === 304) return false
  const type = headers['content-type']
  if (typeof type !== 'string' || !JSON_TYPE.test(type)) return false
  const encoding = headers['content-encoding']
  if (encoding !== undefined && encoding !== 'identity') return false
  // Only a declared length is bounded up front; a stream without one passes through as it comes.
  const length = headers['content-length']
  if (typeof length !== 'string' || !/^\d+$/.test(length)) return false
  return Number(length) <= maxBytes
}

function includes(value: string | string[] | undefined, needle: string): boolean {
  if (value === undefined) return false
  return (Array.isArray(value) ? value.join(',') : value).toLowerCase().includes(needle)
}

function clean(headers: HeaderRecord): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>
  for (const name of Object.keys(headers)) {
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  return out
}

/** The UTF-8 text of `bytes` when it is one JSON value, else `undefined`. */
function validJson(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).trim()
    if (text === '') return undefined
    JSON.parse(text)
    return text
  } catch {
    return undefined
  }
}

/** Replays `head`, then the rest of the upstream body; a consumer that stops early releases the upstream. */
async function* guarded(head: Uint8Array[], res: UpstreamResponse, iterator?: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  let finished = false
  try {
    yield* head
    const rest = iterator ?? res.body[Symbol.asyncIterator]()
    for (;;) {
      const r = await rest.next()
      if (r.done) break
      yield r.value
    }
    finished = true
  } finally {
    if (!finished) res.cancel()
  }
}

