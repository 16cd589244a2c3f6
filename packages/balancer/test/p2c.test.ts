import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { createEndpoint } from '../src/endpoint.ts'
import { p2c } from '../src/index.ts'
import { req, seeded, tally } from './helpers.ts'

// Idle endpoints tie and the first (weighted) sample wins; seeded, ±0.02 over 10k picks.
describeBalancer({ name: 'p2c', create: () => p2c({ random: seeded(7) }), weighted: true })

/** Endpoints whose latency EWMA is set by one request of `latency` ms on a fake clock. */
function withLatencies(latencies: number[]) {
  let now = 0
  return latencies.map((latency, i) => {
    const e = createEndpoint({ url: `http://10.0.0.${i}:80`, id: `ep-${i}`, now: () => now })
    const t = e.begin()
    now += latency
    e.end(t, true)
    return e
  })
}

describe('p2c', () => {
  it('prefers the fast endpoint when one is 10× slower', () => {
    const list = withLatencies([10, 100, 10])
    const balancer = p2c({ random: seeded(3) })
    const counts = tally(() => balancer.pick(list, req()), 3000)
    // Two distinct samples always include a fast endpoint, so the slow one never wins.
    expect(counts.get('ep-1') ?? 0).toBe(0)
    expect(counts.get('ep-0')! + counts.get('ep-2')!).toBe(3000)
    expect(Math.abs(counts.get('ep-0')! / 3000 - 0.5)).toBeLessThan(0.05)
  })

  it('with two endpoints the faster one always wins', () => {
    const list = withLatencies([100, 10])
    const balancer = p2c({ random: seeded(5) })
    for (let i = 0; i < 100; i++) expect(balancer.pick(list, req())).toBe(list[1])
  })

  it('weighs latency by in-flight load (EWMA × (inFlight + 1))', () => {
    const list = withLatencies([10, 25])
    for (let i = 0; i < 3; i++) list[0].begin() // 10 × 4 = 40 > 25 × 1
    expect(p2c({ random: seeded(1) }).pick(list, req())).toBe(list[1])
  })

  it('uses probe latency before any traffic', () => {
    const list = makeEndpoints(2)
    list[0].recordProbe(50)
    list[1].recordProbe(5)
    const balancer = p2c({ random: seeded(9) })
    for (let i = 0; i < 20; i++) expect(balancer.pick(list, req())).toBe(list[1])
  })

  it('explores an endpoint with unknown latency while it is idle', () => {
    const list = withLatencies([10, 10])
    list.push(createEndpoint({ url: 'http://10.0.0.9:80', id: 'new' }))
    const balancer = p2c({ random: seeded(11) })
    const counts = tally(() => balancer.pick(list, req()), 300)
    expect(counts.get('new') ?? 0).toBeGreaterThan(100) // wins every pair it is sampled into
  })

  it('throws naming a bad option', () => {
    expect(() => p2c({ random: 'x' as never })).toThrow(/^random must be a function/)
  })
})
