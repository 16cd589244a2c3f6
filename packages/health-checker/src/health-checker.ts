import { type TrackedEndpoint, untilAborted } from '@switchboard/core'
import { describeError, fn, positiveInteger } from './internal.ts'

/**
 * A status code (`204`) or a class of them (`'2xx'`).
 * @example const expectStatus: StatusPattern[] = [200, 204, '3xx']
 */
export type StatusPattern = number | string

/**
 * Options of active probes: the checker sends a request to every endpoint on a schedule.
 * @example const active: ActiveHealthCheckOptions = { path: '/healthz', intervalMs: 5_000, unhealthyThreshold: 2 }
 */
export interface ActiveHealthCheckOptions {
  /** Path probed, appended to the endpoint URL (keeps its path prefix). @default '/' */
  path?: string
  /** Probe method. @default 'HEAD' */
  method?: 'HEAD' | 'GET' | 'OPTIONS'
  /** Time between the end of one probe and the start of the next, per endpoint. @default 10_000 */
  intervalMs?: number
  /** Each delay is `intervalMs` ± this share, at random, so probes do not march in step. @default 0.1 */
  jitterRatio?: number
  /** A probe without a response head after this long fails. @default 2_000 */
  timeoutMs?: number
  /** Statuses that count as success: codes or classes such as `'2xx'`. @default ['2xx', '3xx'] */
  expectStatus?: StatusPattern[]
  /** Consecutive successes that bring an unhealthy endpoint back. @default 2 */
  healthyThreshold?: number
  /** Consecutive failures that take a healthy endpoint out. @default 3 */
  unhealthyThreshold?: number
  /** Extra request headers (a `host`, a token). @default { 'user-agent': 'switchboard-health-checker' } */
  headers?: Record<string, string>
}

/**
 * Options of passive outlier detection, fed by {@link HealthChecker.observe}.
 * @example const passive: PassiveHealthCheckOptions = { consecutiveFailures: 5, baseEjectionMs: 30_000 }
 */
export interface PassiveHealthCheckOptions {
  /** Consecutive failed requests that eject an endpoint. @default 5 */
  consecutiveFailures?: number
  /** Share of failed requests over the window (0..1] that ejects an endpoint. @default 0.5 */
  failureRate?: number
  /** Requests needed in the window before `failureRate` applies. @default 20 */
  minRequests?: number
  /** Length of the sliding window for `failureRate`, in ms. @default 10_000 */
  windowMs?: number
  /** First ejection length; the n-th ejection lasts `baseEjectionMs × n`. @default 30_000 */
  baseEjectionMs?: number
  /** Cap of an ejection's length. Quiet for this long after returning, the count starts over. @default 300_000 */
  maxEjectionMs?: number
  /** Never eject more than this share (0..100) of the endpoints; at least one always stays. @default 50 */
  maxEjectedPercent?: number
}

/**
 * Options of {@link createHealthChecker}.
 * @example const options: HealthCheckerOptions = { endpoints, active: {}, passive: {}, slowStartMs: 30_000 }
 */
export interface HealthCheckerOptions {
  /** The endpoints to watch; the checker owns their `healthy` flag and (during slow start) `weight`. */
  endpoints: TrackedEndpoint[]
  /** Enables active probes. @default undefined (no probes) */
  active?: ActiveHealthCheckOptions
  /** Enables outlier detection from real traffic. @default undefined (never ejects) */
  passive?: PassiveHealthCheckOptions
  /**
   * Health before the first probe. `false` needs `active`: endpoints then wait for
   * `healthyThreshold` successful probes. @default true
   */
  initiallyHealthy?: boolean
  /** A returning endpoint's weight ramps from 10% to `configuredWeight` over this long; 0 is off. @default 0 */
  slowStartMs?: number
  /** Fetch used by probes: a test double, or one that verifies `https:` targets with a private CA (the gateway's `upstreams.NAME.tls`). @default globalThis.fetch */
  fetch?: typeof fetch
  /** Clock in ms. @default performance.now */
  now?: () => number
  /** Schedules a callback; pair with `clearTimer`. @default setTimeout */
  setTimer?: (callback: () => void, ms: number) => unknown
  /** Cancels what `setTimer` returned. @default clearTimeout */
  clearTimer?: (handle: unknown) => void
  /** Source of randomness for the jitter. @default Math.random */
  random?: () => number
  /** Called on every health change (same as `subscribe`). @default undefined */
  onChange?: HealthChangeListener
}

/**
 * One endpoint went in or out.
 * @example health.subscribe((e: HealthChangeEvent) => log.info({ id: e.endpoint.id, healthy: e.healthy, reason: e.reason }))
 */
export interface HealthChangeEvent {
  endpoint: TrackedEndpoint
  /** The new state. */
  healthy: boolean
  /** Why: `'active: 3 consecutive failures (ECONNREFUSED)'`, `'passive: failure rate 0.62 over 24 requests'`, `'ejection expired'`. */
  reason: string
  /** Which check decided. */
  source: 'active' | 'passive'
}

/**
 * Receives {@link HealthChangeEvent}s.
 * @example const onChange: HealthChangeListener = (e) => console.log(e.reason)
 */
export type HealthChangeListener = (event: HealthChangeEvent) => void

/**
 * The outcome of one real request, reported to {@link HealthChecker.observe}.
 * @example health.observe(endpoint, { ok: response.status < 500, status: response.status, latencyMs })
 */
export interface ObservedOutcome {
  /** False for a transport error, a timeout or a 5xx. */
  ok: boolean
  /** Response status, when there was one. */
  status?: number
  /** Request latency in ms. */
  latencyMs?: number
}

/**
 * Keeps the health of a set of endpoints current. See {@link createHealthChecker}.
 * @example
 * await using health: HealthChecker = createHealthChecker({ endpoints, active: {} })
 * health.start()
 */
export interface HealthChecker {
  /** Starts active probes (the first one right away, spread by the jitter). Throws after `stop()`. */
  start(): void
  /** Cancels timers and in-flight probes; resolves when nothing is pending. Final. */
  stop(): Promise<void>
  /** Same as {@link stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
  /** Feeds passive outlier detection with a real request's outcome. Ignored for unknown endpoints. */
  observe(endpoint: TrackedEndpoint, outcome: ObservedOutcome): void
  /** The healthy endpoint with the lowest probe latency (the first healthy one before any probe). */
  getFastest(): TrackedEndpoint | undefined
  /**
   * The healthy endpoints, in configured order. The same (frozen) array is returned while the set
   * does not change, so balancers can cache per array identity.
   */
  healthy(): TrackedEndpoint[]
  /** Registers a change listener; returns its unsubscribe function. */
  subscribe(listener: HealthChangeListener): () => void
  /** Probes every endpoint once now (joining a probe already in flight); no-op without `active`. */
  checkNow(): Promise<void>
  /** The watched endpoints. */
  readonly endpoints: readonly TrackedEndpoint[]
}

/**
 * Creates a health checker: active HTTP probes and/or passive outlier detection that flip
 * `endpoint.healthy`, record probe latency and ramp returning endpoints back in.
 * @example
 * const health = createHealthChecker({
 *   endpoints: [createEndpoint({ url: 'http://127.0.0.1:3001' }), createEndpoint({ url: 'http://127.0.0.1:3002' })],
 *   active: { path: '/healthz', intervalMs: 5_000 },
 *   passive: { consecutiveFailures: 5 },
 *   onChange: (e) => console.log(e.endpoint.id, e.healthy, e.reason),
 * })
 * health.start()
 * const target = balancer.pick(health.healthy(), request)
 */
export const createHealthChecker = (options: HealthCheckerOptions): HealthChecker => new Checker(options)

const BUCKETS = 10
const DEFAULT_INTERVAL_MS = 10_000
const DEFAULT_TIMEOUT_MS = 2_000
const DEFAULT_BASE_EJECTION_MS = 30_000
const SLOW_START_FLOOR = 0.1

interface ActiveConfig {
  path: string
  method: 'HEAD' | 'GET' | 'OPTIONS'
  intervalMs: number
  jitterRatio: number
  timeoutMs: number
  expect: (status: number) => boolean
  healthyThreshold: number
  unhealthyThreshold: number
  headers: Record<string, string>
}

type PassiveConfig = Required<PassiveHealthCheckOptions>

interface Tracked {
  readonly endpoint: TrackedEndpoint
  readonly probeUrl: string
  healthy: boolean
  activeUp: boolean
  successes: number
  failures: number
  probeTimer: unknown
  probing: Promise<void> | undefined
  controller: AbortController | undefined
  ejected: boolean
  ejections: number
  ejectionTimer: unknown
  returnedAt: number
  consecutive: number
  readonly bucketStart: Float64Array
  readonly bucketCount: Uint32Array
  readonly bucketErrors: Uint32Array
  rampTimer: unknown
  rampStart: number
  /** Weight held below `configuredWeight` by slow start (also when the ramp was cut short). */
  throttled: boolean
}

class Checker implements HealthChecker {
  readonly endpoints: readonly TrackedEndpoint[]
  readonly #tracked = new Map<TrackedEndpoint, Tracked>()
  readonly #active: ActiveConfig | undefined
  readonly #passive: PassiveConfig | undefined
  readonly #slowStartMs: number
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #setTimer: (callback: () => void, ms: number) => unknown
  readonly #clearTimer: (handle: unknown) => void
  readonly #random: () => number
  readonly #listeners = new Set<HealthChangeListener>()
  #state: 'idle' | 'running' | 'stopped' = 'idle'
  #healthyList: TrackedEndpoint[] | undefined

  constructor(options: HealthCheckerOptions) {
    if (typeof options !== 'object' || options === null) throw new RangeError('options must be an object')
    if (!Array.isArray(options.endpoints)) throw new RangeError('endpoints must be an array of endpoints')
    this.#active = options.active === undefined ? undefined : activeConfig(options.active)
    this.#passive = options.passive === undefined ? undefined : passiveConfig(options.passive)
    this.#slowStartMs = options.slowStartMs ?? 0
    if (!Number.isInteger(this.#slowStartMs) || this.#slowStartMs < 0)
      throw new RangeError('slowStartMs must be a non-negative integer')
    const initiallyHealthy = options.initiallyHealthy ?? true
    if (typeof initiallyHealthy !== 'boolean') throw new RangeError('initiallyHealthy must be a boolean')
    // Nothing but a probe could bring an endpoint up, so "start down" without probes is a dead gateway.
    if (!initiallyHealthy && this.#active === undefined)
      throw new RangeError('initiallyHealthy must be true when active checks are off')
    this.#fetch = fn(options.fetch, 'fetch') ?? ((input, init) => fetch(input, init))
    this.#now = fn(options.now, 'now') ?? (() => performance.now())
    this.#random = fn(options.random, 'random') ?? Math.random
    const setTimer = fn(options.setTimer, 'setTimer')
    const clearTimer = fn(options.clearTimer, 'clearTimer')
    if ((setTimer === undefined) !== (clearTimer === undefined))
      throw new RangeError('setTimer and clearTimer must be given together')
    this.#setTimer = setTimer ?? ((callback, ms) => setTimeout(callback, ms))
    this.#clearTimer = clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>))
    const onChange = fn(options.onChange, 'onChange')
    if (onChange) this.#listeners.add(onChange)

    for (const [i, endpoint] of options.endpoints.entries()) {
      if (typeof endpoint?.setHealthy !== 'function' || typeof endpoint.url !== 'string')
        throw new RangeError(`endpoints[${i}] must be an endpoint from createEndpoint()`)
      if (this.#tracked.has(endpoint)) throw new RangeError(`endpoints[${i}] is listed twice`)
      endpoint.setHealthy(initiallyHealthy)
      this.#tracked.set(endpoint, {
        endpoint,
        probeUrl: endpoint.url.replace(/\/+$/, '') + (this.#active?.path ?? '/'),
        healthy: initiallyHealthy,
        activeUp: initiallyHealthy,
        successes: 0,
        failures: 0,
        probeTimer: undefined,
        probing: undefined,
        controller: undefined,
        ejected: false,
        ejections: 0,
        ejectionTimer: undefined,
        returnedAt: Number.NEGATIVE_INFINITY,
        consecutive: 0,
        bucketStart: new Float64Array(BUCKETS).fill(Number.NEGATIVE_INFINITY),
        bucketCount: new Uint32Array(BUCKETS),
        bucketErrors: new Uint32Array(BUCKETS),
        rampTimer: undefined,
        rampStart: 0,
        throttled: false,
      })
    }
    this.endpoints = Object.freeze([...options.endpoints])
  }

  start(): void {
    if (this.#state === 'stopped') throw new Error('health checker was stopped; create a new one')
    if (this.#state === 'running') return
    this.#state = 'running'
    const active = this.#active
    if (!active) return
    for (const t of this.#tracked.values()) {
      this.#schedule(t, this.#random() * active.intervalMs * active.jitterRatio)
    }
  }

  async stop(): Promise<void> {
    this.#state = 'stopped'
    const pending: Promise<void>[] = []
    for (const t of this.#tracked.values()) {
      this.#cancel(t, 'probeTimer')
      this.#cancel(t, 'ejectionTimer')
      this.#cancel(t, 'rampTimer')
      // A stopped checker must not leave an endpoint throttled for good.
      if (t.throttled) t.endpoint.setWeight(t.endpoint.configuredWeight)
      t.throttled = false
      t.controller?.abort()
      if (t.probing) pending.push(t.probing)
    }
    await Promise.all(pending)
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop()
  }

  observe(endpoint: TrackedEndpoint, outcome: ObservedOutcome): void {
    const passive = this.#passive
    const t = this.#tracked.get(endpoint)
    // Responses still arriving from an endpoint that is already out say nothing new.
    if (!passive || !t || !t.healthy || this.#state === 'stopped') return
    const now = this.#now()
    const slot = this.#bucket(t, now, passive.windowMs)
    t.bucketCount[slot]++
    if (outcome.ok) {
      t.consecutive = 0
      return
    }
    t.bucketErrors[slot]++
    t.consecutive++
    let reason: string | undefined
    if (t.consecutive >= passive.consecutiveFailures) {
      reason = `passive: ${plural(t.consecutive, 'consecutive failure', 'consecutive failures')}`
    } else {
      const { count, errors } = windowTotals(t, now, passive.windowMs)
      if (count >= passive.minRequests && errors / count >= passive.failureRate)
        reason = `passive: failure rate ${(errors / count).toFixed(2)} over ${count} requests`
    }
    if (reason !== undefined) this.#eject(t, passive, now, reason)
  }

  getFastest(): TrackedEndpoint | undefined {
    let best: TrackedEndpoint | undefined
    for (const endpoint of this.healthy()) {
      const latency = endpoint.stats.probeLatencyMs
      if (best === undefined || latency < best.stats.probeLatencyMs || (Number.isNaN(best.stats.probeLatencyMs) && !Number.isNaN(latency)))
        best = endpoint
    }
    return best
  }

  healthy(): TrackedEndpoint[] {
    if (this.#healthyList === undefined) {
      const list: TrackedEndpoint[] = []
      for (const t of this.#tracked.values()) if (t.healthy) list.push(t.endpoint)
      this.#healthyList = Object.freeze(list) as TrackedEndpoint[]
    }
    return this.#healthyList
  }

  subscribe(listener: HealthChangeListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function')
    const entry: HealthChangeListener = (event) => listener(event)
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  async checkNow(): Promise<void> {
    if (!this.#active || this.#state === 'stopped') return
    await Promise.all([...this.#tracked.values()].map((t) => this.#probe(t)))
  }

  #schedule(t: Tracked, delayMs: number): void {
    this.#cancel(t, 'probeTimer')
    t.probeTimer = this.#setTimer(() => {
      t.probeTimer = undefined
      void this.#probe(t)
    }, delayMs)
  }

  #probe(t: Tracked): Promise<void> {
    const active = this.#active
    if (!active || this.#state === 'stopped') return Promise.resolve()
    // One probe at a time per endpoint: a second caller joins the one in flight.
    if (t.probing) return t.probing
    this.#cancel(t, 'probeTimer')
    t.probing = this.#runProbe(t, active).finally(() => {
      t.probing = undefined
      t.controller = undefined
      if (this.#state === 'running') {
        const jitter = active.jitterRatio * (2 * this.#random() - 1)
        this.#schedule(t, Math.max(0, active.intervalMs * (1 + jitter)))
      }
    })
    return t.probing
  }

  async #runProbe(t: Tracked, active: ActiveConfig): Promise<void> {
    const controller = new AbortController()
    t.controller = controller
    let timedOut = false
    const timer = this.#setTimer(() => {
      timedOut = true
      controller.abort()
    }, active.timeoutMs)
    const startedAt = this.#now()
    let failure: string | undefined
    let latencyMs = 0
    try {
      const response = await untilAborted(
        this.#fetch(t.probeUrl, {
          method: active.method,
          headers: active.headers,
          redirect: 'manual',
          signal: controller.signal,
        }),
        controller.signal,
      )
      latencyMs = Math.max(0, this.#now() - startedAt)
      // Release the connection; a probe only looks at the status.
      await response.body?.cancel().catch(() => {})
      if (!active.expect(response.status)) failure = `status ${response.status}`
    } catch (error) {
      failure = timedOut ? `timeout after ${active.timeoutMs}ms` : describeError(error)
    } finally {
      this.#clearTimer(timer)
    }
    // stop() aborted it: the result says nothing about the endpoint.
    if (this.#state === 'stopped') return
    if (failure === undefined) {
      t.endpoint.recordProbe(latencyMs)
      t.failures = 0
      t.successes++
      if (!t.activeUp && t.successes >= active.healthyThreshold) {
        t.activeUp = true
        this.#update(t, 'active', `active: ${plural(t.successes, 'consecutive success', 'consecutive successes')}`)
      }
    } else {
      t.endpoint.recordProbe(undefined)
      t.successes = 0
      t.failures++
      if (t.activeUp && t.failures >= active.unhealthyThreshold) {
        t.activeUp = false
        this.#update(t, 'active', `active: ${plural(t.failures, 'consecutive failure', 'consecutive failures')} (${failure})`)
      }
    }
  }

  #eject(t: Tracked, passive: PassiveConfig, now: number, reason: string): void {
    let ejected = 0
    for (const other of this.#tracked.values()) if (other.ejected) ejected++
    const total = this.#tracked.size
    const allowed = Math.min(Math.floor((total * passive.maxEjectedPercent) / 100), total - 1)
    if (ejected >= allowed) return
    // A long quiet spell since the last return forgives earlier ejections (Envoy decays the same way).
    if (now - t.returnedAt >= passive.maxEjectionMs) t.ejections = 0
    t.ejections++
    t.ejected = true
    t.consecutive = 0
    t.bucketStart.fill(Number.NEGATIVE_INFINITY)
    const durationMs = Math.min(passive.baseEjectionMs * t.ejections, passive.maxEjectionMs)
    t.ejectionTimer = this.#setTimer(() => {
      t.ejectionTimer = undefined
      t.ejected = false
      t.returnedAt = this.#now()
      this.#update(t, 'passive', 'ejection expired')
    }, durationMs)
    this.#update(t, 'passive', reason)
  }

  #update(t: Tracked, source: 'active' | 'passive', reason: string): void {
    const healthy = t.activeUp && !t.ejected
    if (healthy === t.healthy) return
    t.healthy = healthy
    t.endpoint.setHealthy(healthy)
    this.#healthyList = undefined
    if (healthy) this.#startRamp(t)
    else this.#cancel(t, 'rampTimer')
    const event: HealthChangeEvent = { endpoint: t.endpoint, healthy, reason, source }
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch (error) {
        // A broken listener must not leave the state machine half-updated; surface it like any bug.
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }

  #startRamp(t: Tracked): void {
    const slowStartMs = this.#slowStartMs
    if (slowStartMs === 0) return
    const weight = t.endpoint.configuredWeight
    t.rampStart = this.#now()
    t.throttled = true
    t.endpoint.setWeight(weight * SLOW_START_FLOOR)
    const step = slowStartMs / 10
    const tick = (): void => {
      const progress = Math.min(1, (this.#now() - t.rampStart) / slowStartMs)
      if (progress >= 1) {
        t.rampTimer = undefined
        t.throttled = false
        t.endpoint.setWeight(weight)
        return
      }
      t.endpoint.setWeight(weight * (SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * progress))
      t.rampTimer = this.#setTimer(tick, step)
    }
    this.#cancel(t, 'rampTimer')
    t.rampTimer = this.#setTimer(tick, step)
  }

  #cancel(t: Tracked, key: 'probeTimer' | 'ejectionTimer' | 'rampTimer'): void {
    if (t[key] === undefined) return
    this.#clearTimer(t[key])
    t[key] = undefined
  }

  #bucket(t: Tracked, now: number, windowMs: number): number {
    const bucketMs = windowMs / BUCKETS
    const index = Math.floor(now / bucketMs)
    const slot = ((index % BUCKETS) + BUCKETS) % BUCKETS
    const start = index * bucketMs
    if (t.bucketStart[slot] !== start) {
      t.bucketStart[slot] = start
      t.bucketCount[slot] = 0
      t.bucketErrors[slot] = 0
    }
    return slot
  }
}

function windowTotals(t: Tracked, now: number, windowMs: number): { count: number; errors: number } {
  const bucketMs = windowMs / BUCKETS
  const oldest = now - windowMs
  let count = 0
  let errors = 0
  for (let i = 0; i < BUCKETS; i++) {
    if (t.bucketStart[i] + bucketMs > oldest) {
      count += t.bucketCount[i]
      errors += t.bucketErrors[i]
    }
  }
  return { count, errors }
}

function activeConfig(options: ActiveHealthCheckOptions): ActiveConfig {
  if (typeof options !== 'object' || options === null) throw new RangeError('active must be an object')
  const path = options.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/')) throw new RangeError('active.path must start with "/"')
  const method = options.method ?? 'HEAD'
  if (method !== 'HEAD' && method !== 'GET' && method !== 'OPTIONS')
    throw new RangeError("active.method must be 'HEAD', 'GET' or 'OPTIONS'")
  const jitterRatio = options.jitterRatio ?? 0.1
  if (typeof jitterRatio !== 'number' || !(jitterRatio >= 0 && jitterRatio < 1))
    throw new RangeError('active.jitterRatio must be a number in [0, 1)')
  const headers = options.headers ?? {}
  if (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))
    throw new RangeError('active.headers must be a record of strings')
  return {
    path,
    method,
    intervalMs: positiveInteger(options.intervalMs, DEFAULT_INTERVAL_MS, 'active.intervalMs'),
    jitterRatio,
    timeoutMs: positiveInteger(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'active.timeoutMs'),
    expect: compileExpectStatus(options.expectStatus ?? ['2xx', '3xx']),
    healthyThreshold: positiveInteger(options.healthyThreshold, 2, 'active.healthyThreshold'),
    unhealthyThreshold: positiveInteger(options.unhealthyThreshold, 3, 'active.unhealthyThreshold'),
    headers: { 'user-agent': 'switchboard-health-checker', ...headers },
  }
}

function passiveConfig(options: PassiveHealthCheckOptions): PassiveConfig {
  if (typeof options !== 'object' || options === null) throw new RangeError('passive must be an object')
  const failureRate = options.failureRate ?? 0.5
  if (typeof failureRate !== 'number' || !(failureRate > 0 && failureRate <= 1))
    throw new RangeError('passive.failureRate must be a number in (0, 1]')
  const maxEjectedPercent = options.maxEjectedPercent ?? 50
  if (typeof maxEjectedPercent !== 'number' || !(maxEjectedPercent >= 0 && maxEjectedPercent <= 100))
    throw new RangeError('passive.maxEjectedPercent must be a number in [0, 100]')
  const baseEjectionMs = positiveInteger(options.baseEjectionMs, DEFAULT_BASE_EJECTION_MS, 'passive.baseEjectionMs')
  const maxEjectionMs = positiveInteger(options.maxEjectionMs, 300_000, 'passive.maxEjectionMs')
  if (maxEjectionMs < baseEjectionMs)
    throw new RangeError('passive.maxEjectionMs must be at least passive.baseEjectionMs')
  return {
    consecutiveFailures: positiveInteger(options.consecutiveFailures, 5, 'passive.consecutiveFailures'),
    failureRate,
    minRequests: positiveInteger(options.minRequests, 20, 'passive.minRequests'),
    windowMs: positiveInteger(options.windowMs, 10_000, 'passive.windowMs'),
    baseEjectionMs,
    maxEjectionMs,
    maxEjectedPercent,
  }
}

function compileExpectStatus(patterns: StatusPattern[]): (status: number) => boolean {
  if (!Array.isArray(patterns) || patterns.length === 0)
    throw new RangeError('active.expectStatus must be a non-empty list of statuses')
  const table = new Uint8Array(600)
  for (const pattern of patterns) {
    const text = String(pattern).toLowerCase()
    if (/^[1-5]xx$/.test(text)) {
      const base = Number(text[0]) * 100
      table.fill(1, base, base + 100)
    } else if (/^[1-5]\d\d$/.test(text) && (typeof pattern === 'number' || typeof pattern === 'string')) {
      table[Number(text)] = 1
    } else {
      throw new RangeError(`active.expectStatus entries must be a status (200) or a class ('2xx'), got ${text}`)
    }
  }
  return (status) => table[status] === 1
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`
}
