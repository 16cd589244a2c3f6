import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { leastConnections } from '../src/index.ts'
import { req, tally } from './helpers.ts'

// Idle endpoints tie, and ties go through smooth weighted round-robin: the share is exact.
describeBalancer({ name: 'least-connections', create: () => leastConnections(), weighted: true, tolerance: 0.001 })

describe('leastConnections', () => {
  it('picks the endpoint with the fewest requests in flight', () => {
    const balancer = leastConnections()
    const list = makeEndpoints(3)
    list[0].begin()
    list[0].begin()
    list[1].begin()
    expect(balancer.pick(list, req())).toBe(list[2])
    list[2].begin()
    list[2].begin()
    expect(balancer.pick(list, req())).toBe(list[1])
  })

  it('spreads ties instead of always taking the first', () => {
    const balancer = leastConnections()
    const list = makeEndpoints(3)
    const counts = tally(() => balancer.pick(list, req()), 30)
    expect([...counts.values()]).toEqual([10, 10, 10])
  })

  it('compares in-flight relative to weight', () => {
    const balancer = leastConnections()
    const list = makeEndpoints(2, (i) => (i === 0 ? 4 : 1))
    for (let i = 0; i < 3; i++) list[0].begin() // 3 / 4 < 1 / 1
    list[1].begin()
    expect(balancer.pick(list, req())).toBe(list[0])
  })

  it('balances a stream of concurrent requests', () => {
    const balancer = leastConnections()
    const list = makeEndpoints(4)
    for (let i = 0; i < 40; i++) (balancer.pick(list, req()) as (typeof list)[number]).begin()
    expect(list.map((e) => e.inFlight)).toEqual([10, 10, 10, 10])
  })

  it('can count open connections instead', () => {
    const balancer = leastConnections({ count: 'openConnections' })
    const list = makeEndpoints(2)
    list[0].connectionOpened()
    list[1].begin() // in flight does not count in this mode
    expect(balancer.pick(list, req())).toBe(list[1])
  })

  it('throws naming a bad option', () => {
    expect(() => leastConnections({ count: 'sockets' as never })).toThrow(RangeError)
    expect(() => leastConnections({ count: 'sockets' as never })).toThrow(/^count must be one of/)
  })
})
