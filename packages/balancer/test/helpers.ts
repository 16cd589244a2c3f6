import type { RequestInfo } from '@switchboard/core'

/** mulberry32: a small seeded PRNG so distribution tests are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A plain GET request, with optional overrides. */
export function req(overrides: Partial<RequestInfo> = {}): RequestInfo {
  return { method: 'GET', target: '/', headers: {}, clientIp: '203.0.113.9', ...overrides }
}

/** Counts how often each endpoint id is picked. */
export function tally<T extends { id: string }>(pick: (i: number) => T | undefined, times: number): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < times; i++) {
    const id = pick(i)?.id ?? 'undefined'
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}
