import {
  BadRequestError,
  ConfigError,
  ConfigValidator,
  definePolicy,
  estimatePromptTokens,
  type Exchange,
  GatewayError,
  type HeaderRecord,
  type Middleware,
  OptionReader,
  PayloadTooLargeError,
  type PolicyContext,
  type PolicyDefinition,
  requestedMaxTokens,
  requestedModel,
  ServiceUnavailableError,
  type Store,
  TOKEN_USAGE_STATE,
  type TokenUsage,
} from '@switchboard/core'
import { BODY_LIMIT_STATE } from '../body-limit/index.ts'
import { compactKey, keyReader, type MissingKeyBehaviour, parseKeyOption, readRequestKey, type RequestKeyPart } from '../request-key.ts'

/** Longest budget period (`per`), in ms: 366 days. */
export const MAX_BUDGET_PERIOD_MS = 366 * 86_400_000
/** Largest request body the policy reads by default to estimate a request, in bytes (1 MiB, the server's default limit). */
export const DEFAULT_BUDGET_BODY_BYTES = 1024 * 1024

/** A token budget per period: `limit` prompt + completion tokens per `per` (`'1d'`, `'30d'`, `'1h'`, or ms). */
export interface TokenBudgetLimit {
  /** Tokens per period, a positive integer. */
  readonly limit: number
  /** Period: `'90s'`, `'10m'`, `'1h'`, `'1d'`, `'30d'` or a number of milliseconds (whole seconds, at most 366 days). */
  readonly per: string | number
}

/** What one model costs, in currency per 1M tokens. */
export interface TokenPrice {
  /** Price of 1M prompt (input) tokens. */
  readonly prompt: number
  /** Price of 1M completion (output) tokens. */
  readonly completion: number
}

/** A spend budget per period, in the currency the prices are in. */
export interface SpendBudget {
  /** Currency per period (`5` = five dollars, if the prices are in dollars); counted in millionths. */
  readonly limit: number
  /** Period, as for {@link TokenBudgetLimit.per}. */
  readonly per: string | number
  /**
   * Prices per model name pattern (`*` matches any run of characters), per 1M tokens. The first
   * pattern that matches, in the order written, prices a request; put `'*'` last as the fallback.
   * A request for a model no pattern matches is refused (400): an unpriced model would spend nothing.
   */
  readonly prices: Readonly<Record<string, TokenPrice>>
}

/** Options of {@link tokenBudget}. Give at least one of `tokensPerMinute`, `tokens` or `spend`. */
export interface TokenBudgetOptions {
  /** Who a budget belongs to; a list combines parts (`['client', 'route']`). @default 'client' */
  key?: RequestKeyPart | readonly RequestKeyPart[]
  /**
   * A request with no value for a key part: `'shared'` counts all of them on one budget (per the
   * other parts), `'allow'` lets them through unmetered, `'deny'` answers 403. @default 'shared'
   */
  missingKey?: MissingKeyBehaviour
  /** Prompt + completion tokens per fixed minute. @default none */
  tokensPerMinute?: number
  /** Prompt + completion tokens per period. @default none */
  tokens?: TokenBudgetLimit
  /** Spend per period, priced per model. @default none */
  spend?: SpendBudget
  /**
   * Completion cap reserved for a request that sets none; it is also written into the body sent
   * upstream (as `maxTokensField`), so the engine cannot produce more than was reserved. Without
   * it, a request with no cap is refused with 400. @default none
   */
  defaultMaxTokens?: number
  /** Body field that carries an injected cap: `max_tokens` (vLLM, SGLang, TGI, Anthropic) or `max_completion_tokens` (OpenAI reasoning models). @default 'max_tokens' */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens'
  /** Status of a refusal for a budget that is used up (always with `Retry-After`). @default 429 */
  status?: 429 | 503
  /** Sends `x-token-budget-remaining` and `x-token-budget-reset` on the responses it meters. @default true */
  headers?: boolean
  /** Largest request body read to estimate a request, in bytes (a `body-limit` layer's smaller limit wins). @default 1 MiB */
  maxBodyBytes?: number
  /** Where counters live. @default the gateway's store (`ctx.store`) */
  store?: Store
  /** Policy identifier in store keys. @default the policy instance name */
  name?: string
  /** Clock in epoch ms (window boundaries); inject one in tests. @default Date.now */
  now?: () => number
  /** Log sink for store outages and responses without recorded usage. @default the gateway's log (`ctx.log`), else none */
  log?: PolicyContext['log']
}

/** Which budget refused a request: `tokens-per-minute`, `tokens` or `spend`. */
export type TokenBudgetKind = 'tokens-per-minute' | 'tokens' | 'spend'

/**
 * 429 (or 503) `ERR_TOKEN_BUDGET_EXCEEDED`: the request's worst case does not fit what is left of
 * a budget in the current window. `retryAfter` (also sent as `Retry-After`) is the seconds until
 * that window ends.
 * @example throw new TokenBudgetExceededError({ budget: 'tokens', retryAfter: 30 })
 */
export class TokenBudgetExceededError extends GatewayError {
  /** Seconds until the refusing window ends. */
  readonly retryAfter: number
  constructor(init: { budget: TokenBudgetKind; retryAfter: number; status?: 429 | 503 }) {
    super(init.status ?? 429, 'ERR_TOKEN_BUDGET_EXCEEDED', 'Token budget exceeded', { details: { budget: init.budget, retryAfter: init.retryAfter } })
    this.retryAfter = init.retryAfter
  }
}

/**
 * Token budgets reserved at admission. A request's worst case, its prompt estimate
 * (`estimatePromptTokens`) plus its completion cap (`max_tokens`, times `n`/`best_of`), is added
 * to every window's counter with one atomic `increment` each; if any counter passes its limit the
 * request takes back what it added and is refused (429 `ERR_TOKEN_BUDGET_EXCEEDED` with
 * `Retry-After`), so the reserved total never passes a limit, whatever the concurrency, on one
 * gateway or a fleet sharing Redis. When the response ends, the real usage the route's token
 * accounting recorded (`TOKEN_USAGE_STATE`) replaces the reservation in the windows it was taken
 * from; with none recorded (refused downstream, upstream unreachable) the reservation is released.
 * Windows are fixed, aligned to multiples of their length since the UTC epoch. A request whose
 * worst case alone exceeds a limit is refused with 413. A store that is down follows its
 * `failMode`: open admits unmetered (logged at most every 30 s), closed answers 503.
 * @example
 * const layer = tokenBudget({ key: 'client', tokensPerMinute: 20_000, defaultMaxTokens: 1024, store: memoryStoreInstance })
 */
export function tokenBudget(options: TokenBudgetOptions): Middleware {
  const store = options.store
  if (store === undefined) throw new TypeError('token-budget: a store is required (the gateway passes its own)')
  const windows = normaliseWindows(options)
  const prices = options.spend === undefined ? [] : compilePrices(options.spend.prices)
  const keyParts = (Array.isArray(options.key) ? options.key : [options.key ?? 'client']) as readonly RequestKeyPart[]
  if (keyParts.length === 0) throw new RangeError('token-budget: key must name at least one part')
  const readers = keyParts.map((part) => keyReader(part, 'token-budget'))
  const missing = options.missingKey ?? 'shared'
  if (!['allow', 'deny', 'shared'].includes(missing)) throw new RangeError("token-budget: missingKey must be 'allow', 'deny' or 'shared'")
  const defaultMax = options.defaultMaxTokens
  if (defaultMax !== undefined && (!Number.isSafeInteger(defaultMax) || defaultMax <= 0)) throw new RangeError('token-budget: defaultMaxTokens must be a positive integer')
  const field = options.maxTokensField ?? 'max_tokens'
  if (field !== 'max_tokens' && field !== 'max_completion_tokens') throw new RangeError("token-budget: maxTokensField must be 'max_tokens' or 'max_completion_tokens'")
  const status = options.status ?? 429
  if (status !== 429 && status !== 503) throw new RangeError('token-budget: status must be 429 or 503')
  const maxBody = options.maxBodyBytes ?? DEFAULT_BUDGET_BODY_BYTES
  if (!Number.isSafeInteger(maxBody) || maxBody < 0) throw new RangeError('token-budget: maxBodyBytes must be a whole number of bytes')
  const sendHeaders = options.headers ?? true
  const name = options.name ?? 'token-budget'
  const now = options.now ?? Date.now
  const log = options.log
  const prefix = `token-budget:${name}:`
  const warned = { failOpen: Number.NEGATIVE_INFINITY, noUsage: Number.NEGATIVE_INFINITY }
  const warn = (what: keyof typeof warned, message: string, fields: Record<string, unknown>): void => {
    const t = Date.now()
    if (t - warned[what] < FAIL_OPEN_LOG_INTERVAL_MS) return
    warned[what] = t
    log?.('warn', message, { policy: name, ...fields })
  }
  const priceOf = (model: string | undefined): CompiledPrice | undefined => prices.find((p) => p.pattern.test(model ?? ''))

  return async function tokenBudget(ex, next) {
    const joined = readRequestKey(ex, readers, missing, 'Request has no token budget key')
    if (joined === undefined) return next()
    const body = await requestJson(ex, maxBody)
    if (body === undefined) return next() // nothing to generate from: a GET, a body-less call
    let cap = requestedMaxTokens(body)
    if (cap === undefined) {
      for (const k of CAP_FIELDS) if (body[k] !== undefined && body[k] !== null) throw new BadRequestError({ message: `${k} must be a positive integer` })
      const replace = (ex as Partial<BodyReplacing>).replaceBody
      if (defaultMax === undefined || typeof replace !== 'function') throw new BadRequestError({ message: 'This route has a token budget: set max_tokens in the request' })
      cap = defaultMax
      const patched = { ...body, [field]: defaultMax }
      replace.call(ex, new TextEncoder().encode(JSON.stringify(patched)))
      if ('body' in ex) (ex as Partial<BodyReplacing>).body = patched
    }
    const promptTokens = estimatePromptTokens(body)
    const completionTokens = cap * choicesOf(body)
    const requested = requestedModel(body)
    const price = prices.length === 0 ? undefined : priceOf(requested)
    if (prices.length > 0 && price === undefined) throw new BadRequestError({ message: `No price is configured for model ${JSON.stringify(requested ?? '')}` })
    const amounts = windows.map((w) => (w.kind === 'spend' ? costOf(price!, promptTokens, completionTokens) : promptTokens + completionTokens))
    windows.forEach((w, i) => {
      if (amounts[i]! > w.limit) {
        throw new PayloadTooLargeError({
          message: `The request's worst case (${amountText(w, amounts[i]!)}) exceeds the ${w.kind} budget (${amountText(w, w.limit)} per ${w.perMs / 1000}s); lower max_tokens`,
          details: { budget: w.kind },
        })
      }
    })

    const id = joined.length <= 200 ? joined : await compactKey(joined)
    const t0 = now()
    const held: Held[] = windows.map((w, i) => {
      const start = t0 - (t0 % w.perMs)
      return { window: w, key: `${prefix}${w.kind}:${w.perMs}:${start}:${id}`, end: start + w.perMs, amount: amounts[i]!, value: 0, taken: false }
    })
    const outcomes = await Promise.allSettled(held.map((h) => store.increment(h.key, h.amount, { ttlMs: h.end - t0 + KEY_GRACE_MS })))
    let failure: unknown
    outcomes.forEach((o, i) => {
      const h = held[i]!
      if (o.status === 'rejected') failure ??= o.reason
      // A store in failMode open answers 0 when it is down: that window holds nothing to give back.
      else if (o.value !== 0 || h.amount === 0) {
        h.taken = true
        h.value = o.value
      }
    })
    const refusing = held.filter((h) => h.taken && h.value > h.window.limit)
    if (failure !== undefined || refusing.length > 0) {
      await Promise.all(held.map((h) => (h.taken ? giveBack(h, -h.amount) : undefined)))
      if (failure !== undefined) {
        log?.('error', 'token-budget: store unavailable, refusing requests', { policy: name, store: store.name, error: String(failure) })
        throw new ServiceUnavailableError({ cause: failure })
      }
      const retryAfter = Math.max(1, ...refusing.map((h) => Math.ceil((h.end - t0) / 1000)))
      ex.onResponseHead((_status, out) => {
        out['retry-after'] = String(retryAfter)
        if (sendHeaders) setBudgetHeaders(out, held, t0, true)
      })
      throw new TokenBudgetExceededError({ budget: refusing[0]!.window.kind, retryAfter, status })
    }
    if (held.some((h) => !h.taken)) warn('failOpen', 'token-budget: store unavailable, admitting requests unmetered (failMode open)', { store: store.name })
    if (sendHeaders) ex.onResponseHead((_status, out) => setBudgetHeaders(out, held, t0, false))

    try {
      await next()
    } finally {
      if (held.some((h) => h.taken)) await reconcile(ex, held, price)
    }
  }

  /** Replaces each reservation with the real usage (or releases it) in the window it was taken from. */
  async function reconcile(ex: Exchange, held: readonly Held[], price: CompiledPrice | undefined): Promise<void> {
    const usage = usageOf(ex.state.get(TOKEN_USAGE_STATE))
    const answered = ex.response?.status ?? 0
    let actual: (h: Held) => number
    if (usage !== undefined) {
      const usedPrice = priceOf(usage.model) ?? price
      actual = (h) => (h.window.kind === 'spend' ? costOf(usedPrice!, usage.promptTokens, usage.completionTokens) : usage.promptTokens + usage.completionTokens)
    } else if (answered >= 200 && answered < 300) {
      // Tokens were generated but nobody counted them (no `usage:` on the route?): keep the worst case.
      warn('noUsage', 'token-budget: a successful response recorded no token usage; its reservation is kept (is usage: set on the route?)', { route: ex.route?.name })
      actual = (h) => h.amount
    } else actual = () => 0
    const t = now()
    // A window that already ended is left alone: its counter no longer admits anything.
    await Promise.all(held.map((h) => (h.taken && t < h.end ? giveBack(h, actual(h) - h.amount) : undefined)))
  }

  async function giveBack(h: { key: string; end: number }, delta: number): Promise<void> {
    if (delta === 0) return
    const t = now()
    try {
      await store!.increment(h.key, delta, { ttlMs: Math.max(1, h.end - t + KEY_GRACE_MS) })
    } catch (err) {
      // Left as it was, the counter over-counts: later requests may be refused, none over-admitted.
      log?.('error', 'token-budget: could not reconcile a reservation', { policy: name, store: store!.name, error: String(err) })
    }
  }
}

/**
 * Parses `{ key, missingKey, tokensPerMinute, tokens: { limit, per }, spend: { limit, per, prices },
 * defaultMaxTokens, maxTokensField, status, headers, maxBodySize }` (key paths in errors).
 * @example const options = parseTokenBudgetOptions({ tokensPerMinute: 20000, defaultMaxTokens: 1024 }, 'policies.llm-budget')
 */
export function parseTokenBudgetOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): TokenBudgetOptions {
  const r = new OptionReader(raw, at, validator)
  const key = parseKeyOption(r, validator, 'client')
  const missingKey = r.oneOf('missingKey', ['shared', 'allow', 'deny'] as const, 'shared')
  const tpmRaw = r.get('tokensPerMinute')
  const tokensPerMinute = tpmRaw === undefined ? undefined : tokenCount(validator, tpmRaw, r.path('tokensPerMinute'))
  let tokens: TokenBudgetLimit | undefined
  if (r.has('tokens')) {
    const t = r.child('tokens')
    tokens = { limit: tokenCount(validator, t.get('limit'), t.path('limit')), per: parsePeriodOption(t, validator) }
    t.done()
  }
  let spend: SpendBudget | undefined
  if (r.has('spend')) {
    const s = r.child('spend')
    if (!s.has('limit')) validator.fail(s.path('limit'), 'an amount of currency > 0', undefined)
    const limit = s.number('limit', 0, { min: Number.MIN_VALUE, max: MAX_SPEND })
    if (Math.round(limit * MICRO) < 1) validator.fail(s.path('limit'), 'at least 0.000001', limit)
    const per = parsePeriodOption(s, validator)
    if (!s.has('prices')) validator.fail(s.path('prices'), 'prices per model pattern, e.g. { "*": { prompt: 0.5, completion: 1.5 } }', undefined)
    const p = s.child('prices')
    const prices: Record<string, TokenPrice> = {}
    for (const pattern of Object.keys(p.raw)) {
      const one = p.child(pattern)
      if (!one.has('prompt')) validator.fail(one.path('prompt'), 'a price per 1M prompt tokens', undefined)
      if (!one.has('completion')) validator.fail(one.path('completion'), 'a price per 1M completion tokens', undefined)
      prices[pattern] = { prompt: one.number('prompt', 0, { min: 0, max: MAX_PRICE }), completion: one.number('completion', 0, { min: 0, max: MAX_PRICE }) }
      one.done()
    }
    if (Object.keys(prices).length === 0) validator.fail(s.path('prices'), 'at least one model pattern', p.raw)
    p.done()
    s.done()
    spend = { limit, per, prices }
  }
  if (tokensPerMinute === undefined && tokens === undefined && spend === undefined) validator.fail(at, 'at least one of tokensPerMinute, tokens or spend', undefined)
  const dmRaw = r.get('defaultMaxTokens')
  const defaultMaxTokens = dmRaw === undefined ? undefined : tokenCount(validator, dmRaw, r.path('defaultMaxTokens'))
  const maxTokensField = r.oneOf('maxTokensField', ['max_tokens', 'max_completion_tokens'] as const, 'max_tokens')
  const statusRaw = r.get('status')
  if (statusRaw !== undefined && statusRaw !== 429 && statusRaw !== 503) validator.fail(r.path('status'), '429 or 503', statusRaw)
  const headers = r.boolean('headers', true)
  const maxBodyBytes = r.size('maxBodySize', DEFAULT_BUDGET_BODY_BYTES, 1)
  r.done()
  const options: TokenBudgetOptions = { key, missingKey, maxTokensField, status: (statusRaw as 429 | 503 | undefined) ?? 429, headers, maxBodyBytes }
  if (tokensPerMinute !== undefined) options.tokensPerMinute = tokensPerMinute
  if (tokens !== undefined) options.tokens = tokens
  if (spend !== undefined) options.spend = spend
  if (defaultMaxTokens !== undefined) options.defaultMaxTokens = defaultMaxTokens
  return options
}

/**
 * Parses a budget period: `'90s'`, `'10m'` (or `min`), `'1h'`, `'1d'`, `'30d'`, `'2w'`, or a
 * number of milliseconds; whole seconds from 1 s to 366 days, else `undefined`.
 * @example parsePeriod('30d') // 2_592_000_000
 */
export function parsePeriod(value: string | number): number | undefined {
  let ms: number
  if (typeof value === 'number') ms = value
  else {
    const m = /^\s*(\d+)\s*(s|m|min|h|d|w)\s*$/i.exec(value)
    if (!m) return undefined
    ms = Number(m[1]) * PERIOD_UNIT_MS[m[2]!.toLowerCase() as keyof typeof PERIOD_UNIT_MS]
  }
  return Number.isSafeInteger(ms) && ms >= 1000 && ms % 1000 === 0 && ms <= MAX_BUDGET_PERIOD_MS ? ms : undefined
}

/**
 * The `token-budget` policy type: `{ use: token-budget, key, tokensPerMinute, tokens: { limit, per },
 * spend: { limit, per, prices }, defaultMaxTokens, status }`. Counters live in the gateway's `store:`.
 * @example registry.registerPolicy(tokenBudgetPolicy)
 */
export const tokenBudgetPolicy: PolicyDefinition<TokenBudgetOptions> = definePolicy({
  name: 'token-budget',
  phases: ['route'],
  parse: (raw, at) => parseTokenBudgetOptions(raw, at),
  create: (options, ctx) => {
    if (ctx.store === undefined) throw new ConfigError(`policies.${ctx.name}`, 'a gateway store for the token-budget counters')
    return tokenBudget({ name: ctx.name, log: ctx.log, ...options, store: options.store ?? ctx.store })
  },
})

/** How often a failed-open store (or a response without usage) is logged at most, in ms. */
const FAIL_OPEN_LOG_INTERVAL_MS = 30_000
/** Counters outlive their window by this much, so a gateway whose clock runs a little behind still finds them. */
const KEY_GRACE_MS = 60_000
/** Spend is counted in millionths of the currency unit. */
const MICRO = 1_000_000
const MAX_SPEND = 1e9
const MAX_PRICE = 1e6
const CAP_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'] as const
const PERIOD_UNIT_MS = { s: 1_000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const

/** What the gateway's exchange offers beyond the core one: the parsed body and a way to replace it. */
interface BodyReplacing {
  body: unknown
  replaceBody(bytes: Uint8Array): void
}

interface Window {
  readonly kind: TokenBudgetKind
  /** Tokens, or millionths of the currency for spend. */
  readonly limit: number
  readonly perMs: number
}

/** One window's reservation for one request. */
interface Held {
  readonly window: Window
  readonly key: string
  /** Window end, epoch ms. */
  readonly end: number
  /** Reserved: tokens, or millionths of the currency. */
  readonly amount: number
  /** The counter right after the reservation. */
  value: number
  /** False when the store held nothing (failed open). */
  taken: boolean
}

interface CompiledPrice {
  readonly pattern: RegExp
  /** Millionths of the currency per 1M tokens. */
  readonly prompt: number
  readonly completion: number
}

function normaliseWindows(options: TokenBudgetOptions): Window[] {
  const windows: Window[] = []
  if (options.tokensPerMinute !== undefined) {
    if (!Number.isSafeInteger(options.tokensPerMinute) || options.tokensPerMinute <= 0) throw new RangeError('token-budget: tokensPerMinute must be a positive integer')
    windows.push({ kind: 'tokens-per-minute', limit: options.tokensPerMinute, perMs: 60_000 })
  }
  if (options.tokens !== undefined) {
    const { limit, per } = options.tokens
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError('token-budget: tokens.limit must be a positive integer')
    windows.push({ kind: 'tokens', limit, perMs: periodOrThrow(per, 'tokens.per') })
  }
  if (options.spend !== undefined) {
    const micro = Math.round(options.spend.limit * MICRO)
    if (!Number.isFinite(options.spend.limit) || !Number.isSafeInteger(micro) || micro < 1) throw new RangeError('token-budget: spend.limit must be an amount of at least 0.000001')
    windows.push({ kind: 'spend', limit: micro, perMs: periodOrThrow(options.spend.per, 'spend.per') })
  }
  if (windows.length === 0) throw new RangeError('token-budget: give at least one of tokensPerMinute, tokens or spend')
  return windows
}

function periodOrThrow(per: string | number, what: string): number {
  const ms = parsePeriod(per)
  if (ms === undefined) throw new RangeError(`token-budget: ${what} must be a period such as 1m, 1h, 1d or 30d (whole seconds, at most 366 days)`)
  return ms
}

function tokenCount(v: ConfigValidator, raw: unknown, path: string): number {
  const n = raw === undefined ? v.fail(path, 'a whole number of tokens ≥ 1', raw) : v.integer(raw, path, 1)
  if (!Number.isSafeInteger(n)) v.fail(path, `a whole number of tokens ≤ ${Number.MAX_SAFE_INTEGER}`, raw)
  return n
}

function parsePeriodOption(r: OptionReader, v: ConfigValidator): string | number {
  const raw = r.get('per')
  const ms = typeof raw === 'string' || typeof raw === 'number' ? parsePeriod(raw) : undefined
  if (ms === undefined) return v.fail(r.path('per'), 'a period such as 1m, 1h, 1d or 30d (whole seconds, at most 366 days)', raw)
  return ms
}

function compilePrices(prices: Readonly<Record<string, TokenPrice>>): CompiledPrice[] {
  const out: CompiledPrice[] = []
  for (const [pattern, price] of Object.entries(prices)) {
    for (const part of ['prompt', 'completion'] as const) {
      const p = price?.[part]
      if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > MAX_PRICE) throw new RangeError(`token-budget: spend.prices.${pattern}.${part} must be a price per 1M tokens ≥ 0`)
    }
    const source = pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')
    out.push({ pattern: new RegExp(`^${source}$`, 's'), prompt: Math.round(price.prompt * MICRO), completion: Math.round(price.completion * MICRO) })
  }
  if (out.length === 0) throw new RangeError('token-budget: spend.prices must price at least one model pattern')
  return out
}

/** Millionths of the currency for these tokens, rounded up (exact integer arithmetic). */
function costOf(price: CompiledPrice, promptTokens: number, completionTokens: number): number {
  const total = promptTokens * price.prompt + completionTokens * price.completion
  if (Number.isSafeInteger(total)) return Math.ceil(total / MICRO)
  const big = BigInt(promptTokens) * BigInt(price.prompt) + BigInt(completionTokens) * BigInt(price.completion)
  return Number((big + BigInt(MICRO - 1)) / BigInt(MICRO))
}

/** Choices generated per request: OpenAI's `n` (chat, completions) and `best_of` (completions). */
function choicesOf(body: Record<string, unknown>): number {
  let choices = 1
  for (const k of ['n', 'best_of']) {
    const v = body[k]
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > choices) choices = v
  }
  return choices
}

/** The request body as a JSON object: routing's parse when it read one, else read here (bounded). */
async function requestJson(ex: Exchange, maxBody: number): Promise<Record<string, unknown> | undefined> {
  let value = (ex as Partial<BodyReplacing>).body
  if (value === undefined) {
    const limit = Math.min(maxBody, (ex.state.get(BODY_LIMIT_STATE) as number | undefined) ?? Number.POSITIVE_INFINITY)
    const bytes = await ex.readBody(limit)
    if (bytes.byteLength === 0) return undefined
    try {
      value = JSON.parse(new TextDecoder().decode(bytes))
    } catch {
      throw new BadRequestError({ message: 'This route has a token budget: the request body must be JSON' })
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadRequestError({ message: 'This route has a token budget: the request body must be a JSON object' })
  return value as Record<string, unknown>
}

function usageOf(value: unknown): TokenUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const u = value as TokenUsage
  const ok = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
  return ok(u.promptTokens) && ok(u.completionTokens) ? u : undefined
}

function amountText(w: Window, amount: number): string {
  return w.kind === 'spend' ? `${(amount / MICRO).toFixed(6)}` : `${amount} tokens`
}

const HEADER_NAMES: Record<TokenBudgetKind, string> = { 'tokens-per-minute': 'tpm', tokens: 'tokens', spend: 'spend' }

/** `x-token-budget-remaining: tpm=19000, tokens=998000, spend=4.9981` and `x-token-budget-reset` (seconds). */
function setBudgetHeaders(
  out: HeaderRecord,
  held: readonly Held[],
  t0: number,
  refused: boolean,
): void {
  const remaining: string[] = []
  const reset: string[] = []
  for (const h of held) {
    if (!h.taken) continue
    const used = refused ? h.value - h.amount : h.value
    const left = Math.max(0, h.window.limit - used)
    const label = HEADER_NAMES[h.window.kind]
    remaining.push(`${label}=${h.window.kind === 'spend' ? trimDecimal(left / MICRO) : left}`)
    reset.push(`${label}=${Math.max(1, Math.ceil((h.end - t0) / 1000))}`)
  }
  if (remaining.length === 0) return
  out['x-token-budget-remaining'] = remaining.join(', ')
  out['x-token-budget-reset'] = reset.join(', ')
}

function trimDecimal(n: number): string {
  return n.toFixed(6).replace(/\.?0+$/, '')
}
