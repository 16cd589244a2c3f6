import { ConfigValidator, definePolicy, ForbiddenError, type HeaderRecord, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'
import { compileOrigins, type OriginFail } from './origins.ts'

/** Options of {@link cors}. */
export interface CorsOptions {
  /**
   * Origins allowed to read responses: exact origins (`https://app.example.com`,
   * `http://127.0.0.1:5173`), patterns (`https://*.example.com` for any subdomain, never the bare
   * domain; `http://localhost:*` for any port), the literal `null`, or `['*']` for every origin.
   * `*` cannot be combined with `credentials: true` (the Fetch standard forbids it; list the
   * origins instead).
   * @default [] (no origin allowed: only `Vary: Origin` is added)
   */
  origins?: readonly string[]
  /**
   * Methods a preflight may ask for (`Access-Control-Allow-Methods`). GET, HEAD and POST never need
   * a preflight. `['*']` means any method, for requests without credentials.
   * @default ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE']
   */
  methods?: readonly string[]
  /**
   * Request headers a preflight may ask for (`Access-Control-Allow-Headers`). Without a list the
   * policy echoes `Access-Control-Request-Headers` (every header allowed). `['*']` means any header
   * but `Authorization`, for requests without credentials.
   * @default echo Access-Control-Request-Headers
   */
  allowedHeaders?: readonly string[]
  /** Response headers scripts may read besides the safelisted ones (`Access-Control-Expose-Headers`). @default [] */
  exposedHeaders?: readonly string[]
  /** Let browsers send cookies and HTTP auth (`credentials: 'include'`) and read the answer. @default false */
  credentials?: boolean
  /**
   * How long a browser may cache a preflight answer (`Access-Control-Max-Age`, whole seconds).
   * Browsers cap it (Chromium 2 h, Firefox 24 h); `0` disables caching.
   * @default undefined (no header: browsers cache for 5 s)
   */
  maxAgeMs?: number
}

/** Methods allowed by default. @example DEFAULT_CORS_METHODS.includes('PUT') // true */
export const DEFAULT_CORS_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE']

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Fetch §2.2.1: a CORS-safelisted method never needs to be listed in Access-Control-Allow-Methods.
const SAFELISTED_METHODS = new Set(['GET', 'HEAD', 'POST'])

/**
 * Answers CORS preflights at the gateway (they never reach the upstream) and adds the CORS response
 * headers of the Fetch standard (§3.2) to every other answer for an allowed origin, the gateway's
 * own errors (401, 404, 502 …) included, so browsers can read them. The gateway is the only source
 * of CORS headers: `Access-Control-*` fields from the upstream are removed. `Vary: Origin` is added
 * whenever the answer depends on the origin. A disallowed origin gets no CORS headers (the browser
 * then refuses to expose the response) and its preflight a 403; its simple requests still reach the
 * upstream, as without CORS: CORS guards reading, not sending.
 * @example
 * const layer = cors({ origins: ['http://127.0.0.1:5173', 'https://*.example.com'], credentials: true, maxAgeMs: 600_000 })
 */
export function cors(options: CorsOptions = {}): Middleware {
  const config = compile(options, (key, expected, got) => {
    throw new RangeError(`cors.${key} must be ${expected}, got ${JSON.stringify(got)}`)
  })
  const { origins, credentials, maxAge, allowMethods, methods, anyMethod, allowHeaders, headerList, anyHeader, exposeHeaders } = config
  const varyOrigin = !origins.any

  /** Headers of an answer to an allowed origin (actual responses and preflights). */
  const allowOrigin = (origin: string, out: Record<string, string | string[] | undefined>): void => {
    out['access-control-allow-origin'] = origins.any ? '*' : origin
    if (credentials) out['access-control-allow-credentials'] = 'true'
  }

  return async function corsPolicy(ex, next) {
    const headers = ex.request.headers
    const raw = headers.origin
    const origin = typeof raw === 'string' ? raw : undefined
    const allowed = origin !== undefined && origins.matches(origin)
    const requestMethod = headers['access-control-request-method']

    // Fetch §3.2.2: a CORS-preflight request is an OPTIONS request carrying both Origin and
    // Access-Control-Request-Method. Plain OPTIONS requests go to the upstream like any other.
    if (ex.request.method === 'OPTIONS' && origin !== undefined && typeof requestMethod === 'string') {
      const vary = varyOrigin ? ['Origin'] : []
      const refuse = (reason: string): ForbiddenError => {
        // No CORS headers on a refusal: the browser then fails the preflight and tells the page.
        ex.onResponseHead((_status, out) => {
          stripCors(out)
          for (const name of vary) addVary(out, name)
        })
        return new ForbiddenError({ message: `CORS preflight refused: ${reason}` })
      }
      if (!allowed) throw refuse('origin not allowed')
      if (!anyMethod && !SAFELISTED_METHODS.has(requestMethod) && !methods.has(requestMethod)) throw refuse('method not allowed')
      const asked = headers['access-control-request-headers']
      const askedList = typeof asked === 'string' ? splitList(asked) : []
      if (askedList.some((h) => !TOKEN.test(h))) throw refuse('malformed Access-Control-Request-Headers')
      if (headerList !== undefined) {
        for (const h of askedList) {
          // Fetch §4.8: a `*` in Access-Control-Allow-Headers never covers Authorization.
          const ok = headerList.has(h) || (anyHeader && h !== 'authorization')
          if (!ok) throw refuse(`header ${h} not allowed`)
        }
      }
      const out: Record<string, string> = {}
      allowOrigin(origin, out)
      out['access-control-allow-methods'] = allowMethods
      if (headerList === undefined) {
        // Echoing the request's list makes the answer depend on it.
        if (askedList.length > 0) out['access-control-allow-headers'] = askedList.join(', ')
        vary.push('Access-Control-Request-Headers')
      } else if (allowHeaders !== '') out['access-control-allow-headers'] = allowHeaders
      if (maxAge !== undefined) out['access-control-max-age'] = maxAge
      if (vary.length > 0) out.vary = vary.join(', ')
      await ex.respond(204, out)
      return
    }

    ex.onResponseHead((_status, out) => {
      // The gateway decides CORS alone: an upstream's own Access-Control-* fields would
      // contradict (or widen) the configured policy.
      stripCors(out)
      if (varyOrigin) addVary(out, 'Origin')
      // With `*` the answer is the same for every request, Origin or not (and cache-safe).
      if (!allowed && !origins.any) return
      allowOrigin(origin ?? '*', out)
      if (exposeHeaders !== '') out['access-control-expose-headers'] = exposeHeaders
    })
    await next()
  }
}

/** Parses `{ origins, methods, allowedHeaders, exposedHeaders, credentials, maxAge }` (key paths in errors). */
export function parseCorsOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): CorsOptions {
  const r = new OptionReader(raw, at, validator)
  const origins = r.strings('origins')
  const methods = r.get('methods') === undefined ? undefined : r.strings('methods').map((m) => m.toUpperCase())
  const allowedHeaders = r.get('allowedHeaders') === undefined ? undefined : r.strings('allowedHeaders')
  const exposedHeaders = r.strings('exposedHeaders')
  const credentials = r.boolean('credentials', false)
  const maxAgeMs = r.get('maxAge') === undefined ? undefined : r.duration('maxAge', 0)
  r.done()
  const options: CorsOptions = { origins, methods, allowedHeaders, exposedHeaders, credentials, maxAgeMs }
  if (origins.length === 0) validator.fail(r.path('origins'), 'a list of allowed origins (or *)', raw.origins)
  compile(options, (key, expected, got) => validator.fail(r.path(key), expected, got))
  return options
}

/**
 * The `cors` policy type:
 * `{ use: cors, origins: [http://127.0.0.1:5173, 'https://*.example.com'], credentials: true, maxAge: 10m }`.
 * Put it in `server.policies` so preflights and every error are covered whatever the route; as a
 * route policy the route must also match `OPTIONS`.
 * @example registry.registerPolicy(corsPolicy)
 */
export const corsPolicy: PolicyDefinition<CorsOptions> = definePolicy({
  name: 'cors',
  parse: (raw, at) => parseCorsOptions(raw, at),
  create: (options) => cors(options),
})

type Fail = (key: string, expected: string, got: unknown) => never

function compile(options: CorsOptions, fail: Fail) {
  const credentials = options.credentials ?? false
  const listFail =
    (key: string): OriginFail =>
    (i, expected, got) =>
      fail(`${key}[${i}]`, expected, got)
  const origins = compileOrigins(options.origins ?? [], listFail('origins'))
  // Fetch §3.2.5: with credentials, `*` is a literal in every Access-Control-* field and
  // `Access-Control-Allow-Origin: *` fails the CORS check, so refuse it instead of echoing any origin.
  if (credentials && origins.any) fail('origins', 'a list of origins or patterns when credentials is true (the Fetch standard forbids * with credentials)', '*')
  const tokens = (key: string, list: readonly string[]): string[] =>
    list.map((item, i) => {
      if (typeof item !== 'string' || !TOKEN.test(item)) fail(`${key}[${i}]`, key === 'methods' ? 'an HTTP method name' : 'a valid header name', item)
      if (item === '*' && credentials) fail(`${key}[${i}]`, 'a name (* is only a wildcard without credentials)', item)
      return item
    })
  const methodList = tokens('methods', options.methods ?? DEFAULT_CORS_METHODS)
  const headerList = options.allowedHeaders === undefined ? undefined : tokens('allowedHeaders', options.allowedHeaders).map((h) => h.toLowerCase())
  const exposed = tokens('exposedHeaders', options.exposedHeaders ?? []).map((h) => h.toLowerCase())
  const maxAgeMs = options.maxAgeMs
  if (maxAgeMs !== undefined && (!Number.isFinite(maxAgeMs) || maxAgeMs < 0)) fail('maxAgeMs', 'a duration ≥ 0', maxAgeMs)
  return {
    origins,
    credentials,
    maxAge: maxAgeMs === undefined ? undefined : String(Math.floor(maxAgeMs / 1000)),
    methods: new Set(methodList),
    anyMethod: methodList.includes('*'),
    allowMethods: methodList.join(', '),
    headerList: headerList === undefined ? undefined : new Set(headerList),
    anyHeader: headerList?.includes('*') ?? false,
    allowHeaders: headerList?.join(', ') ?? '',
    exposeHeaders: exposed.join(', '),
  }
}

/** Removes every `Access-Control-*` field (the upstream's, or an earlier layer's). */
function stripCors(out: HeaderRecord): void {
  for (const name of Object.keys(out)) if (name.startsWith('access-control-')) delete out[name]
}

/** Splits a comma-separated header list, lowercased, empty items dropped. */
function splitList(value: string): string[] {
  const out: string[] = []
  for (const part of value.split(',')) {
    const item = part.trim().toLowerCase()
    if (item !== '') out.push(item)
  }
  return out
}

/** Adds `name` to the response's Vary unless already covered (`*` covers everything). */
function addVary(out: HeaderRecord, name: string): void {
  const current = out.vary
  const text = Array.isArray(current) ? current.join(', ') : (current ?? '')
  if (text.trim() === '') {
    out.vary = name
    return
  }
  const items = splitList(text)
  if (items.includes('*') || items.includes(name.toLowerCase())) return
  out.vary = `${text}, ${name}`
}
