import { GatewayError, type GatewayErrorOptions, type HeaderRecord, isGatewayError, UpstreamTimeoutError } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import type { CircuitBreakerConfig, RetryBudgetConfig, RetryOn } from '../config/types.ts'

/** `code` of the error proxy-pass `forward()` rejects with when its `shouldRetry` hook discarded a response. */
export { RETRYABLE_STATUS_CODE } from '@switchboard/proxy-pass'
import { RETRYABLE_STATUS_CODE } from '@switchboard/proxy-pass'

/** 503 `ERR_CIRCUIT_OPEN`: every candidate endpoint's circuit breaker is open. */
export class CircuitOpenError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(503, 'ERR_CIRCUIT_OPEN', 'Circuit open for every upstream endpoint', options)
  }
}

/** 504 `ERR_DEADLINE_EXCEEDED`: the route's `deadline` passed before a response head arrived (all tries together). */
export class DeadlineExceededError extends GatewayError {
  constructor(options: GatewayErrorOptions = {}) {
    super(504, 'ERR_DEADLINE_EXCEEDED', 'Deadline exceeded', options)
  }
}

/** A response the retry hook discarded (status retry): its status and head. */
export function discardedStatus(err: unknown): { status: number; headers: HeaderRecord } | undefined {
  if (!isGatewayError(err) || err.code !== RETRYABLE_STATUS_CODE) return undefined
  return { status: err.status, headers: (err as GatewayError & { headers?: HeaderRecord }).headers ?? {} }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT', 'ConnectionRefused'])

/** Which retryable failure an upstream error is, or undefined when it is none (413, 503 no healthy, …). */
export function classify(err: unknown): RetryOn | undefined {
  const discarded = discardedStatus(err)
  if (discarded) return discarded.status
  if (err instanceof UpstreamTimeoutError || (isGatewayError(err) && err.code === 'ERR_UPSTREAM_TIMEOUT')) {
    return (err as UpstreamTimeoutError).phase === 'connect' ? 'connect' : (err as UpstreamTimeoutError).phase === 'idle' ? undefined : 'timeout'
  }
  if (!isGatewayError(err)) return undefined
  if (err.code === 'ERR_UPSTREAM_POOL_SATURATED') return 'connect'
  if (err.code !== 'ERR_BAD_GATEWAY') return undefined
  let cause: unknown = err.cause
  for (let i = 0; i < 4 && cause; i++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === 'string' && CONNECT_CODES.has(code)) return 'connect'
    cause = (cause as { cause?: unknown }).cause
  }
  return 'reset'
}

/**
 * `Retry-After` (seconds or an HTTP date) or the millisecond variants providers send
 * (`retry-after-ms`, `x-ratelimit-reset-after-ms`, `x-ratelimit-reset-ms`) in milliseconds;
 * undefined when absent or unparseable.
 * @example retryAfterMs({ 'retry-after': '2' }) // 2000
 */
export function retryAfterMs(headers: HeaderRecord, now: number = Date.now()): number | undefined {
  for (const name of ['retry-after-ms', 'x-ratelimit-reset-after-ms', 'x-ratelimit-reset-ms']) {
    const v = first(headers[name])
    if (v !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.ceil(Number(v))
  }
  const v = first(headers['retry-after'])
  if (v === undefined) return undefined
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

/** Full-jitter exponential backoff for the `retry`-th retry (1-based). */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  if (baseMs <= 0) return 0
  return random() * Math.min(maxMs, baseMs * 2 ** (retry - 1))
}

/**
 * Retries (and hedges) allowed per upstream: at most `ratio` × requests over a sliding window
 * (one-second buckets), plus a floor of `minPerSecond` retries per second accrued as time passes
 * (a token bucket that starts empty and holds at most one second's worth).
 */
export class RetryBudget {
  readonly #config: RetryBudgetConfig
  readonly #now: () => number
  readonly #requests: number[]
  readonly #retries: number[]
  #bucketAt: number
  #tokens = 0
  #tokensAt: number
  /** Retries refused by the budget so far. */
  refused = 0
  /** Retries granted so far. */
  granted = 0

  constructor(config: RetryBudgetConfig, now: () => number = Date.now) {
    this.#config = config
    this.#now = now
    const n = Math.max(1, Math.round(config.windowMs / 1000))
    this.#requests = new Array<number>(n).fill(0)
    this.#retries = new Array<number>(n).fill(0)
    this.#bucketAt = Math.floor(now() / 1000)
    this.#tokensAt = now()
  }

  /** Counts one client request (first try). */
  request(): void {
    this.#roll()
    this.#requests[this.#bucketAt % this.#requests.length]++
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    this.#roll()
    const requests = sum(this.#requests)
    const retries = sum(this.#retries)
    let ok = retries + 1 <= this.#config.ratio * requests
    if (!ok) {
      const now = this.#now()
      const cap = Math.max(1, this.#config.minPerSecond)
      this.#tokens = Math.min(cap, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#config.minPerSecond)
      this.#tokensAt = now
      if (this.#tokens >= 1) {
        this.#tokens -= 1
        ok = true
      }
    }
    if (!ok) {
      this.refused++
      return false
    }
    this.granted++
    this.#retries[this.#bucketAt % this.#retries.length]++
    return true
  }

  toJSON(): Record<string, number> {
    this.#roll()
    return { requests: sum(this.#requests), retries: sum(this.#retries), granted: this.granted, refused: this.refused }
  }

  #roll(): void {
    const at = Math.floor(this.#now() / 1000)
    const n = this.#requests.length
    for (let b = this.#bucketAt + 1; b <= at && b <= this.#bucketAt + n; b++) {
      this.#requests[b % n] = 0
      this.#retries[b % n] = 0
    }
    if (at > this.#bucketAt) this.#bucketAt = at
  }
}

function sum(a: number[]): number {
  let s = 0
  for (const x of a) s += x
  return s
}

export type CircuitState = 'closed' | 'open' | 'half-open'

/** One endpoint's circuit, as `upstreamStats()` and `GET /admin/breakers` show it. */
export interface CircuitSnapshot {
  endpoint: string
  state: CircuitState
  /** Why it last opened (absent while it never did). */
  reason?: string
  /** When an open circuit lets half-open trials in (ISO time). */
  reopenAt?: string
  /** Half-open trials admitted and not yet answered. */
  trialsInFlight: number
  consecutiveFailures: number
}

/** Called on every state change. */
export type CircuitLog = (endpoint: EndpointState, from: CircuitState, to: CircuitState, reason: string) => void

class Circuit {
  state: CircuitState = 'closed'
  reason: string | undefined
  reopenAt = 0
  consecutive = 0
  trials = 0
  trialsOk = 0
  readonly ok: number[]
  readonly failed: number[]
  bucketAt = 0

  constructor(buckets: number) {
    this.ok = new Array<number>(buckets).fill(0)
    this.failed = new Array<number>(buckets).fill(0)
  }
}

/**
 * Per-endpoint circuit breakers of one upstream: closed → open (consecutive failures or a failure
 * ratio over the window) → half-open after `openFor` (exactly `halfOpenRequests` trials) → closed
 * when they all succeed, open again on the first failure.
 */
export class CircuitBreakers {
  readonly #config: CircuitBreakerConfig
  readonly #log: CircuitLog
  readonly #now: () => number
  readonly #circuits = new Map<EndpointState, Circuit>()
  readonly #bucketMs: number

  constructor(config: CircuitBreakerConfig, log: CircuitLog, now: () => number = Date.now) {
    this.#config = config
    this.#log = log
    this.#now = now
    this.#bucketMs = Math.max(1, config.windowMs / 10)
  }

  /** Endpoints whose circuit admits a request now (closed, or half-open with a trial free). */
  admit(candidates: readonly EndpointState[]): EndpointState[] {
    const out: EndpointState[] = []
    for (const ep of candidates) if (this.#admits(this.#circuit(ep), ep)) out.push(ep)
    return out
  }

  /** The balancer chose `ep`: a half-open circuit spends one trial on it. Returns whether it was a trial. */
  claim(ep: EndpointState): boolean {
    const c = this.#circuit(ep)
    if (c.state !== 'half-open') return false
    c.trials++
    return true
  }

  /** An answer (or failure) from `ep`; `trial` is what {@link claim} returned for that request. */
  record(ep: EndpointState, ok: boolean, trial: boolean): void {
    const c = this.#circuit(ep)
    const now = this.#now()
    if (c.state === 'half-open') {
      if (!trial) return
      if (!ok) return this.#open(ep, c, 'half-open trial failed')
      if (++c.trialsOk >= this.#config.halfOpenRequests) {
        this.#move(ep, c, 'closed', `${c.trialsOk} half-open trials succeeded`)
        c.consecutive = 0
        c.ok.fill(0)
        c.failed.fill(0)
      }
      return
    }
    if (c.state === 'open') return
    this.#roll(c, now)
    const i = Math.floor(now / this.#bucketMs) % c.ok.length
    if (ok) {
      c.ok[i]++
      c.consecutive = 0
      return
    }
    c.failed[i]++
    c.consecutive++
    if (c.consecutive >= this.#config.consecutiveFailures) return this.#open(ep, c, `${c.consecutive} consecutive failures`)
    const failed = sum(c.failed)
    const total = failed + sum(c.ok)
    if (total >= this.#config.minRequests && failed / total >= this.#config.failureRatio) {
      this.#open(ep, c, `failure ratio ${(failed / total).toFixed(2)} over ${total} requests`)
    }
  }

  snapshot(ep: EndpointState): CircuitSnapshot {
    const c = this.#circuit(ep)
    this.#admits(c, ep)
    const out: CircuitSnapshot = { endpoint: ep.url, state: c.state, trialsInFlight: c.state === 'half-open' ? c.trials - c.trialsOk : 0, consecutiveFailures: c.consecutive }
    if (c.reason) out.reason = c.reason
    if (c.state === 'open') out.reopenAt = new Date(c.reopenAt).toISOString()
    return out
  }

  #admits(c: Circuit, ep: EndpointState): boolean {
    if (c.state === 'open' && this.#now() >= c.reopenAt) {
      c.trials = 0
      c.trialsOk = 0
      this.#move(ep, c, 'half-open', `open for ${this.#config.openForMs} ms`)
    }
    if (c.state === 'closed') return true
    if (c.state === 'half-open') return c.trials < this.#config.halfOpenRequests
    return false
  }

  #open(ep: EndpointState, c: Circuit, reason: string): void {
    c.reopenAt = this.#now() + this.#config.openForMs
    c.reason = reason
    this.#move(ep, c, 'open', reason)
  }

  #move(ep: EndpointState, c: Circuit, to: CircuitState, reason: string): void {
    const from = c.state
    c.state = to
    this.#log(ep, from, to, reason)
  }

  #roll(c: Circuit, now: number): void {
    const at = Math.floor(now / this.#bucketMs)
    const n = c.ok.length
    for (let b = c.bucketAt + 1; b <= at && b <= c.bucketAt + n; b++) {
      c.ok[b % n] = 0
      c.failed[b % n] = 0
    }
    if (at > c.bucketAt) c.bucketAt = at
  }

  #circuit(ep: EndpointState): Circuit {
    let c = this.#circuits.get(ep)
    if (!c) {
      c = new Circuit(10)
      c.bucketAt = Math.floor(this.#now() / this.#bucketMs)
      this.#circuits.set(ep, c)
    }
    return c
  }
}
