import { describe, expect, it } from 'vitest'
import { createEndpoint } from '../src/index.ts'

describe('EndpointState', () => {
  const make = () => {
    let now = 0
    const endpoint = createEndpoint({ url: 'http://127.0.0.1:3000', weight: 2, windowMs: 10_000, now: () => now })
    return { endpoint, advance: (ms: number) => (now += ms) }
  }

  it('tracks in-flight, latency EWMA, percentiles, errors and rate on an injected clock', () => {
    const { endpoint, advance } = make()
    expect(Number.isNaN(endpoint.stats.latencyEwmaMs)).toBe(true)
    for (let i = 1; i <= 10; i++) {
      const t = endpoint.begin()
      expect(endpoint.inFlight).toBe(1)
      advance(i * 10)
      endpoint.end(t, i !== 10)
    }
    expect(endpoint.inFlight).toBe(0)
    expect(endpoint.latencyP50Ms).toBe(50)
    expect(endpoint.latencyP99Ms).toBe(100)
    expect(endpoint.latencyEwmaMs).toBeGreaterThan(50)
    expect(endpoint.totalRequests).toBe(10)
    expect(endpoint.errorRate).toBeCloseTo(0.1)
    expect(endpoint.requestsPerSecond).toBeCloseTo(1) // 10 requests in a 10 s window
    advance(20_000)
    expect(endpoint.errorRate).toBe(0) // the window slid past them
    expect(endpoint.requestsPerSecond).toBe(0)
  })

  it('records probes, health, weight and connections, and serialises NaN as null', () => {
    const { endpoint } = make()
    endpoint.recordProbe(12)
    endpoint.recordProbe(undefined) // a failed probe keeps the last latency
    endpoint.setHealthy(false)
    endpoint.setWeight(0) // ignored: weights stay positive
    endpoint.setWeight(1)
    endpoint.connectionOpened()
    endpoint.connectionClosed()
    endpoint.connectionClosed()
    expect(endpoint.toJSON()).toMatchObject({
      probeLatencyMs: 12,
      healthy: false,
      weight: 1,
      configuredWeight: 2,
      openConnections: 0,
      latencyEwmaMs: null,
    })
  })

  it('rejects bad options, naming them', () => {
    expect(() => createEndpoint({ url: 'http://x', weight: 0 })).toThrow(/^weight must be/)
    expect(() => createEndpoint({ url: 'http://x', ewmaAlpha: 2 })).toThrow(/^ewmaAlpha must be/)
  })
})
