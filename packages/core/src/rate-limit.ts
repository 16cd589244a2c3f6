// The rate-limit algorithms as pure functions over text state, shared by the memory store and the
// rate-limit policy's compare-and-set path; the Redis store implements the same rules in Lua
// (packages/store/src/redis.ts), and the conformance suite (packages/policies/test/
// rate-limit-conformance.ts) holds them to identical answers. All arithmetic is on
// integers (token buckets count in token×windowMs units) so doubles in JS and Lua agree exactly.
import type { Store } from './store.ts'

type RateLimitCapability = NonNullable<Store['rateLimit']>
/** What a rate-limit decision is asked (the core `Store.rateLimit` request). */
export type RateLimitRequest = Parameters<RateLimitCapability>[1]
/** The answer of a rate-limit decision (the core `Store.rateLimit` result). */
export type RateLimitResult = Awaited<ReturnType<RateLimitCapability>>
/** `token-bucket`, `fixed-window`, `sliding-window-log` or `sliding-window-counter`. */
export type RateLimitAlgorithm = RateLimitRequest['algorithm']
/** One `limit` per `windowMs` (plus `burst` for token buckets). */
export type RateLimitWindow = RateLimitRequest['windows'][number]
/** The state of one window after a decision. */
export type RateLimitWindowResult = RateLimitResult['windows'][number]

/** Every algorithm name, in documentation order. */
export const RATE_LIMIT_ALGORITHMS: readonly RateLimitAlgorithm[] = ['fixed-window', 'sliding-window-counter', 'sliding-window-log', 'token-bucket']

/** One window's decision: its answer, the state to write back and that state's TTL. */
export interface WindowStep {
  /** This window alone would admit the request. */
  readonly ok: boolean
  readonly result: RateLimitWindowResult
  /** New state text. */
  readonly state: string
  /** How long the state matters, in ms (≥ 1); past it the absent state gives the same answers. */
  readonly ttlMs: number
}

/**
 * Decides one request over every window: all windows must admit it, and only then does each
 * consume `cost` (all or nothing). `states[i]` is window i's stored text, `undefined` when absent.
 * Returns the result and the new state of every window.
 * @example
 * const { result, steps } = decideRateLimit({ algorithm: 'fixed-window', windows: [{ limit: 5, windowMs: 1000 }], nowMs: 0 }, [undefined])
 */
export function decideRateLimit(
  request: RateLimitRequest,
  states: readonly (string | undefined)[],
): { result: RateLimitResult; steps: WindowStep[] } {
  if (request.windows.length === 1) {
    // One window: the check and the consuming step are the same call (consumption happens only
    // when the window admits the request), so skip the separate checking pass.
    const step = stepWindow(request.algorithm, request.windows[0]!, states[0], request.nowMs ?? Date.now(), request.cost ?? 1, true)
    return { result: { allowed: step.ok, retryAfterMs: step.ok ? 0 : step.result.retryAfterMs, windows: [step.result] }, steps: [step] }
  }
  const now = request.nowMs ?? Date.now()
  const cost = request.cost ?? 1
  let allowed = true
  for (let i = 0; i < request.windows.length; i++) {
    if (!stepWindow(request.algorithm, request.windows[i]!, states[i], now, cost, false).ok) allowed = false
  }
  const steps = request.windows.map((w, i) => stepWindow(request.algorithm, w, states[i], now, cost, allowed))
  let retryAfterMs = 0
  for (const step of steps) if (step.result.retryAfterMs > retryAfterMs) retryAfterMs = step.result.retryAfterMs
  return { result: { allowed, retryAfterMs: allowed ? 0 : retryAfterMs, windows: steps.map((s) => s.result) }, steps }
}

/**
 * One window at time `now`: whether it admits `cost` units, and its state after consuming them when
 * `consume` is true (the whole request was admitted) or without consuming when false.
 */
export function stepWindow(
  algorithm: RateLimitAlgorithm,
  window: RateLimitWindow,
  state: string | undefined,
  now: number,
  cost: number,
  consume: boolean,
): WindowStep {
  const L = window.limit
  const W = window.windowMs
  const nums = state === undefined || state === '' ? [] : state.split(algorithm === 'sliding-window-log' ? ',' : ':').map(Number)
  const valid = nums.every((n) => Number.isFinite(n))
  switch (algorithm) {
    case 'fixed-window': {
      const start = now - (now % W)
      const count = valid && nums.length === 2 && nums[0] === start ? nums[1]! : 0
      const ok = count + cost <= L
      const used = ok && consume ? count + cost : count
      const resetMs = start + W - now
      return {
        ok,
        result: { remaining: Math.max(0, L - used), resetMs: used > 0 ? resetMs : 0, retryAfterMs: ok ? 0 : resetMs },
        state: `${start}:${used}`,
        ttlMs: resetMs + W,
      }
    }
    case 'sliding-window-counter': {
      let start = now - (now % W)
      let curr = 0
      let prev = 0
      if (valid && nums.length === 3) {
        if (nums[0]! >= start) {
          // Same window (or a clock that stepped back: keep the newer window).
          start = nums[0]!
          curr = nums[1]!
          prev = nums[2]!
        } else if (nums[0] === start - W) {
          prev = nums[1]!
        }
      }
      const elapsed = Math.max(0, now - start)
      const weighted = Math.floor((prev * (W - elapsed)) / W)
      const ok = weighted + curr + cost <= L
      if (ok && consume) curr += cost
      const used = weighted + curr
      const toEnd = Math.max(0, start + W - now)
      let retryAfterMs = 0
      if (!ok) {
        // The first elapsed time e at which floor(prev × (W − e) / W) ≤ x, i.e. e > W − (x + 1)·W/prev.
        const x = L - curr - cost
        if (x >= 0 && prev > 0) retryAfterMs = W - Math.ceil(((x + 1) * W) / prev) + 1 - elapsed
        else {
          const y = L - cost
          retryAfterMs = y >= 0 && curr > 0 ? toEnd + W - Math.ceil(((y + 1) * W) / curr) + 1 : toEnd + W
        }
        retryAfterMs = Math.max(1, retryAfterMs)
      }
      const resetMs = curr > 0 ? toEnd + W : weighted > 0 ? toEnd : 0
      return {
        ok,
        result: { remaining: Math.max(0, L - used), resetMs, retryAfterMs },
        state: `${start}:${curr}:${prev}`,
        ttlMs: toEnd + 2 * W,
      }
    }
    case 'sliding-window-log': {
      const log = valid ? nums.filter((t) => t > now - W) : []
      const ok = log.length + cost <= L
      if (ok && consume) {
        // Sorted insert: equal to a push unless a clock stepped back.
        let at = log.length
        while (at > 0 && log[at - 1]! > now) at--
        log.splice(at, 0, ...new Array<number>(cost).fill(now))
      }
      let retryAfterMs = 0
      if (!ok) retryAfterMs = cost > L ? W : Math.max(1, log[log.length + cost - L - 1]! + W - now)
      const resetMs = log.length > 0 ? log[log.length - 1]! + W - now : 0
      return {
        ok,
        result: { remaining: Math.max(0, L - log.length), resetMs, retryAfterMs },
        state: log.join(','),
        ttlMs: Math.max(1, resetMs) + W,
      }
    }
    case 'token-bucket': {
      // Units: one token is W units and the bucket refills L units per ms, so all math is integral.
      const full = (window.burst ?? L) * W
      let units = full
      let ts = now
      if (valid && nums.length === 2) {
        ts = Math.max(nums[1]!, now)
        units = Math.min(full, nums[0]! + Math.max(0, now - nums[1]!) * L)
      }
      const need = cost * W
      const ok = units >= need
      if (ok && consume) units -= need
      const resetMs = Math.ceil((full - units) / L)
      const retryAfterMs = ok ? 0 : need > full ? Math.max(1, resetMs) : Math.max(1, Math.ceil((need - units) / L))
      return {
        ok,
        result: { remaining: Math.floor(units / W), resetMs, retryAfterMs },
        state: `${units}:${ts}`,
        ttlMs: resetMs + W,
      }
    }
  }
}

const ALGORITHMS = new Set(['token-bucket', 'fixed-window', 'sliding-window-log', 'sliding-window-counter'])

/**
 * Checks a rate-limit request, for stores implementing `Store.rateLimit`.
 * @example checkRateLimitRequest({ algorithm: 'fixed-window', windows: [{ limit: 50, windowMs: 60_000 }] })
 */
export function checkRateLimitRequest(request: RateLimitRequest): void {
  if (typeof request !== 'object' || request === null) throw new TypeError('rateLimit: request must be an object')
  if (!ALGORITHMS.has(request.algorithm)) throw new TypeError(`rateLimit: unknown algorithm ${JSON.stringify(request.algorithm)}`)
  if (!Array.isArray(request.windows) || request.windows.length === 0) throw new TypeError('rateLimit: windows must be a non-empty array')
  // A policy sends the same windows array with every decision: check it once.
  if (!CHECKED_WINDOWS.has(request.windows)) checkWindows(request.windows)
  const cost = request.cost ?? 1
  if (!Number.isSafeInteger(cost) || cost <= 0) throw new RangeError('rateLimit: cost must be a positive integer')
  if (request.nowMs !== undefined && !Number.isSafeInteger(request.nowMs)) throw new RangeError('rateLimit: nowMs must be an integer')
}


const CHECKED_WINDOWS = new WeakSet<readonly RateLimitWindow[]>()

function checkWindows(windows: readonly RateLimitWindow[]): void {
  for (const w of windows) {
    if (!Number.isSafeInteger(w.limit) || w.limit <= 0) throw new RangeError('rateLimit: limit must be a positive integer')
    if (!Number.isSafeInteger(w.windowMs) || w.windowMs <= 0) throw new RangeError('rateLimit: windowMs must be a positive integer')
    if (w.burst !== undefined && (!Number.isSafeInteger(w.burst) || w.burst <= 0)) throw new RangeError('rateLimit: burst must be a positive integer')
    // Token buckets count in token×windowMs units; keep them exact in a double (and in Lua).
    if (!Number.isSafeInteger((w.burst ?? w.limit) * w.windowMs * 2)) throw new RangeError('rateLimit: burst × windowMs is too large')
  }
  CHECKED_WINDOWS.add(windows)
}
