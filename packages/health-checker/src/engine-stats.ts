import { type EngineStatsField, type EngineUpdate, readTextWithin, untilAborted } from '@switchboard/core'
import { type ExpositionSample, parseExposition } from '@switchboard/metrics'
import { describeError, fn, positiveInteger } from './internal.ts'

/**
 * Which engine's metric names to read: `auto` tries vLLM, then SGLang, then TGI.
 * @example const format: EngineStatsFormat = 'vllm'
 */
export type EngineStatsFormat = 'vllm' | 'sglang' | 'tgi' | 'auto'

/**
 * What the scraper writes to: an `EndpointState` from `@switchboard/balancer` fits.
 * @example const target: EngineStatsTarget = createEndpoint({ url: 'http://127.0.0.1:8001' })
 */
export interface EngineStatsTarget {
  readonly id: string
  /** Base URL; `path` and `modelsPath` are appended to it (a path prefix is kept). */
  readonly url: string
  /** Receives every scrape's figures (and failures, as `complete: false` with `NaN`s). */
  setEngine(update: EngineUpdate): void
}

/**
 * One scrape of one endpoint, as `onUpdate` sees it.
 * @example const onUpdate = (target: EngineStatsTarget, r: EngineScrapeReport) => r.ok || console.warn(target.url, r.error)
 */
export interface EngineScrapeReport {
  /** The scrape answered 2xx with a parseable exposition. */
  readonly ok: boolean
  /** Why it failed: `timeout after 500ms`, `status 503`, `body over 1048576 bytes`, a parse error, `ECONNREFUSED`. */
  readonly error?: string
  /** The format whose names matched (`auto` resolved), or `undefined` when none did. */
  readonly format: Exclude<EngineStatsFormat, 'auto'> | undefined
  /** Required metrics of that format that were absent from this scrape (renamed upstream?). */
  readonly missing: readonly string[]
  /** What was handed to `setEngine`. */
  readonly update: EngineUpdate
  /** The figures per `model_name` label (engines serving one model have one entry). */
  readonly perModel: Readonly<Record<string, { running: number; waiting: number; kvCacheUsage: number; prefixCacheHitRate: number }>>
}

/**
 * Options of {@link createEngineStatsScraper}.
 * @example const options: EngineStatsScraperOptions = { endpoints, path: '/metrics', intervalMs: 500, format: 'vllm' }
 */
export interface EngineStatsScraperOptions {
  /** The endpoints to scrape. */
  endpoints: readonly EngineStatsTarget[]
  /** Path of the Prometheus exposition. @default '/metrics' */
  path?: string
  /** Time from the start of one scrape to the start of the next, per endpoint; a slower scrape skips ticks. @default 1_000 */
  intervalMs?: number
  /** A scrape (head and body) taking longer fails. @default min(intervalMs, 2_000) */
  timeoutMs?: number
  /** Metric names to read. @default 'auto' */
  format?: EngineStatsFormat
  /** OpenAI-style model list (`data[].id`); `false` skips it. @default '/v1/models' */
  modelsPath?: string | false
  /** How often the model list is fetched again. @default 30_000 */
  modelsIntervalMs?: number
  /** Largest body read (exposition or model list); a longer one fails the scrape. @default 1_048_576 */
  maxBytes?: number
  /** Extra request headers (a bearer token for the engine). @default { accept: 'text/plain' } */
  headers?: Record<string, string>
  /** Called after every scrape. @default undefined */
  onUpdate?: (target: EngineStatsTarget, report: EngineScrapeReport) => void
  /** Fetch used; inject one only for unit tests. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Clock in ms. @default performance.now */
  now?: () => number
  /** Schedules a callback; pair with `clearTimer`. @default setTimeout */
  setTimer?: (callback: () => void, ms: number) => unknown
  /** Cancels what `setTimer` returned. @default clearTimeout */
  clearTimer?: (handle: unknown) => void
}

/**
 * A running scraper. See {@link createEngineStatsScraper}.
 * @example
 * await using scraper: EngineStatsScraper = createEngineStatsScraper({ endpoints })
 * scraper.start()
 */
export interface EngineStatsScraper {
  /** Starts scraping every endpoint (the first scrape right away). Throws after `stop()`. */
  start(): void
  /** Cancels timers and in-flight scrapes; resolves when nothing is pending. Final. */
  stop(): Promise<void>
  /** Same as {@link stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
  /** Scrapes every endpoint once now (joining a scrape already in flight). */
  scrapeNow(): Promise<void>
}

/** Default scrape interval: the 1 s. */
export const DEFAULT_ENGINE_STATS_INTERVAL_MS = 1_000
/** Default body bound of a scrape. */
export const DEFAULT_ENGINE_STATS_MAX_BYTES = 1024 * 1024

/**
 * Scrapes each endpoint's Prometheus `/metrics` (vLLM, SGLang or TGI names, old and new) and
 * `/v1/models` on an interval, one scrape at a time per endpoint, with a timeout and a body bound,
 * and hands the figures to `target.setEngine()`. A metric that is missing (or renamed upstream)
 * becomes `NaN` and marks the stats stale; it never reads as 0. Web-standard `fetch` only.
 * @example
 * const endpoints = [createEndpoint({ url: 'http://127.0.0.1:8001' }), createEndpoint({ url: 'http://127.0.0.1:8002' })]
 * const scraper = createEngineStatsScraper({ endpoints, intervalMs: 500, format: 'vllm' })
 * scraper.start()
 * // later: endpoints[0].engine?.waiting, and `await scraper.stop()`
 */
export const createEngineStatsScraper = (options: EngineStatsScraperOptions): EngineStatsScraper => new Scraper(options)

/**
 * Metric names per engine. Sources: vLLM "Production Metrics" (docs.vllm.ai/en/stable/usage/metrics;
 * `gpu_cache_usage_perc` and the `gpu_prefix_cache_hit_rate` gauge are the pre-V1 names),
 * SGLang "Production Metrics" (docs.sglang.io/references/production_metrics), TGI
 * "Metrics" (huggingface.co/docs/text-generation-inference/reference/metrics: TGI reports no KV or
 * prefix-cache figure). Earlier names come later in each list.
 */
const ALIASES = {
  vllm: {
    running: ['vllm:num_requests_running'],
    waiting: ['vllm:num_requests_waiting'],
    kvCacheUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'],
    prefixHits: ['vllm:prefix_cache_hits_total', 'vllm:prefix_cache_hits'],
    prefixQueries: ['vllm:prefix_cache_queries_total', 'vllm:prefix_cache_queries'],
    prefixRate: ['vllm:gpu_prefix_cache_hit_rate'],
  },
  sglang: {
    running: ['sglang:num_running_reqs'],
    waiting: ['sglang:num_queue_reqs'],
    kvCacheUsage: ['sglang:token_usage'],
    prefixHits: [],
    prefixQueries: [],
    prefixRate: ['sglang:cache_hit_rate'],
  },
  tgi: {
    running: ['tgi_batch_current_size'],
    waiting: ['tgi_queue_size'],
    kvCacheUsage: [],
    prefixHits: [],
    prefixQueries: [],
    prefixRate: [],
  },
} as const satisfies Record<Exclude<EngineStatsFormat, 'auto'>, Record<string, readonly string[]>>

type Format = keyof typeof ALIASES
const FORMATS: readonly Format[] = ['vllm', 'sglang', 'tgi']
/** The figures a format must report for the stats to count as fresh. */
const REQUIRED: Record<Format, readonly ('running' | 'waiting' | 'kvCacheUsage')[]> = {
  vllm: ['running', 'waiting', 'kvCacheUsage'],
  sglang: ['running', 'waiting', 'kvCacheUsage'],
  tgi: ['running', 'waiting'],
}
const MODEL_LABEL = 'model_name'
/** Series without a `model_name` label (TGI) are grouped under this key. */
const NO_MODEL = ''

interface Tracked {
  readonly target: EngineStatsTarget
  readonly metricsUrl: string
  readonly modelsUrl: string | undefined
  timer: unknown
  modelsTimer: unknown
  scraping: Promise<void> | undefined
  controllers: Set<AbortController>
  models: readonly string[] | undefined
  modelsAt: number
  /** Last prefix-cache counters per model, for the rate between two scrapes. */
  counters: Map<string, { hits: number; queries: number; rate: number }>
}

class Scraper implements EngineStatsScraper {
  readonly #tracked: Tracked[] = []
  readonly #intervalMs: number
  readonly #timeoutMs: number
  readonly #format: EngineStatsFormat
  readonly #modelsIntervalMs: number
  readonly #maxBytes: number
  readonly #headers: Record<string, string>
  readonly #onUpdate: EngineStatsScraperOptions['onUpdate']
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #setTimer: (callback: () => void, ms: number) => unknown
  readonly #clearTimer: (handle: unknown) => void
  #state: 'idle' | 'running' | 'stopped' = 'idle'

  constructor(options: EngineStatsScraperOptions) {
    if (typeof options !== 'object' || options === null) throw new RangeError('options must be an object')
    if (!Array.isArray(options.endpoints)) throw new RangeError('endpoints must be an array of endpoints')
    const path = options.path ?? '/metrics'
    if (typeof path !== 'string' || !path.startsWith('/')) throw new RangeError('path must start with "/"')
    const modelsPath = options.modelsPath ?? '/v1/models'
    if (modelsPath !== false && (typeof modelsPath !== 'string' || !modelsPath.startsWith('/')))
      throw new RangeError('modelsPath must start with "/" or be false')
    this.#intervalMs = positiveInteger(options.intervalMs, DEFAULT_ENGINE_STATS_INTERVAL_MS, 'intervalMs')
    this.#timeoutMs = positiveInteger(options.timeoutMs, Math.min(this.#intervalMs, 2_000), 'timeoutMs')
    this.#modelsIntervalMs = positiveInteger(options.modelsIntervalMs, 30_000, 'modelsIntervalMs')
    this.#maxBytes = positiveInteger(options.maxBytes, DEFAULT_ENGINE_STATS_MAX_BYTES, 'maxBytes')
    const format = options.format ?? 'auto'
    if (format !== 'auto' && !FORMATS.includes(format as Format))
      throw new RangeError(`format must be one of "vllm", "sglang", "tgi", "auto"`)
    this.#format = format
    const headers = options.headers ?? {}
    if (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))
      throw new RangeError('headers must be a record of strings')
    this.#headers = { accept: 'text/plain', 'user-agent': 'switchboard-engine-stats', ...headers }
    this.#onUpdate = fn(options.onUpdate, 'onUpdate')
    this.#fetch = fn(options.fetch, 'fetch') ?? ((input, init) => fetch(input, init))
    this.#now = fn(options.now, 'now') ?? (() => performance.now())
    const setTimer = fn(options.setTimer, 'setTimer')
    const clearTimer = fn(options.clearTimer, 'clearTimer')
    if ((setTimer === undefined) !== (clearTimer === undefined)) throw new RangeError('setTimer and clearTimer must be given together')
    this.#setTimer = setTimer ?? ((callback, ms) => setTimeout(callback, ms))
    this.#clearTimer = clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>))
    for (const [i, target] of options.endpoints.entries()) {
      if (typeof target?.setEngine !== 'function' || typeof target.url !== 'string')
        throw new RangeError(`endpoints[${i}] must have a url and setEngine() (an endpoint from createEndpoint())`)
      const base = target.url.replace(/\/+$/, '')
      this.#tracked.push({
        target,
        metricsUrl: base + path,
        modelsUrl: modelsPath === false ? undefined : base + modelsPath,
        timer: undefined,
        modelsTimer: undefined,
        scraping: undefined,
        controllers: new Set(),
        models: undefined,
        modelsAt: Number.NEGATIVE_INFINITY,
        counters: new Map(),
      })
    }
  }

  start(): void {
    if (this.#state === 'stopped') throw new Error('engine-stats scraper was stopped; create a new one')
    if (this.#state === 'running') return
    this.#state = 'running'
    for (const t of this.#tracked) {
      void this.#scrape(t)
      if (t.modelsUrl !== undefined) void this.#refreshModels(t)
    }
  }

  async stop(): Promise<void> {
    this.#state = 'stopped'
    const pending: Promise<void>[] = []
    for (const t of this.#tracked) {
      if (t.timer !== undefined) this.#clearTimer(t.timer)
      if (t.modelsTimer !== undefined) this.#clearTimer(t.modelsTimer)
      t.timer = t.modelsTimer = undefined
      for (const c of t.controllers) c.abort()
      if (t.scraping) pending.push(t.scraping)
    }
    await Promise.all(pending)
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop()
  }

  async scrapeNow(): Promise<void> {
    if (this.#state === 'stopped') return
    await Promise.all(this.#tracked.map((t) => this.#scrape(t)))
  }

  /** One scrape at a time per endpoint; the next starts one interval after this one started, or right after it when it ran longer. */
  #scrape(t: Tracked): Promise<void> {
    if (this.#state === 'stopped') return Promise.resolve()
    if (t.scraping) return t.scraping
    if (t.timer !== undefined) this.#clearTimer(t.timer)
    t.timer = undefined
    const startedAt = this.#now()
    t.scraping = this.#runScrape(t).finally(() => {
      t.scraping = undefined
      if (this.#state !== 'running') return
      const elapsed = this.#now() - startedAt
      // A scrape longer than the interval skips the ticks it overran instead of queueing them.
      const wait = this.#intervalMs - (elapsed % this.#intervalMs)
      t.timer = this.#setTimer(() => {
        t.timer = undefined
        void this.#scrape(t)
      }, wait)
    })
    return t.scraping
  }

  async #runScrape(t: Tracked): Promise<void> {
    let report: EngineScrapeReport
    try {
      const text = await this.#get(t, t.metricsUrl)
      report = this.#interpret(t, parseExposition(text).samples)
    } catch (error) {
      if (this.#state === 'stopped') return
      report = {
        ok: false,
        error: describeError(error, 160),
        format: undefined,
        missing: [],
        update: this.#update(t, Number.NaN, Number.NaN, Number.NaN, Number.NaN, false),
        perModel: {},
      }
    }
    if (this.#state === 'stopped') return
    t.target.setEngine(report.update)
    this.#onUpdate?.(t.target, report)
  }

  #interpret(t: Tracked, samples: readonly ExpositionSample[]): EngineScrapeReport {
    const byName = new Map<string, ExpositionSample[]>()
    for (const s of samples) {
      let list = byName.get(s.name)
      if (list === undefined) byName.set(s.name, (list = []))
      list.push(s)
    }
    const format = this.#format === 'auto' ? detect(byName) : this.#format
    if (format === undefined) {
      return {
        ok: true,
        format: undefined,
        missing: ['running', 'waiting'],
        update: this.#update(t, Number.NaN, Number.NaN, Number.NaN, Number.NaN, false),
        perModel: {},
      }
    }
    const names = ALIASES[format]
    const running = perModel(byName, names.running)
    const waiting = perModel(byName, names.waiting)
    const kv = perModel(byName, names.kvCacheUsage, Math.max)
    const rateGauge = perModel(byName, names.prefixRate, Math.max)
    const hits = perModel(byName, names.prefixHits)
    const queries = perModel(byName, names.prefixQueries)
    const models = new Set<string>([...running.keys(), ...waiting.keys(), ...kv.keys()])
    const prefix = new Map<string, number>()
    for (const [model, h] of hits) {
      const q = queries.get(model)
      if (q === undefined) continue
      const last = t.counters.get(model)
      let rate = Number.NaN
      if (last !== undefined && h >= last.hits && q >= last.queries) {
        // No new queries since the last scrape: the last rate still describes the cache.
        rate = q > last.queries ? (h - last.hits) / (q - last.queries) : last.rate
      }
      t.counters.set(model, { hits: h, queries: q, rate })
      prefix.set(model, rate)
    }
    for (const [model, r] of rateGauge) if (!prefix.has(model) || Number.isNaN(prefix.get(model)!)) prefix.set(model, r)
    const report: Record<string, { running: number; waiting: number; kvCacheUsage: number; prefixCacheHitRate: number }> = {}
    for (const model of models) {
      report[model] = {
        running: running.get(model) ?? Number.NaN,
        waiting: waiting.get(model) ?? Number.NaN,
        kvCacheUsage: kv.get(model) ?? Number.NaN,
        prefixCacheHitRate: prefix.get(model) ?? Number.NaN,
      }
    }
    const totalRunning = running.size === 0 ? Number.NaN : sum(running)
    const totalWaiting = waiting.size === 0 ? Number.NaN : sum(waiting)
    const kvUsage = kv.size === 0 ? Number.NaN : Math.max(...kv.values())
    const prefixRate = mean(prefix)
    const figures = { running: totalRunning, waiting: totalWaiting, kvCacheUsage: kvUsage }
    const missing = REQUIRED[format].filter((field) => Number.isNaN(figures[field])).map((field) => (names[field] as readonly string[])[0] ?? field)
    return {
      ok: true,
      format,
      missing,
      update: this.#update(t, totalRunning, totalWaiting, kvUsage, prefixRate, missing.length === 0),
      perModel: report,
    }
  }

  #update(t: Tracked, running: number, waiting: number, kvCacheUsage: number, prefixCacheHitRate: number, complete: boolean): EngineUpdate {
    const fieldAgesMs: Partial<Record<EngineStatsField, number>> = { models: this.#now() - t.modelsAt }
    return {
      running,
      waiting,
      kvCacheUsage,
      prefixCacheHitRate,
      models: t.models,
      complete,
      staleAfterMs: 3 * this.#intervalMs,
      fieldAgesMs,
    }
  }

  async #refreshModels(t: Tracked): Promise<void> {
    if (this.#state !== 'running' || t.modelsUrl === undefined) return
    try {
      const body = JSON.parse(await this.#get(t, t.modelsUrl)) as { data?: unknown }
      if (!Array.isArray(body?.data)) throw new TypeError('model list without a data array')
      const ids: string[] = []
      for (const entry of body.data) if (typeof (entry as { id?: unknown })?.id === 'string') ids.push((entry as { id: string }).id)
      t.models = Object.freeze(ids)
      t.modelsAt = this.#now()
    } catch {
      // Keep the last list; its age (fieldAgesMs.models) tells how old it is.
    }
    if (this.#state === 'running') {
      t.modelsTimer = this.#setTimer(() => {
        t.modelsTimer = undefined
        void this.#refreshModels(t)
      }, this.#modelsIntervalMs)
    }
  }

  /** GET with the timeout covering head and body, and the body cut off past `maxBytes`. */
  async #get(t: Tracked, url: string): Promise<string> {
    const controller = new AbortController()
    t.controllers.add(controller)
    let timedOut = false
    const timer = this.#setTimer(() => {
      timedOut = true
      controller.abort()
    }, this.#timeoutMs)
    try {
      const response = await untilAborted(this.#fetch(url, { headers: this.#headers, redirect: 'manual', signal: controller.signal }), controller.signal)
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel().catch(() => {})
        throw new Error(`status ${response.status}`)
      }
      return await untilAborted(readTextWithin(response, this.#maxBytes), controller.signal)
    } catch (error) {
      if (timedOut) throw new Error(`timeout after ${this.#timeoutMs}ms`, { cause: error })
      throw error
    } finally {
      this.#clearTimer(timer)
      t.controllers.delete(controller)
    }
  }
}

/** The first format whose running or waiting metric is present. */
function detect(byName: Map<string, ExpositionSample[]>): Format | undefined {
  for (const format of FORMATS) {
    const names = ALIASES[format]
    if ([...names.running, ...names.waiting].some((n) => byName.has(n))) return format
  }
  return undefined
}

/**
 * The first alias present, one value per `model_name`. Several series of one model (per engine
 * index) are summed for counts, as vLLM's own multi-engine export adds up; shares take the max.
 */
function perModel(
  byName: Map<string, ExpositionSample[]>,
  aliases: readonly string[],
  combine: (a: number, b: number) => number = (a, b) => a + b,
): Map<string, number> {
  const out = new Map<string, number>()
  for (const name of aliases) {
    const list = byName.get(name)
    if (list === undefined) continue
    for (const s of list) {
      if (Number.isNaN(s.value)) continue
      const model = s.labels[MODEL_LABEL] ?? NO_MODEL
      const seen = out.get(model)
      out.set(model, seen === undefined ? s.value : combine(seen, s.value))
    }
    return out
  }
  return out
}

function sum(values: Map<string, number>): number {
  let total = 0
  for (const v of values.values()) total += v
  return total
}

function mean(values: Map<string, number>): number {
  let total = 0
  let n = 0
  for (const v of values.values()) {
    if (Number.isNaN(v)) continue
    total += v
    n++
  }
  return n === 0 ? Number.NaN : total / n
}
