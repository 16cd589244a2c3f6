// One suite for every store with the `rateLimit` capability: the same (time, key, cost) sequence must
// give answers identical to the pure algorithm (src/rate-limit/algorithms.ts) on every store, for
// every algorithm. Run from packages/store/test/rate-limit-*.test.ts (memory, Redis) and from
// test/rate-limit.test.ts (the policy's compare-and-set path over a plain store).
import type { Store } from '@switchboard/core'
import { afterEach, describe, expect, it } from 'vitest'
import {
  decideRateLimit,
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitWindow,
} from '../src/rate-limit/algorithms.ts'

/** Epoch ms aligned to the hour, so windows start at known offsets. */
export const T0 = 1_699_999_200_000

export interface RateLimitConformanceOptions {
  name: string
  /** A fresh store; `clock` is the injected time the suite decides at (memory stores should use it for TTLs too). */
  create: (clock: () => number) => Store | Promise<Store>
  /** Decides through something other than `store.rateLimit` (the policy's fallback path). */
  decide?: (store: Store, key: string, request: RateLimitRequest) => Promise<RateLimitResult>
  /** Concurrent decisions in the race test. @default 80 */
  concurrency?: number
}

/** One step of a scripted sequence: at `T0 + at` ms, `key` asks for `cost` units. */
export interface Step {
  at: number
  key?: string
  cost?: number
}

/** Windows each algorithm is exercised with. */
export const WINDOW_SETS: readonly (readonly RateLimitWindow[])[] = [
  [{ limit: 3, windowMs: 1_000 }],
  [{ limit: 5, windowMs: 60_000, burst: 8 }],
  [
    { limit: 2, windowMs: 1_000 },
    { limit: 5, windowMs: 10_000 },
  ],
]

/** A scripted sequence: bursts, window edges, idle gaps, two keys, costs above 1 and above the limit. */
export const SCRIPT: readonly Step[] = [
  { at: 0 },
  { at: 0 },
  { at: 1 },
  { at: 2 },
  { at: 3, key: 'b' },
  { at: 500 },
  { at: 999 },
  { at: 999, cost: 2 },
  { at: 1_000 },
  { at: 1_001 },
  { at: 1_250 },
  { at: 1_500, cost: 3 },
  { at: 1_999 },
  { at: 2_000, key: 'b' },
  { at: 2_600 },
  { at: 3_100, cost: 50 },
  { at: 9_999 },
  { at: 10_000 },
  { at: 10_001 },
  { at: 10_400 },
  { at: 12_000, key: 'b', cost: 2 },
  { at: 59_999 },
  { at: 60_000 },
  { at: 60_000 },
  { at: 61_000 },
  { at: 200_000 },
  { at: 200_001 },
]

/** Deterministic pseudo-random sequence (mulberry32), times ascending. */
export function randomSteps(seed: number, count: number): Step[] {
  let s = seed >>> 0
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const steps: Step[] = []
  let at = 0
  for (let i = 0; i < count; i++) {
    at += Math.floor(rand() * rand() * 700)
    steps.push({ at, key: rand() < 0.3 ? 'b' : 'a', cost: rand() < 0.15 ? 2 : 1 })
  }
  return steps
}

/** Runs `steps` through the pure algorithm with its own in-memory state: the reference answers. */
export function referenceAnswers(algorithm: RateLimitAlgorithm, windows: readonly RateLimitWindow[], steps: readonly Step[]): RateLimitResult[] {
  const states = new Map<string, (string | undefined)[]>()
  return steps.map((step) => {
    const key = step.key ?? 'a'
    const current = states.get(key) ?? windows.map(() => undefined)
    const { result, steps: next } = decideRateLimit({ algorithm, windows, cost: step.cost ?? 1, nowMs: T0 + step.at }, current)
    states.set(key, next.map((n) => n.state))
    return result
  })
}

/**
 * Registers the suite for one store.
 * @example describeRateLimitStore({ name: 'memory', create: (clock) => memoryStore({ now: clock }) })
 */
export function describeRateLimitStore(options: RateLimitConformanceOptions): void {
  describe(`rate-limit conformance: ${options.name}`, () => {
    let store: Store | undefined
    let now = T0
    const run = ((s: Store, key: string, request: RateLimitRequest) =>
      options.decide ? options.decide(s, key, request) : s.rateLimit!(key, request)) as (s: Store, key: string, r: RateLimitRequest) => Promise<RateLimitResult>
    const open = async (): Promise<Store> => {
      now = T0
      store = await options.create(() => now)
      if (!options.decide) expect(typeof store.rateLimit).toBe('function')
      return store
    }
    afterEach(async () => {
      await store?.close()
      store = undefined
    })
    const playOn = async (s: Store, algorithm: RateLimitAlgorithm, windows: readonly RateLimitWindow[], steps: readonly Step[]): Promise<RateLimitResult[]> => {
      const tag = `${algorithm}:${Math.random().toString(36).slice(2)}:`
      const out: RateLimitResult[] = []
      for (const step of steps) {
        now = T0 + step.at
        const r = await run(s, tag + (step.key ?? 'a'), { algorithm, windows, cost: step.cost ?? 1, nowMs: now })
        out.push({ allowed: r.allowed, retryAfterMs: r.retryAfterMs, windows: r.windows.map((w) => ({ ...w })) })
      }
      return out
    }

    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      describe(algorithm, () => {
        WINDOW_SETS.forEach((windows, set) => {
          const label = windows.map((w) => `${w.limit}/${w.windowMs}ms${w.burst ? ` burst ${w.burst}` : ''}`).join(' + ')
          it(`answers the scripted sequence like the reference (${label})`, async () => {
            const s = await open()
            const got = await playOn(s, algorithm, windows, SCRIPT)
            expect(got).toEqual(referenceAnswers(algorithm, windows, SCRIPT))
            // The script must exercise both outcomes, or it proves nothing.
            expect(got.some((r) => r.allowed)).toBe(true)
            expect(got.some((r) => !r.allowed)).toBe(true)
          })
          it(`answers a random sequence like the reference (${label})`, async () => {
            const s = await open()
            const steps = randomSteps(1_000 + set * 17 + algorithm.length, 120)
            expect(await playOn(s, algorithm, windows, steps)).toEqual(referenceAnswers(algorithm, windows, steps))
          })
        })

        it('admits exactly the limit under concurrent decisions on one key', async () => {
          const s = await open()
          const n = options.concurrency ?? 80
          const limit = Math.ceil(n / 3)
          const windows = [{ limit, windowMs: 60_000 }]
          const key = `${algorithm}:concurrent:${Math.random().toString(36).slice(2)}`
          const results = await Promise.all(Array.from({ length: n }, () => run(s, key, { algorithm, windows, nowMs: T0 })))
          expect(results.filter((r) => r.allowed)).toHaveLength(limit)
          expect(results.filter((r) => !r.allowed).every((r) => r.retryAfterMs >= 1)).toBe(true)
        })

        it('is all or nothing across windows: a refusal consumes no window', async () => {
          const s = await open()
          const windows = [
            { limit: 10, windowMs: 1_000 },
            { limit: 2, windowMs: 60_000 },
          ]
          const key = `${algorithm}:aon:${Math.random().toString(36).slice(2)}`
          for (let i = 0; i < 2; i++) expect((await run(s, key, { algorithm, windows, nowMs: T0 })).allowed).toBe(true)
          const refused = await run(s, key, { algorithm, windows, nowMs: T0 })
          expect(refused.allowed).toBe(false)
          expect(refused.windows[0]!.remaining).toBe(8) // the refused request took nothing from the 1 s window
          expect(refused.windows[0]!.retryAfterMs).toBe(0)
          expect(refused.windows[1]!.retryAfterMs).toBeGreaterThan(0)
        })
      })
    }
  })
}
