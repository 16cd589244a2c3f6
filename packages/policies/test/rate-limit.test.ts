import { compose, ConfigError, decodeText, encodeText, type Store } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { describe, expect, it } from 'vitest'
import {
  decideRateLimit,
  parseRate,
  parseRateLimitOptions,
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_SUBJECT_STATE,
  rateLimit,
  rateLimitPolicy,
  rateLimitWithCompareAndSet,
  type RateLimitAlgorithm,
  type RateLimitRequest,
  type RateLimitWindow,
} from '../src/rate-limit/index.ts'
import { describeRateLimitStore, randomSteps, T0, WINDOW_SETS } from './rate-limit-conformance.ts'

/** A store with only the base contract (like SQLite or a custom driver): no rateLimit capability. */
class PlainStore implements Store {
  readonly name = 'plain'
  readonly data = new Map<string, { value: Uint8Array; expiresAt: number }>()
  constructor(readonly now: () => number = Date.now) {}
  #live(key: string) {
    const e = this.data.get(key)
    if (e && e.expiresAt <= this.now()) this.data.delete(key)
    return this.data.get(key)
  }
  async get(key: string) { return this.#live(key)?.value }
  async set(key: string, value: Uint8Array, o?: { ttlMs?: number }) { this.data.set(key, { value, expiresAt: o?.ttlMs ? this.now() + o.ttlMs : Infinity }) }
  async setIfAbsent(key: string, value: Uint8Array, o?: { ttlMs?: number }) { if (this.#live(key)) return false; await this.set(key, value, o); return true }
  async compareAndSet(key: string, expected: Uint8Array | undefined, value: Uint8Array, o?: { ttlMs?: number }) {
    await Promise.resolve() // a real backend answers later: let races happen
    const cur = this.#live(key)?.value
    const same = expected === undefined ? cur === undefined : cur !== undefined && decodeText(cur) === decodeText(expected)
    if (!same) return false
    await this.set(key, value, o)
    return true
  }
  async delete(key: string) { return this.data.delete(key) }
  async increment(): Promise<number> { throw new Error('not used') }
  async keys(prefix: string) { return [...this.data.keys()].filter((k) => k.startsWith(prefix)) }
  async clear() { const n = this.data.size; this.data.clear(); return n }
  async close() {}
}

/** The same plain store plus the capability, the way memoryStore implements it. */
class CapableStore extends PlainStore {
  calls = 0
  async rateLimit(key: string, request: RateLimitRequest) {
    this.calls++
    const keys = request.windows.map((_, i) => `${key}#${i}`)
    const states = keys.map((k) => this.data.get(k)?.value).map((v) => (v === undefined ? undefined : decodeText(v)))
    const { result, steps } = decideRateLimit({ ...request, nowMs: request.nowMs ?? this.now() }, states)
    steps.forEach((s, i) => this.data.set(keys[i]!, { value: encodeText(s.state), expiresAt: this.now() + s.ttlMs }))
    return result
  }
}

const decide = (algorithm: RateLimitAlgorithm, windows: RateLimitWindow[]) => {
  let states: (string | undefined)[] = windows.map(() => undefined)
  return (at: number, cost = 1) => {
    const { result, steps } = decideRateLimit({ algorithm, windows, cost, nowMs: T0 + at }, states)
    states = steps.map((s) => s.state)
    return result
  }
}
const row = (r: { allowed: boolean; retryAfterMs: number; windows: readonly { remaining: number; resetMs: number }[] }) =>
  [r.allowed, r.windows[0]!.remaining, r.windows[0]!.resetMs, r.retryAfterMs] as const

describe('rate-limit algorithms (injected clock)', () => {
  // [at ms, cost, allowed, remaining, resetMs, retryAfterMs]
  const tables: Record<RateLimitAlgorithm, { windows: RateLimitWindow[]; rows: [number, number, boolean, number, number, number][] }> = {
    'fixed-window': {
      windows: [{ limit: 3, windowMs: 1_000 }],
      rows: [
        [0, 1, true, 2, 1_000, 0],
        [100, 1, true, 1, 900, 0],
        [200, 1, true, 0, 800, 0],
        [999, 1, false, 0, 1, 1],
        [1_000, 1, true, 2, 1_000, 0], // a new window starts on the boundary
        [1_500, 2, true, 0, 500, 0],
        [1_600, 4, false, 0, 400, 400], // more than the limit: only a new window could say more
      ],
    },
    'sliding-window-counter': {
      windows: [{ limit: 10, windowMs: 1_000 }],
      rows: [
        [0, 10, true, 0, 2_000, 0],
        [999, 1, false, 0, 1_001, 2], // at 1001 the previous window weighs floor(10 × 999/1000) = 9
        [1_000, 1, false, 0, 1_000, 1],
        [1_001, 1, true, 0, 1_999, 0],
        [1_500, 1, true, 3, 1_500, 0], // 5 (weighted) + 2
        [1_500, 4, false, 3, 1_500, 1], // needs the weight down to 4: floor(10 × 499/1000) = 4 at 1501
        [1_501, 4, true, 0, 1_499, 0],
      ],
    },
    'sliding-window-log': {
      windows: [{ limit: 3, windowMs: 1_000 }],
      rows: [
        [0, 1, true, 2, 1_000, 0],
        [300, 1, true, 1, 1_000, 0],
        [600, 1, true, 0, 1_000, 0],
        [700, 1, false, 0, 900, 300], // the entry at 0 leaves at 1000
        [1_000, 1, true, 0, 1_000, 0],
        [1_100, 2, false, 0, 900, 500], // two must leave: 300 and 600 → at 1600
        [1_600, 2, true, 0, 1_000, 0],
      ],
    },
    'token-bucket': {
      windows: [{ limit: 10, windowMs: 1_000, burst: 20 }],
      rows: [
        [0, 20, true, 0, 2_000, 0], // the whole burst at once
        [0, 1, false, 0, 2_000, 100], // one token every 100 ms
        [100, 1, true, 0, 2_000, 0],
        [350, 1, true, 1, 1_850, 0], // 2.5 tokens refilled, one spent
        [350, 3, false, 1, 1_850, 150],
        [5_000, 1, true, 19, 100, 0], // refills up to the burst, not beyond
        [5_000, 21, false, 19, 100, 100], // more than the burst: never; hints the time to fill up
      ],
    },
  }
  for (const algorithm of RATE_LIMIT_ALGORITHMS) {
    it(`${algorithm}: answers the table`, () => {
      const { windows, rows } = tables[algorithm]
      const step = decide(algorithm, windows)
      for (const [at, cost, ...expected] of rows) expect([at, cost, ...row(step(at, cost))]).toEqual([at, cost, ...expected])
    })

    it(`${algorithm}: retryAfterMs is exact — refused 1 ms before it, admitted at it`, () => {
      for (const windows of WINDOW_SETS) {
        let states: (string | undefined)[] = windows.map(() => undefined)
        let checked = 0
        for (const s of randomSteps(7 + algorithm.length, 150)) {
          const request = { algorithm, windows, cost: s.cost ?? 1 }
          const { result, steps } = decideRateLimit({ ...request, nowMs: T0 + s.at }, states)
          const limitOk = windows.every((w) => (s.cost ?? 1) <= (w.burst ?? w.limit))
          if (!result.allowed && limitOk) {
            const at = T0 + s.at + result.retryAfterMs
            expect(decideRateLimit({ ...request, nowMs: at }, states).result.allowed).toBe(true)
            if (result.retryAfterMs > 1) expect(decideRateLimit({ ...request, nowMs: at - 1 }, states).result.allowed).toBe(false)
            checked++
          }
          states = steps.map((x) => x.state)
        }
        expect(checked).toBeGreaterThan(0)
      }
    })
  }
})

// The policy's compare-and-set path over a store without the capability gives the same answers.
describeRateLimitStore({
  name: 'compare-and-set fallback (plain store)',
  create: (clock) => new PlainStore(clock),
  concurrency: 12,
  decide: (store, key, request) => rateLimitWithCompareAndSet(store, key, request),
})

describe('parseRate and parseRateLimitOptions', () => {
  it('reads the rate forms', () => {
    expect(parseRate('100/s')).toEqual({ limit: 100, windowMs: 1_000 })
    expect(parseRate('1000/min')).toEqual({ limit: 1000, windowMs: 60_000 })
    expect(parseRate('5000/h')).toEqual({ limit: 5000, windowMs: 3_600_000 })
    expect(parseRate('1000/10min')).toEqual({ limit: 1000, windowMs: 600_000 })
    expect(parseRate('2 / day')).toEqual({ limit: 2, windowMs: 86_400_000 })
    for (const bad of ['0/s', '10', '10/ms', '-1/s', '1.5/s', '10/fortnight']) expect(parseRate(bad)).toBeUndefined()
  })

  it('parses the documented contract and defaults', () => {
    expect(parseRateLimitOptions({ algorithm: 'fixed-window', limit: '50/min', key: 'ip' }, 'policies.per-ip')).toEqual({
      algorithm: 'fixed-window',
      limits: [{ limit: 50, windowMs: 60_000 }],
      key: ['ip'],
      missingKey: 'shared',
      headers: true,
    })
    expect(parseRateLimitOptions({ algorithm: 'token-bucket', limit: '10/s', burst: 20, key: 'header:X-Client-Id' }, 'policies.burst')).toMatchObject({
      limits: [{ limit: 10, windowMs: 1_000, burst: 20 }],
      key: ['header:x-client-id'],
    })
    expect(parseRateLimitOptions({ limits: ['10/s', { limit: '1000/h' }], key: ['ip', 'route'], missingKey: 'deny', headers: false }, 'p')).toEqual({
      algorithm: 'sliding-window-counter',
      limits: [{ limit: 10, windowMs: 1_000 }, { limit: 1000, windowMs: 3_600_000 }],
      key: ['ip', 'route'],
      missingKey: 'deny',
      headers: false,
    })
  })

  it('names the bad key path', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{}, 'policies.rl'],
      [{ limit: '5/s', limits: ['5/s'] }, 'policies.rl'],
      [{ limit: '5/fortnight' }, 'policies.rl.limit'],
      [{ limits: ['5/s', 'x'] }, 'policies.rl.limits[1]'],
      [{ limits: ['5/s', '6/s'] }, 'policies.rl.limits[1]'],
      [{ limits: [] }, 'policies.rl.limits'],
      [{ limit: '5/s', algorithm: 'gcra' }, 'policies.rl.algorithm'],
      [{ limit: '5/s', burst: 9 }, 'policies.rl.burst'],
      [{ limit: '5/s', key: ['ip', 'cookie'] }, 'policies.rl.key[1]'],
      [{ limit: '5/s', key: 'header:' }, 'policies.rl.key'],
      [{ limit: '5/s', missingKey: 'maybe' }, 'policies.rl.missingKey'],
      [{ limit: '5/s', headers: 'no' }, 'policies.rl.headers'],
      [{ limit: '20000/s', algorithm: 'sliding-window-log' }, 'policies.rl.limit'],
      [{ limit: '5/s', store: { driver: 'redis' } }, 'policies.rl.store'],
    ]
    for (const [raw, path] of bad) {
      const err = (() => {
        try {
          rateLimitPolicy.parse(raw, 'policies.rl')
        } catch (e) {
          return e
        }
      })()
      expect(err, JSON.stringify(raw)).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).path, JSON.stringify(raw)).toBe(path)
    }
  })
})

describe('rate-limit middleware', () => {
  const run = async (layer: ReturnType<typeof rateLimit>, init: Parameters<typeof createTestExchange>[0] = {}, prepare?: (ex: ReturnType<typeof createTestExchange>) => void) => {
    const ex = createTestExchange(init)
    prepare?.(ex)
    await compose([layer], { terminal: (e) => e.respond(200, {}, 'ok') })(ex)
    return ex.sent!
  }

  it('counts down the draft headers and answers 429 with Retry-After and the JSON error', async () => {
    let now = T0
    const store = new CapableStore(() => now)
    const layer = rateLimit({ store, name: 'per-ip', algorithm: 'fixed-window', limit: '2/min', now: () => now })
    const first = await run(layer)
    expect(first.status).toBe(200)
    expect(first.headers['ratelimit-policy']).toBe('"per-ip";q=2;w=60')
    expect(first.headers.ratelimit).toBe('"per-ip";r=1;t=60')
    now += 30_000
    expect((await run(layer)).headers.ratelimit).toBe('"per-ip";r=0;t=30')
    now += 500
    const refused = await run(layer)
    expect(refused.status).toBe(429)
    expect(refused.headers['retry-after']).toBe('30') // 29.5 s rounded up
    expect(refused.headers.ratelimit).toBe('"per-ip";r=0;t=30')
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'ERR_RATE_LIMITED' } })
    expect((await run(layer, { clientIp: '10.0.0.9' })).status).toBe(200) // another key
    expect(store.calls).toBe(4) // one capability call per decision
  })

  it('lists every window, and headers: false keeps only Retry-After', async () => {
    const store = new CapableStore()
    const layer = rateLimit({ store, name: 'api', algorithm: 'token-bucket', limits: ['1/s', '100/h'], now: () => T0 })
    expect((await run(layer)).headers['ratelimit-policy']).toBe('"api-1s";q=1;w=1, "api-3600s";q=100;w=3600')
    const quiet = rateLimit({ store, name: 'quiet', algorithm: 'fixed-window', limit: '1/min', headers: false, now: () => T0 })
    expect((await run(quiet)).headers.ratelimit).toBeUndefined()
    const refused = await run(quiet)
    expect(refused.status).toBe(429)
    expect(refused.headers['retry-after']).toBe('60')
    expect(refused.headers['ratelimit-policy']).toBeUndefined()
  })

  it('keys by header, subject and combinations; missingKey shared, allow or deny', async () => {
    const store = new CapableStore()
    const base = { store, algorithm: 'fixed-window' as const, limit: '1/min', now: () => T0 }
    const byHeader = rateLimit({ ...base, name: 'h', key: 'header:x-client-id' })
    expect((await run(byHeader, { headers: { 'x-client-id': 'a' } })).status).toBe(200)
    expect((await run(byHeader, { headers: { 'x-client-id': 'a' } })).status).toBe(429)
    expect((await run(byHeader, { headers: { 'x-client-id': 'b' } })).status).toBe(200)
    // shared (default): keyless requests share one counter
    expect((await run(byHeader)).status).toBe(200)
    expect((await run(byHeader)).status).toBe(429)
    const allow = rateLimit({ ...base, name: 'a', key: 'header:x-client-id', missingKey: 'allow' })
    for (let i = 0; i < 3; i++) expect((await run(allow)).status).toBe(200)
    const deny = rateLimit({ ...base, name: 'd', key: 'subject', missingKey: 'deny' })
    expect((await run(deny)).status).toBe(403)
    const withSubject = (ex: ReturnType<typeof createTestExchange>) => ex.state.set(RATE_LIMIT_SUBJECT_STATE, 'user-1')
    expect((await run(deny, {}, withSubject)).status).toBe(200)
    expect((await run(deny, {}, withSubject)).status).toBe(429)
    const combined = rateLimit({ ...base, name: 'c', key: ['ip', 'header:x-t'] })
    expect((await run(combined, { clientIp: '1.1.1.1', headers: { 'x-t': 't' } })).status).toBe(200)
    expect((await run(combined, { clientIp: '2.2.2.2', headers: { 'x-t': 't' } })).status).toBe(200)
    expect((await run(combined, { clientIp: '1.1.1.1', headers: { 'x-t': 't' } })).status).toBe(429)
  })

  it('keeps huge key values bounded and distinct', async () => {
    const store = new CapableStore()
    const layer = rateLimit({ store, name: 'big', algorithm: 'fixed-window', limit: '1/min', key: 'header:x-k', now: () => T0 })
    const a = 'a'.repeat(5_000)
    expect((await run(layer, { headers: { 'x-k': a } })).status).toBe(200)
    expect((await run(layer, { headers: { 'x-k': `${a}b` } })).status).toBe(200)
    expect((await run(layer, { headers: { 'x-k': a } })).status).toBe(429)
    expect(Math.max(...[...store.data.keys()].map((k) => k.length))).toBeLessThan(200)
  })

  it('store failures: closed → 503 ERR_SERVICE_UNAVAILABLE; failedOpen → allowed, warned once per interval', async () => {
    const logs: string[] = []
    const log = (level: string, message: string) => void logs.push(`${level}: ${message}`)
    const broken = Object.assign(new PlainStore(), { rateLimit: async () => Promise.reject(new Error('down')) })
    const closed = await run(rateLimit({ store: broken, limit: '5/s', log }))
    expect(closed.status).toBe(503)
    expect(JSON.parse(closed.text)).toMatchObject({ error: { code: 'ERR_SERVICE_UNAVAILABLE' } })
    const failing = Object.assign(new PlainStore(), {
      rateLimit: async () => ({ allowed: true, retryAfterMs: 0, windows: [{ remaining: 5, resetMs: 0, retryAfterMs: 0 }], failedOpen: true }),
    })
    const layer = rateLimit({ store: failing, limit: '5/s', log })
    for (let i = 0; i < 3; i++) {
      const ok = await run(layer)
      expect(ok.status).toBe(200)
      expect(ok.headers.ratelimit).toBeUndefined()
    }
    expect(logs.filter((l) => l.startsWith('warn:'))).toHaveLength(1)
    expect(logs.filter((l) => l.startsWith('error:'))).toHaveLength(1)
  })

  it('the policy type uses ctx.store and refuses to run without one', () => {
    const options = rateLimitPolicy.parse({ limit: '5/s' }, 'policies.rl')
    expect(() => rateLimitPolicy.create(options, { name: 'rl', log: () => {} })).toThrow(ConfigError)
    expect(typeof rateLimitPolicy.create(options, { name: 'rl', log: () => {}, store: new PlainStore() })).toBe('function')
  })

  it('validates TypeScript options', () => {
    const store = new PlainStore()
    expect(() => rateLimit({ store } as never)).toThrow(/limit/)
    expect(() => rateLimit({ store, limit: '5/fortnight' })).toThrow(/rate/)
    expect(() => rateLimit({ store, limit: '5/s', burst: 3 })).toThrow(/burst/)
    expect(() => rateLimit({ store, limit: { limit: 5, windowMs: 1_500 } })).toThrow(/whole seconds/)
    expect(() => rateLimit({ store, limit: '5/s', key: 'cookie' as never })).toThrow(/key part/)
    expect(() => rateLimit({ limit: '5/s' } as never)).toThrow(/store/)
  })
})
