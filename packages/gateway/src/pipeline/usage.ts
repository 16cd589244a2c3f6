import { estimatePromptTokens, requestedModel, TOKEN_USAGE_STATE, type TokenUsage, type UpstreamResponse } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import type { UpstreamPool } from '@switchboard/proxy-pass'
import { BODY_LIMIT_STATE } from '@switchboard/policies'
import type { LimitsConfig, RouteConfig, RouteUsageConfig } from '../config/types.ts'
import { UsageMeter } from '../llm/meter.ts'
import type { RouteRuntime } from '../runtime/runtime.ts'
import { basePathOf, type UpstreamRuntime } from '../runtime/upstream.ts'
import type { GatewayExchange } from '../transport/exchange.ts'
import { type AttemptContext, callUpstream, type UpstreamCall, type Verdict } from '../upstream/call.ts'
import { parseJson } from './json-body.ts'
import { discardForRetry, headWait, IDEMPOTENT, pointAt, withDeadline } from './terminals.ts'

/** How a metered request is sent: the body upstream, and what the gateway added to it (so the meter removes it again). */
export interface UsagePlan {
  /** The body to send instead of the client's; undefined sends the client's bytes. */
  readonly body: Uint8Array | undefined
  /** The gateway turned `stream_options.include_usage` on. */
  readonly stripFinal: boolean
  /** The gateway turned `stream_options.continuous_usage_stats` on. */
  readonly stripChunkUsage: boolean
}

/**
 * What a metered request needs upstream: an OpenAI stream (`stream: true`) whose client did not ask
 * for `stream_options.include_usage` gets it (and `continuous_usage_stats` with `continuousUsage`).
 * When the body has no `stream_options` the member is inserted after the opening brace and every
 * other byte stays as the client sent it; otherwise the body is serialised again.
 * @example
 * const bytes = new TextEncoder().encode('{"stream":true}')
 * const plan = planUsage({ format: 'openai', continuousUsage: false }, { stream: true }, bytes)
 * new TextDecoder().decode(plan.body) // '{"stream_options":{"include_usage":true},"stream":true}'
 */
export function planUsage(config: RouteUsageConfig, body: Record<string, unknown>, bytes: Uint8Array): UsagePlan {
  if (config.format !== 'openai' || body.stream !== true) return { body: undefined, stripFinal: false, stripChunkUsage: false }
  const given = body.stream_options
  const options = typeof given === 'object' && given !== null && !Array.isArray(given) ? (given as Record<string, unknown>) : undefined
  const stripFinal = options?.include_usage !== true
  const stripChunkUsage = config.continuousUsage && options?.continuous_usage_stats !== true
  if (!stripFinal && !stripChunkUsage) return { body: undefined, stripFinal, stripChunkUsage }
  const wanted: Record<string, unknown> = { ...options, include_usage: true }
  if (config.continuousUsage) wanted.continuous_usage_stats = true
  if (given === undefined) {
    const open = bytes.indexOf(0x7b)
    const rest = bytes.subarray(open + 1)
    // `{}` gets the member alone; any other object a comma after it.
    const empty = rest[rest.findIndex((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)] === 0x7d
    const member = encoder.encode(`"stream_options":${JSON.stringify(wanted)}${empty ? '' : ','}`)
    const out = new Uint8Array(bytes.byteLength + member.byteLength)
    out.set(bytes.subarray(0, open + 1))
    out.set(member, open + 1)
    out.set(rest, open + 1 + member.byteLength)
    return { body: out, stripFinal, stripChunkUsage }
  }
  return { body: encoder.encode(JSON.stringify({ ...body, stream_options: wanted })), stripFinal, stripChunkUsage }
}

/**
 * The terminal step of a route with `usage:` (token accounting): a request whose body is a JSON
 * object is sent with {@link planUsage}'s changes, the response streams back through a
 * {@link UsageMeter}, and its {@link TokenUsage} is set on `ex.state` (TOKEN_USAGE_STATE) before
 * this resolves, also when the client went away or the stream was cut. A client that goes away
 * cancels the upstream request at once. Resolves false, having done nothing, for a request
 * without a JSON object body (the caller proxies it as usual, unmetered).
 * @example
 * if (route.config.usage && (await meteredToUpstream(ex, route, limits))) return
 */
export async function meteredToUpstream(ex: GatewayExchange, route: RouteRuntime, limits: LimitsConfig): Promise<boolean> {
  const config = route.config.usage
  if (!config || ex.upgrade || !ex.hasBody) return false
  const bytes = await ex.readBody(Math.min(limits.maxBodyBytes, (ex.stateValue(BODY_LIMIT_STATE) as number | undefined) ?? Number.POSITIVE_INFINITY))
  // Parsed again rather than taken from `ex.body`: a policy (token-budget) may have rewritten the bytes since routing read them.
  const body = parseJson(bytes)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false
  const fields = body as Record<string, unknown>
  const plan = planUsage(config, fields, bytes)
  if (plan.body) ex.replaceBody(plan.body)
  const meter = new UsageMeter({
    format: config.format,
    stripFinal: plan.stripFinal,
    stripChunkUsage: plan.stripChunkUsage,
    requestModel: requestedModel(fields),
    promptEstimate: estimatePromptTokens(fields),
  })
  const call = new MeteredCall(ex, route.upstream, route.config, meter, limits.sendTimeoutMs)
  try {
    await callUpstream(call)
  } finally {
    if (call.usage) ex.state.set(TOKEN_USAGE_STATE, { ...call.usage() })
  }
  return true
}

const NO_BODY_STATUS = new Set([204, 304])

/** How one metered send ended, for stats and health. */
interface MeteredResult {
  readonly status: number
  /** The upstream body ended cleanly (or there was none). */
  readonly complete: boolean
}

/**
 * One metered send: like the proxying terminal it resolves when the response is done (so the
 * endpoint's in-flight count covers the whole stream), but the body goes through the meter and
 * `ex.respond()` rather than proxy-pass's pipe.
 */
class MeteredCall implements UpstreamCall<MeteredResult> {
  readonly kind = 'proxy'
  readonly tried: EndpointState[] = []
  readonly upstream: UpstreamRuntime
  readonly request: GatewayExchange
  readonly route: RouteConfig
  readonly retryable: boolean
  readonly replayable = true
  readonly attempt: AttemptContext = {}
  /** Set once a response head was read: the usage as far as it got. */
  usage: (() => TokenUsage) | undefined
  readonly #meter: UsageMeter
  readonly #sendTimeoutMs: number

  constructor(ex: GatewayExchange, upstream: UpstreamRuntime, route: RouteConfig, meter: UsageMeter, sendTimeoutMs: number) {
    this.request = ex
    this.upstream = upstream
    this.route = route
    this.#meter = meter
    this.#sendTimeoutMs = sendTimeoutMs
    this.retryable = IDEMPOTENT.has(ex.method)
  }

  prepare(endpoint: EndpointState): void {
    pointAt(this.request, this.upstream, endpoint)
  }

  async send(endpoint: EndpointState, pool: UpstreamPool): Promise<MeteredResult> {
    const ex = this.request
    const timeouts = ex.upstreamTimeouts ?? this.upstream.config.timeouts
    ex.upstreamTries++
    // The client going away (before or during the answer) cancels the upstream request at once.
    const abort = new AbortController()
    let res: UpstreamResponse | undefined
    let settled = false
    ex.onDone(() => {
      if (settled) return
      abort.abort(new Error('client closed the connection'))
      res?.cancel()
    })
    try {
      res = discardForRetry(
        await ex.requestUpstream({
          pool,
          poolLimits: this.upstream.config.pool,
          method: ex.upstreamMethod ?? ex.method,
          target: basePathOf(endpoint.url) + ex.upstreamTarget,
          headers: withDeadline(this.upstream.editsFor(endpoint, ex.upstreamHeaderEdits, ex.headers), this.attempt),
          clientIp: ex.peerIp,
          body: ex.bufferedBody,
          trustForwarded: ex.trustForwarded,
          responseTimeoutMs: headWait(timeouts.responseMs, this.attempt),
          idleTimeoutMs: timeouts.idleMs,
          signal: abort.signal,
        }),
        this.attempt,
      )
      const meter = this.#meter
      const headers: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = typeof v === 'number' ? String(v) : v
      // Error answers pass through unmetered: the provider generated nothing (0 tokens, as reported).
      if (res.status >= 400) {
        const model = meter.usage().model
        this.#read(() => ({ model, promptTokens: 0, completionTokens: 0, source: 'reported' }))
        if (ex.clientGone) return cancelled(res)
        await ex.respond(res.status, headers, res.body)
        return { status: res.status, complete: true }
      }
      this.#read(() => meter.usage())
      if (ex.method === 'HEAD' || NO_BODY_STATUS.has(res.status)) {
        res.cancel()
        await ex.respond(res.status, headers)
        return { status: res.status, complete: true }
      }
      if (ex.clientGone) return cancelled(res)
      const contentType = headers['content-type']
      meter.begin(typeof contentType === 'string' ? contentType : undefined)
      // Removed bytes change the length (SSE answers rarely declare one).
      if (meter.rewrites) delete headers['content-length']
      const state = { complete: false }
      // A client that stops reading is cut after `server.limits.sendTimeout`, which frees the upstream.
      const stalled = (): void => ex.abortResponse()
      await ex.respond(res.status, headers, metered(res.body, meter, state, { ms: this.#sendTimeoutMs, stalled }))
      return { status: res.status, complete: state.complete }
    } finally {
      settled = true
    }
  }

  /**
   * From the response head on, the exchange's usage is a live view of the meter: layers that
   * record when the client connection closes (the observer's `onDone`) may read it before the
   * upstream side has wound down; {@link meteredToUpstream} replaces it with a snapshot at the end.
   */
  #read(usage: () => TokenUsage): void {
    this.usage = usage
    this.request.state.set(TOKEN_USAGE_STATE, {
      get model() {
        return usage().model
      },
      get promptTokens() {
        return usage().promptTokens
      },
      get completionTokens() {
        return usage().completionTokens
      },
      get source() {
        return usage().source
      },
    } satisfies TokenUsage)
  }

  judge(result: MeteredResult): Verdict {
    // A client that left is no failure of the endpoint; an upstream that cut its answer is.
    return { ok: result.status < 500 && (result.complete || this.request.clientGone), status: result.status }
  }

  committed(): boolean {
    return this.request.committed
  }
}

/**
 * The upstream body through the meter: each chunk goes on at once, minus what the meter removes.
 * A chunk the client side has not taken within `send.ms` (the transport stopped pulling: the
 * client does not read) calls `send.stalled`.
 */
async function* metered(
  body: AsyncIterable<Uint8Array>,
  meter: UsageMeter,
  state: { complete: boolean },
  send: { ms: number; stalled: () => void },
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    const out = meter.push(chunk)
    if (out.byteLength === 0) continue
    const timer = setTimeout(send.stalled, send.ms)
    try {
      yield out
    } finally {
      clearTimeout(timer)
    }
  }
  const rest = meter.finish()
  state.complete = true
  if (rest.byteLength > 0) yield rest
}

function cancelled(res: UpstreamResponse): MeteredResult {
  res.cancel()
  return { status: res.status, complete: false }
}

const encoder = new TextEncoder()
