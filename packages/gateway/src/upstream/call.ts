import { type HeaderRecord, NoHealthyUpstreamError, type RequestInfo } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import type { UpstreamPool } from '@switchboard/proxy-pass'
import type { RetryConfig, RetryOn, RouteConfig } from '../config/types.ts'
import type { UpstreamRuntime } from '../runtime/upstream.ts'
import { backoffMs, CircuitOpenError, classify, DeadlineExceededError, discardedStatus, retryAfterMs } from './resilience.ts'

/** Per-try settings the interceptors leave for `send` (the status-retry hook, the deadline). */
export interface AttemptContext {
  /** Asked with a response head before it reaches the client: true discards it for a retry. */
  shouldRetry?: (status: number, headers: HeaderRecord) => boolean
  /** Epoch ms by which the response head must arrive (the route's `deadline`). */
  deadlineAt?: number
  /** Send `X-Request-Timeout: <ms left>` upstream. */
  deadlineHeader?: boolean
  /** A hedge of a call already counted by the retry budget (its own cost was taken as a retry). */
  hedged?: boolean
}

/** How one send to one endpoint went, for stats and health. */
export interface Verdict {
  readonly ok: boolean
  readonly status?: number
}

/**
 * One logical call to an upstream: proxying a request, revalidating a cached entry, opening a
 * WebSocket tunnel or a discovery probe. `send` does the transport work for one endpoint; the
 * dispatch chain around it picks endpoints, keeps stats and health, and retries.
 */
export interface UpstreamCall<R> {
  readonly upstream: UpstreamRuntime
  /** What the balancer sees. */
  readonly request: RequestInfo
  /** What this call is, for interceptors and logs. */
  readonly kind: 'proxy' | 'fetch' | 'tunnel' | 'probe'
  /** May it be sent again after a failure before any response byte (idempotent, body replayable)? */
  readonly retryable: boolean
  /** Send to exactly this endpoint (discovery probes); otherwise the balancer picks. */
  readonly pinned?: EndpointState
  /** Endpoints tried so far in this call, in order (filled by the dispatch). */
  readonly tried: EndpointState[]
  /** Runs right before `send` for the chosen endpoint (sticky cookies, 100-continue). */
  prepare?(endpoint: EndpointState): void
  /** Sends to one endpoint through its pool. */
  send(endpoint: EndpointState, pool: UpstreamPool): Promise<R>
  /** Judges a result for stats and health. */
  judge(result: R): Verdict
  /** True once the client saw part of the response (or went away): nothing may be retried then. */
  committed(): boolean
  /** The route the call serves (deadline, `retryNonIdempotent`); absent for probes. */
  readonly route?: RouteConfig
  /** Can the body be sent again (none, or buffered)? Independent of the method. @default retryable */
  readonly replayable?: boolean
  /** Set by the interceptors before each `send`; calls that honour it declare it. */
  readonly attempt?: AttemptContext
  /** True when the call was withdrawn on purpose (a hedge that lost): its failure is not the endpoint's. */
  cancelled?(): boolean
}

/** Sends one call; interceptors wrap it. */
export type UpstreamDispatch = <R>(call: UpstreamCall<R>) => Promise<R>

/**
 * Wraps a dispatch, undici-style: timeouts, retries, circuit breakers and metrics plug in here.
 * @example
 * const logTries: UpstreamInterceptor = (next) => async (call) => {
 *   try { return await next(call) } finally { console.log(call.kind, call.tried.map((e) => e.url)) }
 * }
 */
export type UpstreamInterceptor = (next: UpstreamDispatch) => UpstreamDispatch

/**
 * The innermost dispatch: pick an endpoint (the pinned one, else the balancer over healthy ones
 * not tried yet), then begin → send → end → observe. Every kind of call feeds the same stats
 * and passive health, so a probe or a revalidation counts like a proxied request.
 */
export const sendOnce: UpstreamDispatch = async <R>(call: UpstreamCall<R>): Promise<R> => {
  const upstream = call.upstream
  const endpoint = call.pinned ?? pick(call)
  if (!endpoint) throw new NoHealthyUpstreamError({ details: { upstream: upstream.name } })
  call.tried.push(endpoint)
  const breakers = upstream.breakers
  const trial = breakers !== undefined && !call.pinned && breakers.claim(endpoint)
  call.prepare?.(endpoint)
  const started = endpoint.begin()
  let result: R
  try {
    result = await call.send(endpoint, upstream.pool(endpoint))
  } catch (err) {
    if (call.cancelled?.()) {
      endpoint.end(started, true)
      throw err
    }
    // A response discarded for a retry is an answer: a 429 is no failure of the endpoint, a 503 is.
    const discarded = discardedStatus(err)
    const ok = discarded !== undefined && discarded.status < 500
    endpoint.end(started, ok)
    upstream.checker.observe(endpoint, discarded ? { ok, status: discarded.status } : { ok: false })
    if (breakers && !call.pinned) breakers.record(endpoint, ok, trial)
    throw err
  }
  const verdict = call.judge(result)
  endpoint.end(started, verdict.ok)
  upstream.checker.observe(endpoint, verdict.status === undefined ? { ok: verdict.ok } : { ok: verdict.ok, status: verdict.status })
  if (breakers && !call.pinned) breakers.record(endpoint, verdict.ok, trial)
  return result
}

/**
 * The configured retry rule (`upstreams.X.retry`, or the `retries: N` shorthand) and the route's
 * `deadline`: failures listed in `retry.on` before any response byte reached the client are sent
 * again (another endpoint when one is left) after full-jitter backoff or the upstream's
 * `Retry-After` (up to `retryAfterCap`), while attempts, the retry budget and the deadline allow.
 */
export const resilienceInterceptor: UpstreamInterceptor = (next) =>
  function resilience<R>(call: UpstreamCall<R>): Promise<R> {
    return new RetryingCall(call, next).run()
  }

/**
 * The state of one call under {@link resilienceInterceptor}: the rule, the deadline, tries so far.
 * A try that succeeds costs one promise reaction; the retry logic (and its awaits) runs only after
 * a failure.
 */
class RetryingCall<R> {
  readonly #call: UpstreamCall<R>
  readonly #next: UpstreamDispatch
  readonly #policy: RetryConfig
  readonly #deadlineAt: number | undefined
  readonly #allowed: boolean
  readonly #statuses: boolean
  #tries = 0
  /** The delay before the next try, set by a status retry or a failure. */
  #wait = 0
  #statusHook: ((status: number, headers: HeaderRecord) => boolean) | undefined

  constructor(call: UpstreamCall<R>, next: UpstreamDispatch) {
    this.#call = call
    this.#next = next
    const upstream = call.upstream
    const route = call.route
    const attempt = call.attempt
    // A route's own `retry:` replaces its upstream's rule (the upstream's budget still applies).
    this.#policy = route?.retry ?? upstream.retry
    // A hedge shares the deadline of the call it hedges (set before it starts).
    this.#deadlineAt = route?.deadlineMs !== undefined && attempt ? (attempt.deadlineAt ??= Date.now() + route.deadlineMs) : undefined
    if (attempt && this.#deadlineAt !== undefined) attempt.deadlineHeader = route?.deadlineHeader
    if (!call.pinned && !attempt?.hedged) upstream.budget?.request()
    this.#allowed = !call.pinned && (call.retryable || (route?.retryNonIdempotent === true && (call.replayable ?? call.retryable)))
    this.#statuses = this.#allowed && this.#policy.on.some(isStatus)
  }

  /** Sends once more; a failure goes to {@link #failed}, which may try again. */
  run(): Promise<R> {
    this.#tries++
    const attempt = this.#call.attempt
    if (attempt) attempt.shouldRetry = this.#statuses ? (this.#statusHook ??= (status, headers) => this.#retryStatus(status, headers)) : undefined
    return this.#next(this.#call).then(undefined, (err: unknown) => this.#failed(err))
  }

  async #failed(err: unknown): Promise<R> {
    const policy = this.#policy
    if (this.#deadlineAt !== undefined && Date.now() >= this.#deadlineAt && classify(err) === 'timeout') {
      throw new DeadlineExceededError({ cause: err, details: { deadlineMs: this.#call.route?.deadlineMs, tries: this.#tries } })
    }
    if (!discardedStatus(err)) {
      if (err instanceof NoHealthyUpstreamError || err instanceof CircuitOpenError) throw err
      const kind = classify(err)
      if (kind === undefined || !policy.on.includes(kind)) throw err
      this.#wait = backoffMs(this.#tries, policy.backoff.baseMs, policy.backoff.maxMs)
      if (!this.#mayRetry(this.#wait)) throw err
    }
    if (this.#wait > 0) await sleep(this.#wait)
    this.#wait = 0
    if (this.#call.committed()) throw err
    return this.run()
  }

  /** The status-retry hook of one try: true discards this response and retries after a delay. */
  #retryStatus(status: number, headers: HeaderRecord): boolean {
    const policy = this.#policy
    if (!policy.on.includes(status)) return false
    const after = retryAfterMs(headers)
    if (after !== undefined && after > policy.retryAfterCapMs) return false
    const delay = Math.max(after ?? 0, backoffMs(this.#tries, policy.backoff.baseMs, policy.backoff.maxMs))
    if (!this.#mayRetry(delay)) return false
    this.#wait = delay
    return true
  }

  /** May one more try start after waiting `delay` ms? Spends budget when it says yes. */
  #mayRetry(delay: number): boolean {
    const call = this.#call
    const policy = this.#policy
    if (!this.#allowed || this.#tries >= policy.attempts || call.committed()) return false
    if (!policy.reuseEndpoints && remaining(call).length === 0) return false
    if (this.#deadlineAt !== undefined && Date.now() + delay >= this.#deadlineAt) return false
    const budget = call.upstream.budget
    return budget ? budget.tryRetry() : true
  }
}

function isStatus(on: RetryOn): boolean {
  return typeof on === 'number'
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Today's retry rule: a retryable call that failed before any response byte is sent again to an
 * endpoint it has not tried, up to `upstreams.X.retries` extra attempts.
 */
export const retryInterceptor: UpstreamInterceptor = (next) =>
  async function retry<R>(call: UpstreamCall<R>): Promise<R> {
    let left = call.retryable && !call.pinned ? call.upstream.config.retries : 0
    for (;;) {
      try {
        return await next(call)
      } catch (err) {
        if (left-- <= 0 || call.committed() || err instanceof NoHealthyUpstreamError) throw err
        if (remaining(call).length === 0) throw err
      }
    }
  }

/**
 * Composes interceptors around {@link sendOnce}; the first in the list is the outermost.
 * @example const call = createDispatch([retryInterceptor])
 */
export function createDispatch(interceptors: readonly UpstreamInterceptor[]): UpstreamDispatch {
  let dispatch = sendOnce
  for (let i = interceptors.length - 1; i >= 0; i--) dispatch = interceptors[i](dispatch)
  return dispatch
}

/** The default chain: deadline, retries, budget and breakers around one send. */
export const callUpstream: UpstreamDispatch = createDispatch([resilienceInterceptor])

function pick<R>(call: UpstreamCall<R>): EndpointState | undefined {
  const upstream = call.upstream
  let candidates = call.tried.length === 0 ? upstream.candidates() : remaining(call)
  // Every endpoint tried already: a retry goes back to one of them.
  if (candidates.length === 0 && call.tried.length > 0) candidates = upstream.candidates()
  if (upstream.breakers && candidates.length > 0) {
    const admitted = upstream.breakers.admit(candidates)
    if (admitted.length === 0) {
      // Retrying an endpoint tried before is fine; only when none admits is the circuit the answer.
      const again = call.tried.length > 0 ? upstream.breakers.admit(upstream.candidates()) : admitted
      if (again.length === 0) throw new CircuitOpenError({ details: { upstream: upstream.name } })
      candidates = again
    } else candidates = admitted
  }
  return upstream.balancer.pick(candidates, call.request) as EndpointState | undefined
}

function remaining<R>(call: UpstreamCall<R>): EndpointState[] {
  return call.upstream.candidates().filter((c) => !call.tried.includes(c))
}
