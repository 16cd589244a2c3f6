import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { leastLatency } from '../src/index.ts'
import { createEndpoint } from '../src/endpoint.ts'
import { req, tally } from './helpers.ts'

describeBalancer({ name: 'least-latency', create: () => leastLatency() })

describe('leastLatency', () => {
  it('follows probe latency while there is no traffic (health checker drives it)', () => {
    const balancer = leastLatency()
    const list = makeEndpoints(3)
    list[0].recordProbe(30)
    list[1].recordProbe(5)
    list[2].recordProbe(12)
    expect(balancer.pick(list, req())).toBe(list[1])
    list[1].recordProbe(50)
    expect(balancer.pick(list, req())).toBe(list[2])
  })

  it('prefers the measured EWMA over the probe once traffic flows', () => {
    let now = 0
    const clock = () => now
    const list = [0, 1].map((i) => createEndpoint({ url: `http://10.0.0.${i}`, now: clock }))
    list[0].recordProbe(1) // fast probe, slow real traffic
    list[1].recordProbe(20)
    const t = list[0].begin()
    now += 100
    list[0].end(t, true)
    expect(leastLatency().pick(list, req())).toBe(list[1])
  })

  it('explores endpoints with unknown latency first, one request at a time', () => {
    const balancer = leastLatency()
    const list = makeEndpoints(3)
    list[0].recordProbe(1)
    list[1].recordProbe(2)
    const first = balancer.pick(list, req())
    expect(first).toBe(list[2])
    list[2].begin() // being measured: no longer explored
    expect(balancer.pick(list, req())).toBe(list[0])
  })

  it('rotates between equally fast endpoints', () => {
    const balancer = leastLatency()
    const list = makeEndpoints(3)
    for (const e of list) e.recordProbe(7)
    const counts = tally(() => balancer.pick(list, req()), 30)
    expect([...counts.values()]).toEqual([10, 10, 10])
  })

  it('divides latency by weight', () => {
    const list = makeEndpoints(2, (i) => (i === 0 ? 4 : 1))
    list[0].recordProbe(20) // 20 / 4 = 5
    list[1].recordProbe(10) // 10 / 1 = 10
    expect(leastLatency().pick(list, req())).toBe(list[0])
  })
})
