import { NoHealthyUpstreamError, type RequestInfo } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import type { UpstreamPool } from '@switchboard/proxy-pass'
import type { UpstreamRuntime } from '../runtime/upstream.ts'

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
  call.prepare?.(endpoint)
  const started = endpoint.begin()
  let result: R
  try {
    result = await call.send(endpoint, upstream.pool(endpoint))
  } catch (err) {
    endpoint.end(started, false)
    upstream.checker.observe(endpoint, { ok: false })
    throw err
  }
  const verdict = call.judge(result)
  endpoint.end(started, verdict.ok)
  upstream.checker.observe(endpoint, verdict.status === undefined ? { ok: verdict.ok } : { ok: verdict.ok, status: verdict.status })
  return result
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

/** The default chain: retries around one send. */
export const callUpstream: UpstreamDispatch = createDispatch([retryInterceptor])

function pick<R>(call: UpstreamCall<R>): EndpointState | undefined {
  const candidates = call.tried.length === 0 ? call.upstream.candidates() : remaining(call)
  return call.upstream.balancer.pick(candidates, call.request) as EndpointState | undefined
}

function remaining<R>(call: UpstreamCall<R>): EndpointState[] {
  return call.upstream.candidates().filter((c) => !call.tried.includes(c))
}
