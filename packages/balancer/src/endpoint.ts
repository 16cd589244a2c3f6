import type { EndpointStats, EngineStats, EngineStatsField, EngineUpdate, TrackedEndpoint } from '@switchboard/core'

/** Options of {@link createEndpoint}. */
export interface EndpointOptions {
  /** Base URL of the target, `http://host:port` with an optional path prefix. */
  url: string
  /** Stable id. @default url */
  id?: string
  /** Relative weight, > 0. @default 1 */
  weight?: number
  /** Tier for `first-available`; lower goes first. @default 0 */
  priority?: number
  /** Length of the sliding window for rates and error rate, in ms. @default 10_000 */
  windowMs?: number
  /** How many latency samples the percentile window keeps. @default 256 */
  latencySamples?: number
  /** EWMA smoothing factor in (0, 1]; higher reacts faster. @default 0.3 */
  ewmaAlpha?: number
  /** Clock in ms; inject a fake one in tests. @default performance.now */
  now?: () => number
}

const BUCKETS = 10


/**
 * One endpoint with live stats: what balancers read, what proxy-pass and the health checker write.
 * Recording a request allocates nothing; percentiles are computed when read.
 * @example
 * const ep = createEndpoint({ url: 'http://127.0.0.1:3000', weight: 2 })
 * const started = ep.begin() // a request to it starts
 * ep.end(started, true) // and succeeds: stats.inFlight is 0 again, totalRequests 1
 */
export class EndpointState implements TrackedEndpoint, EndpointStats {
  readonly id: string
  readonly url: string
  readonly configuredWeight: number
  readonly priority: number
  weight: number
  healthy = true
  inFlight = 0
  openConnections = 0
  latencyEwmaMs = Number.NaN
  probeLatencyMs = Number.NaN
  totalRequests = 0
  totalErrors = 0

  readonly #now: () => number
  readonly #alpha: number
  readonly #samples: Float64Array
  readonly #scratch: Float64Array
  #sampleCount = 0
  #sampleNext = 0
  #windowErrors = 0
  readonly #bucketMs: number
  readonly #bucketStart: Float64Array
  readonly #bucketCount: Uint32Array
  readonly #bucketErrors: Uint32Array
  #engine: EngineView | undefined

  constructor(options: EndpointOptions) {
    const weight = options.weight ?? 1
    if (!(weight > 0) || !Number.isFinite(weight)) throw new RangeError('weight must be a positive number')
    const windowMs = options.windowMs ?? 10_000
    if (!(windowMs > 0)) throw new RangeError('windowMs must be a positive number')
    const samples = options.latencySamples ?? 256
    if (!Number.isInteger(samples) || samples < 1) throw new RangeError('latencySamples must be a positive integer')
    const alpha = options.ewmaAlpha ?? 0.3
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError('ewmaAlpha must be in (0, 1]')
    this.url = options.url
    this.id = options.id ?? options.url
    this.configuredWeight = weight
    this.weight = weight
    this.priority = options.priority ?? 0
    this.#now = options.now ?? (() => performance.now())
    this.#alpha = alpha
    this.#samples = new Float64Array(samples)
    this.#scratch = new Float64Array(samples)
    this.#bucketMs = windowMs / BUCKETS
    this.#bucketStart = new Float64Array(BUCKETS).fill(Number.NEGATIVE_INFINITY)
    this.#bucketCount = new Uint32Array(BUCKETS)
    this.#bucketErrors = new Uint32Array(BUCKETS)
  }

  /** The stats view (this object: every stat is a field or getter). */
  get stats(): EndpointStats {
    return this
  }

  /**
   * The engine's own figures (from `setEngine`), or `undefined` when nothing scrapes this endpoint.
   * The same object across updates; reading it allocates nothing.
   */
  get engine(): EngineStats | undefined {
    return this.#engine
  }

  /**
   * Requests the gateway started on this endpoint since the last engine scrape and that are still
   * running: the engine's figures do not include them yet. 0 without engine stats.
   */
  get inFlightSinceScrape(): number {
    return this.#engine?.inFlightSinceScrape ?? 0
  }

  /** Records an engine-stats scrape: its figures become `engine`, and `inFlightSinceScrape` starts over. */
  setEngine(update: EngineUpdate): void {
    this.#engine ??= new EngineView(this.#now)
    this.#engine.update(update, this.#now())
  }

  /** Marks a request as started; returns the start time to pass to {@link end}. */
  begin(): number {
    this.inFlight++
    const now = this.#now()
    if (this.#engine !== undefined) this.#engine.inFlightSinceScrape++
    return now
  }

  /** Marks a request as finished; `ok` false for a transport error or a 5xx. */
  end(startedAt: number, ok: boolean): void {
    if (this.inFlight > 0) this.inFlight--
    const engine = this.#engine
    // Only requests begun after the scrape were added; the older ones are in the engine's figures.
    if (engine !== undefined && startedAt >= engine.scrapedAt && engine.inFlightSinceScrape > 0) engine.inFlightSinceScrape--
    const now = this.#now()
    const latency = Math.max(0, now - startedAt)
    this.totalRequests++
    if (!ok) this.totalErrors++
    this.latencyEwmaMs = Number.isNaN(this.latencyEwmaMs)
      ? latency
      : this.latencyEwmaMs + this.#alpha * (latency - this.latencyEwmaMs)
    this.#samples[this.#sampleNext] = latency
    this.#sampleNext = (this.#sampleNext + 1) % this.#samples.length
    if (this.#sampleCount < this.#samples.length) this.#sampleCount++
    const slot = this.#bucket(now)
    this.#bucketCount[slot]++
    if (!ok) this.#bucketErrors[slot]++
  }

  /** Records an active probe: its latency, or `undefined` when it failed. */
  recordProbe(latencyMs: number | undefined): void {
    if (latencyMs !== undefined) this.probeLatencyMs = latencyMs
  }

  /** Health as decided by active checks or outlier detection. */
  setHealthy(healthy: boolean): void {
    this.healthy = healthy
  }

  /** Effective weight (slow start ramps it up to `configuredWeight`). */
  setWeight(weight: number): void {
    if (weight > 0 && Number.isFinite(weight)) this.weight = weight
  }

  /** An upstream connection to this endpoint opened. */
  connectionOpened(): void {
    this.openConnections++
  }

  /** An upstream connection to this endpoint closed. */
  connectionClosed(): void {
    if (this.openConnections > 0) this.openConnections--
  }

  get latencyP50Ms(): number {
    return this.#percentile(0.5)
  }

  get latencyP95Ms(): number {
    return this.#percentile(0.95)
  }

  get latencyP99Ms(): number {
    return this.#percentile(0.99)
  }

  get errorRate(): number {
    const count = this.#windowTotals()
    return count === 0 ? 0 : this.#windowErrors / count
  }

  get requestsPerSecond(): number {
    return (this.#windowTotals() * 1000) / (this.#bucketMs * BUCKETS)
  }

  /** A plain snapshot for JSON (admin API, logs). */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      url: this.url,
      weight: this.weight,
      configuredWeight: this.configuredWeight,
      priority: this.priority,
      healthy: this.healthy,
      inFlight: this.inFlight,
      openConnections: this.openConnections,
      latencyEwmaMs: nanToNull(this.latencyEwmaMs),
      latencyP50Ms: nanToNull(this.latencyP50Ms),
      latencyP95Ms: nanToNull(this.latencyP95Ms),
      latencyP99Ms: nanToNull(this.latencyP99Ms),
      errorRate: this.errorRate,
      requestsPerSecond: this.requestsPerSecond,
      probeLatencyMs: nanToNull(this.probeLatencyMs),
      totalRequests: this.totalRequests,
      totalErrors: this.totalErrors,
      ...(this.#engine === undefined ? undefined : { engine: this.#engine.toJSON() }),
    }
  }

  #bucket(now: number): number {
    const index = Math.floor(now / this.#bucketMs)
    const slot = ((index % BUCKETS) + BUCKETS) % BUCKETS
    const start = index * this.#bucketMs
    if (this.#bucketStart[slot] !== start) {
      this.#bucketStart[slot] = start
      this.#bucketCount[slot] = 0
      this.#bucketErrors[slot] = 0
    }
    return slot
  }

  /** Requests in the window; leaves the errors in #windowErrors so reading a stat allocates nothing. */
  #windowTotals(): number {
    const oldest = this.#now() - this.#bucketMs * BUCKETS
    let count = 0
    let errors = 0
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#bucketStart[i] + this.#bucketMs > oldest) {
        count += this.#bucketCount[i]
        errors += this.#bucketErrors[i]
      }
    }
    this.#windowErrors = errors
    return count
  }

  #percentile(q: number): number {
    const n = this.#sampleCount
    if (n === 0) return Number.NaN
    const sorted = this.#scratch.subarray(0, n)
    sorted.set(this.#samples.subarray(0, n))
    sorted.sort()
    return sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]
  }
}

/**
 * Creates an {@link EndpointState}.
 * @example createEndpoint({ url: 'http://127.0.0.1:3000', weight: 2 })
 */
export const createEndpoint = (options: EndpointOptions): EndpointState => new EndpointState(options)

const ENGINE_FIELDS: readonly EngineStatsField[] = ['running', 'waiting', 'kvCacheUsage', 'prefixCacheHitRate', 'models']

/** The live {@link EngineStats} of one endpoint: ages are computed when read, against the endpoint's clock. */
class EngineView implements EngineStats {
  running = Number.NaN
  waiting = Number.NaN
  kvCacheUsage = Number.NaN
  prefixCacheHitRate = Number.NaN
  models: readonly string[] = []
  inFlightSinceScrape = 0
  /** Clock time of the last update; requests begun at or after it count in `inFlightSinceScrape`. */
  scrapedAt = Number.NEGATIVE_INFINITY
  #complete = false
  #staleAfterMs = 0
  readonly #reportedAt = new Float64Array(ENGINE_FIELDS.length).fill(Number.NEGATIVE_INFINITY)
  readonly #now: () => number

  constructor(now: () => number) {
    this.#now = now
  }

  update(u: EngineUpdate, now: number): void {
    this.running = u.running
    this.waiting = u.waiting
    this.kvCacheUsage = u.kvCacheUsage
    this.prefixCacheHitRate = u.prefixCacheHitRate
    if (u.models !== undefined) this.models = u.models
    this.#complete = u.complete
    this.#staleAfterMs = u.staleAfterMs
    this.scrapedAt = now
    this.inFlightSinceScrape = 0
    for (let i = 0; i < ENGINE_FIELDS.length; i++) {
      const field = ENGINE_FIELDS[i]
      const given = u.fieldAgesMs?.[field]
      if (given !== undefined) this.#reportedAt[i] = Number.isFinite(given) ? now - given : Number.NEGATIVE_INFINITY
      else if (field === 'models') continue // kept from the last /v1/models answer
      else if (!Number.isNaN(this[field])) this.#reportedAt[i] = now
      else this.#reportedAt[i] = Number.NEGATIVE_INFINITY
    }
  }

  get ageMs(): number {
    return this.#now() - this.scrapedAt
  }

  get stale(): boolean {
    return !this.#complete || this.ageMs > this.#staleAfterMs
  }

  ageOf(field: EngineStatsField): number {
    const i = ENGINE_FIELDS.indexOf(field)
    return i === -1 ? Number.POSITIVE_INFINITY : this.#now() - this.#reportedAt[i]
  }

  toJSON(): Record<string, unknown> {
    const age = this.ageMs
    return {
      running: nanToNull(this.running),
      waiting: nanToNull(this.waiting),
      kvCacheUsage: nanToNull(this.kvCacheUsage),
      prefixCacheHitRate: nanToNull(this.prefixCacheHitRate),
      models: this.models,
      ageMs: Number.isFinite(age) ? Math.round(age) : null,
      stale: this.stale,
      inFlightSinceScrape: this.inFlightSinceScrape,
    }
  }
}

function nanToNull(value: number): number | null {
  return Number.isNaN(value) ? null : value
}
