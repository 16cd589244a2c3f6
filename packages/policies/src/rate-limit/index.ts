import {
  CLIENT_STATE,
  ConfigError,
  ConfigValidator,
  decodeText,
  definePolicy,
  encodeText,
  type HeaderRecord,
  type Middleware,
  OptionReader,
  type PolicyContext,
  type PolicyDefinition,
  RateLimitedError,
  ServiceUnavailableError,
  type Store,
  SUBJECT_STATE,
} from '@switchboard/core'
import { compactKey, keyReader, type MissingKeyBehaviour, parseKeyOption, readRequestKey, type RequestKeyPart } from '../request-key.ts'
import {
  decideRateLimit,
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitWindow,
} from './algorithms.ts'

export {
  decideRateLimit,
  stepWindow,
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitWindow,
  type RateLimitWindowResult,
  type WindowStep,
} from './algorithms.ts'

export type { MissingKeyBehaviour } from '../request-key.ts'

/** `ex.state` key an authentication policy sets to the caller's subject (user id), read by `key: subject`. */
export const RATE_LIMIT_SUBJECT_STATE: typeof SUBJECT_STATE = SUBJECT_STATE
/** `ex.state` key an authentication policy sets to the calling client (API key or OAuth client id), read by `key: client`. */
export const RATE_LIMIT_CLIENT_STATE: typeof CLIENT_STATE = CLIENT_STATE
/** Most entries a `sliding-window-log` window may keep per key (its state grows with the limit). */
export const MAX_LOG_LIMIT = 10_000
/** How often a failed-open store is logged at most, in ms. */
export const FAIL_OPEN_LOG_INTERVAL_MS = 30_000

/** What a request is counted by: `ip`, `subject`, `client`, `route` or `header:NAME`. */
export type RateLimitKey = RequestKeyPart

/** Options of {@link rateLimit}. */
export interface RateLimitOptions {
  /** How requests are counted. @default 'sliding-window-counter' */
  algorithm?: RateLimitAlgorithm
  /** One limit: `'50/min'`, `'100/s'`, `'5000/h'`, `'1000/10min'`, or a window object. Give `limit` or `limits`. */
  limit?: string | RateLimitWindow
  /** Several limits that must all admit a request (e.g. `['10/s', '1000/h']`); all or nothing. @default none */
  limits?: readonly (string | RateLimitWindow)[]
  /** Token bucket only: capacity of every window that sets no `burst` of its own. @default the window's limit */
  burst?: number
  /** What a request is counted by; a list combines parts (`['ip', 'route']`). @default 'ip' */
  key?: RateLimitKey | readonly RateLimitKey[]
  /**
   * A request with no value for a key part (no `x-client-id` header, no subject): `'shared'` counts
   * all of them under one shared key (per the other parts), `'allow'` lets them through uncounted,
   * `'deny'` answers 403. @default 'shared'
   */
  missingKey?: MissingKeyBehaviour
  /** Sends `RateLimit-Policy` and `RateLimit` (IETF draft) on every response; `Retry-After` on 429s is always sent. @default true */
  headers?: boolean
  /** Where counters live. @default the gateway's store (`ctx.store`) */
  store?: Store
  /** Policy identifier in the headers and in store keys. @default the policy instance name */
  name?: string
  /** Decision clock in epoch ms; inject one in tests. @default the store's clock (Redis: server TIME) */
  now?: () => number
  /** Log sink for store outages. @default the gateway's log (`ctx.log`), else none */
  log?: PolicyContext['log']
}

/**
 * Counts requests per key (client IP, subject, client, route, header, or a combination) and answers
 * 429 `ERR_RATE_LIMITED` with `Retry-After` once a limit is used up. Every response of a limited
 * route carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers). Stores
 * with the `rateLimit` capability (memory, Redis) decide in one atomic step; others are driven with
 * `get` + `compareAndSet`. A store that is down follows its `failMode`: open allows (logged at most
 * every 30 s), closed answers 503 `ERR_SERVICE_UNAVAILABLE`.
 * @example
 * const layer = rateLimit({ algorithm: 'fixed-window', limit: '50/min', key: 'ip', store: memoryStoreInstance })
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  const store = options.store
  if (store === undefined) throw new TypeError('rate-limit: a store is required (the gateway passes its own)')
  const algorithm = options.algorithm ?? 'sliding-window-counter'
  if (!RATE_LIMIT_ALGORITHMS.includes(algorithm)) throw new RangeError(`rate-limit: algorithm must be one of ${RATE_LIMIT_ALGORITHMS.join(', ')}`)
  const windows = normaliseWindows(options, algorithm)
  const keyParts = (Array.isArray(options.key) ? options.key : [options.key ?? 'ip']) as readonly RateLimitKey[]
  if (keyParts.length === 0) throw new RangeError('rate-limit: key must name at least one part')
  const readers = keyParts.map((part) => keyReader(part, 'rate-limit'))
  const missing = options.missingKey ?? 'shared'
  if (!['allow', 'deny', 'shared'].includes(missing)) throw new RangeError("rate-limit: missingKey must be 'allow', 'deny' or 'shared'")
  const name = options.name ?? 'rate-limit'
  const sendHeaders = options.headers ?? true
  const now = options.now
  const log = options.log
  const ids = windows.map((w) => sfString(windows.length === 1 ? name : `${name}-${w.windowMs / 1000}s`))
  const policyField = windows.map((w, i) => `${ids[i]};q=${w.limit};w=${w.windowMs / 1000}`).join(', ')
  const prefix = `rate-limit:${name}:${algorithm}:`
  let lastWarn = Number.NEGATIVE_INFINITY

  const unavailable = (err: unknown): never => {
    log?.('error', 'rate-limit: store unavailable, refusing requests', { policy: name, store: store.name, error: String(err) })
    throw new ServiceUnavailableError({ cause: err })
  }
  // Not an async function: one promise per decision on the hot path, not three.
  const decide = (key: string): Promise<RateLimitResult> => {
    const request: RateLimitRequest = { algorithm, windows, nowMs: now?.() }
    let pending: Promise<RateLimitResult>
    try {
      pending = store.rateLimit ? store.rateLimit(key, request) : rateLimitWithCompareAndSet(store, key, request)
    } catch (err) {
      return Promise.reject(err).catch(unavailable)
    }
    return pending.then(undefined, unavailable)
  }

  return async function rateLimit(ex, next) {
    const joined = readRequestKey(ex, readers, missing, 'Request has no rate limit key')
    if (joined === undefined) return next()
    // Short keys (the common case) skip the digest and its extra await.
    const result = await decide(prefix + (joined.length <= 200 ? joined : await compactKey(joined)))
    if (result.failedOpen) {
      const t = Date.now()
      if (t - lastWarn >= FAIL_OPEN_LOG_INTERVAL_MS) {
        lastWarn = t
        log?.('warn', 'rate-limit: store unavailable, allowing requests (failMode open)', { policy: name, store: store.name })
      }
      return next()
    }
    const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000))
    if (sendHeaders || !result.allowed) {
      const stateField = result.windows.map((w, i) => `${ids[i]};r=${w.remaining};t=${Math.ceil(w.resetMs / 1000)}`).join(', ')
      ex.onResponseHead((_status, out) => {
        if (sendHeaders) {
          appendField(out, 'ratelimit-policy', policyField)
          appendField(out, 'ratelimit', stateField)
        }
        if (!result.allowed) out['retry-after'] = String(retryAfter)
      })
    }
    if (!result.allowed) throw new RateLimitedError({ details: { retryAfter } })
    await next()
  }
}

/**
 * Parses `{ algorithm, limit | limits, burst, key, missingKey, headers }` (key paths in errors).
 * @example const options = parseRateLimitOptions({ algorithm: 'fixed-window', limit: '50/min' }, 'policies.per-ip')
 */
export function parseRateLimitOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): RateLimitOptions {
  const r = new OptionReader(raw, at, validator)
  const algorithm = r.oneOf('algorithm', RATE_LIMIT_ALGORITHMS, 'sliding-window-counter')
  const burstRaw = r.get('burst')
  const burst = burstRaw === undefined ? undefined : validator.integer(burstRaw, r.path('burst'), 1)
  if (burst !== undefined && algorithm !== 'token-bucket') validator.fail(r.path('burst'), 'burst only with algorithm: token-bucket', burst)
  const single = r.get('limit')
  const many = r.get('limits')
  if ((single === undefined) === (many === undefined)) validator.fail(at, 'exactly one of limit or limits', undefined)
  const windows: RateLimitWindow[] = []
  if (single !== undefined) windows.push(parseWindowConfig(single, r.path('limit'), algorithm, validator))
  else {
    const list = validator.list(many, r.path('limits'))
    if (list.length === 0) validator.fail(r.path('limits'), 'at least one limit', list)
    list.forEach((item, i) => windows.push(parseWindowConfig(item, `${r.path('limits')}[${i}]`, algorithm, validator)))
  }
  const seen = new Set<number>()
  windows.forEach((w, i) => {
    if (seen.has(w.windowMs)) validator.fail(`${r.path('limits')}[${i}]`, 'one limit per window length', `${w.limit}/${w.windowMs / 1000}s`)
    seen.add(w.windowMs)
  })
  const key = parseKeyOption(r, validator, 'ip')
  const missingKey = r.oneOf('missingKey', ['shared', 'allow', 'deny'] as const, 'shared')
  const headers = r.boolean('headers', true)
  r.done()
  return { algorithm, limits: windows.map((w) => (burst !== undefined && w.burst === undefined ? { ...w, burst } : w)), key, missingKey, headers }
}

/**
 * Parses `'50/min'`, `'100/s'`, `'5000/h'`, `'2/day'` or `'1000/10min'` into a window; undefined when malformed.
 * @example parseRate('50/min') // { limit: 50, windowMs: 60_000 }
 */
export function parseRate(text: string): { limit: number; windowMs: number } | undefined {
  const m = /^\s*(\d+)\s*\/\s*(\d+)?\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hour|hours|d|day|days)\s*$/i.exec(text)
  if (!m) return undefined
  const limit = Number(m[1])
  const count = m[2] === undefined ? 1 : Number(m[2])
  const unit = UNIT_MS[m[3]!.toLowerCase()[0] as 's' | 'm' | 'h' | 'd']
  const windowMs = count * unit
  if (!Number.isSafeInteger(limit) || limit <= 0 || !Number.isSafeInteger(windowMs) || windowMs <= 0) return undefined
  return { limit, windowMs }
}

/**
 * The `rate-limit` policy type: `{ use: rate-limit, algorithm, limit: 50/min | limits: [10/s, 1000/h], burst, key, missingKey, headers }`.
 * Counters live in the gateway's `store:`.
 * @example registry.registerPolicy(rateLimitPolicy)
 */
export const rateLimitPolicy: PolicyDefinition<RateLimitOptions> = definePolicy({
  name: 'rate-limit',
  parse: (raw, at) => parseRateLimitOptions(raw, at),
  create: (options, ctx) => {
    if (ctx.store === undefined) throw new ConfigError(`policies.${ctx.name}`, 'a gateway store for the rate-limit counters')
    return rateLimit({ name: ctx.name, log: ctx.log, ...options, store: options.store ?? ctx.store })
  },
})

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

function parseWindowConfig(raw: unknown, path: string, algorithm: RateLimitAlgorithm, v: ConfigValidator): RateLimitWindow {
  let text = raw
  let burst: number | undefined
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const r = new OptionReader(raw, path, v)
    text = r.get('limit')
    const b = r.get('burst')
    burst = b === undefined ? undefined : v.integer(b, r.path('burst'), 1)
    if (burst !== undefined && algorithm !== 'token-bucket') v.fail(r.path('burst'), 'burst only with algorithm: token-bucket', burst)
    r.done()
    path = r.path('limit')
  }
  const rate = typeof text === 'string' ? parseRate(text) : undefined
  if (!rate) return v.fail(path, 'a rate such as 100/s, 1000/min, 5000/h or 1000/10min', text)
  if (algorithm === 'sliding-window-log' && rate.limit > MAX_LOG_LIMIT) v.fail(path, `at most ${MAX_LOG_LIMIT} per window with sliding-window-log`, text)
  if (!Number.isSafeInteger((burst ?? rate.limit) * rate.windowMs * 2)) v.fail(path, 'a smaller limit × window', text)
  return burst === undefined ? rate : { ...rate, burst }
}

function normaliseWindows(options: RateLimitOptions, algorithm: RateLimitAlgorithm): RateLimitWindow[] {
  const list = options.limits ?? (options.limit === undefined ? [] : [options.limit])
  if (list.length === 0 || (options.limit !== undefined && options.limits !== undefined)) throw new RangeError('rate-limit: give exactly one of limit or limits')
  return list.map((item) => {
    const w = typeof item === 'string' ? parseRate(item) : item
    if (!w) throw new RangeError(`rate-limit: limit ${JSON.stringify(item)} is not a rate such as 100/s or 1000/min`)
    if (!Number.isSafeInteger(w.limit) || w.limit <= 0) throw new RangeError('rate-limit: limit must be a positive integer')
    if (!Number.isSafeInteger(w.windowMs) || w.windowMs < 1000 || w.windowMs % 1000 !== 0) throw new RangeError('rate-limit: windowMs must be whole seconds')
    const burst = (w as RateLimitWindow).burst ?? options.burst
    if (burst !== undefined && algorithm !== 'token-bucket') throw new RangeError('rate-limit: burst only applies to token-bucket')
    if (burst !== undefined && (!Number.isSafeInteger(burst) || burst <= 0)) throw new RangeError('rate-limit: burst must be a positive integer')
    return burst === undefined ? { limit: w.limit, windowMs: w.windowMs } : { limit: w.limit, windowMs: w.windowMs, burst }
  })
}

/** An RFC 8941 sf-string. */
function sfString(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7e]/g, '?')}"`
}

/** Adds list members to a structured field another rate-limit layer may already have set. */
function appendField(out: HeaderRecord, name: string, value: string): void {
  const current = out[name]
  out[name] = current === undefined || current === '' ? value : `${Array.isArray(current) ? current.join(', ') : current}, ${value}`
}

/**
 * The path for stores without the `rateLimit` capability (SQLite, custom drivers): reads every
 * window, decides with the shared algorithm, writes back with `compareAndSet` and retries a lost
 * race (up to 32 times, then rejects). One window is exact; with several windows a race lost on a
 * later window can count an earlier one twice (over-counting, never under-counting). Several round
 * trips per decision.
 * @example const result = await rateLimitWithCompareAndSet(sqlite, 'k', { algorithm: 'fixed-window', windows: [{ limit: 5, windowMs: 1000 }] })
 */
export async function rateLimitWithCompareAndSet(store: Store, key: string, request: RateLimitRequest): Promise<RateLimitResult> {
  const keys = request.windows.map((_, i) => `${key}#${i}`)
  for (let attempt = 0; attempt < 32; attempt++) {
    const raw = await Promise.all(keys.map((k) => store.get(k)))
    const states = raw.map((bytes) => (bytes === undefined ? undefined : decodeText(bytes)))
    const { result, steps } = decideRateLimit({ ...request, nowMs: request.nowMs ?? Date.now() }, states)
    let won = true
    for (let i = 0; i < keys.length && won; i++) {
      if (steps[i]!.state === states[i]) continue
      won = await store.compareAndSet(keys[i]!, raw[i], encodeText(steps[i]!.state), { ttlMs: steps[i]!.ttlMs })
    }
    if (won) return result
  }
  throw new Error(`rate-limit: gave up on ${key} after 32 lost compare-and-set races`)
}
