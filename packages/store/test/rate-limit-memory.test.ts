import { describe, expect, it } from 'vitest'
import { describeRateLimitStore, T0 } from '../../policies/test/rate-limit-conformance.ts'
import { memoryStore } from '../src/index.ts'

describeRateLimitStore({ name: 'memory', create: (clock) => memoryStore({ now: clock }) })

describe('memoryStore rateLimit', () => {
  it('uses its own clock when the request names no time, and expires state with it', async () => {
    let now = T0
    const store = memoryStore({ now: () => now })
    const windows = [{ limit: 1, windowMs: 1_000 }]
    expect((await store.rateLimit!('k', { algorithm: 'fixed-window', windows })).allowed).toBe(true)
    expect((await store.rateLimit!('k', { algorithm: 'fixed-window', windows })).allowed).toBe(false)
    now += 1_000
    expect((await store.rateLimit!('k', { algorithm: 'fixed-window', windows })).allowed).toBe(true)
    expect(await store.keys('k#')).toEqual(['k#0'])
    now += 10_000 // past the TTL: the state is gone, not just stale
    expect(await store.keys('k#')).toEqual([])
  })

  it('rejects malformed requests with the field named', async () => {
    const store = memoryStore()
    await expect(store.rateLimit!('k', { algorithm: 'nope' as 'fixed-window', windows: [{ limit: 1, windowMs: 1000 }] })).rejects.toThrow(/algorithm/)
    await expect(store.rateLimit!('k', { algorithm: 'fixed-window', windows: [] })).rejects.toThrow(/windows/)
    await expect(store.rateLimit!('k', { algorithm: 'fixed-window', windows: [{ limit: 0, windowMs: 1000 }] })).rejects.toThrow(/limit/)
    await expect(store.rateLimit!('k', { algorithm: 'fixed-window', windows: [{ limit: 1, windowMs: 1000 }], cost: 1.5 })).rejects.toThrow(/cost/)
  })
})
