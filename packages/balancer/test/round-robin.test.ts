import { describe, expect, it } from 'vitest'
import { makeEndpoints, describeBalancer } from '../src/conformance.ts'
import { roundRobin } from '../src/index.ts'
import { req } from './helpers.ts'

// Smooth WRR is deterministic, so the weighted share is exact up to one rotation.
describeBalancer({ name: 'round-robin', create: () => roundRobin(), weighted: true, tolerance: 0.001 })

describe('roundRobin', () => {
  it('interleaves weights 5, 1, 1 like nginx (a a b a c a a)', () => {
    const balancer = roundRobin()
    const list = makeEndpoints(3, (i) => (i === 0 ? 5 : 1))
    const names = ['a', 'b', 'c']
    const sequence = Array.from({ length: 14 }, () => names[list.indexOf(balancer.pick(list, req()) as never)]).join('')
    expect(sequence).toBe('aabacaaaabacaa')
  })

  it('rotates through equal weights in order', () => {
    const balancer = roundRobin()
    const list = makeEndpoints(3)
    const ids = Array.from({ length: 6 }, () => balancer.pick(list, req())!.id)
    expect(ids).toEqual(['ep-0', 'ep-1', 'ep-2', 'ep-0', 'ep-1', 'ep-2'])
  })

  it('reads weights live (slow start) without a new list', () => {
    const balancer = roundRobin()
    const list = makeEndpoints(2)
    list[1].setWeight(3)
    const counts = [0, 0]
    for (let i = 0; i < 400; i++) counts[list.indexOf(balancer.pick(list, req()) as never)]++
    expect(counts).toEqual([100, 300])
  })

  it('keeps rotating fairly when the list changes', () => {
    const balancer = roundRobin()
    const all = makeEndpoints(3)
    balancer.pick(all, req())
    const fewer = [all[1], all[2]]
    const ids = Array.from({ length: 4 }, () => balancer.pick(fewer, req())!.id)
    expect(new Set(ids)).toEqual(new Set(['ep-1', 'ep-2']))
    expect(ids[0]).not.toBe(ids[1])
  })

  it('rejects options it does not know, naming them', () => {
    expect(() => roundRobin({ weights: 1 } as never)).toThrow(/weights is not a known option/)
  })
})
