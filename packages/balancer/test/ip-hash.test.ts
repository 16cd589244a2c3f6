import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { ipHash } from '../src/index.ts'
import { req } from './helpers.ts'

describeBalancer({ name: 'ip-hash', create: () => ipHash(), affinity: (key) => req({ clientIp: key }) })
describeBalancer({ name: 'ip-hash', create: () => ipHash({ algorithm: 'maglev' }), affinity: (key) => req({ clientIp: key }) })

describe('ipHash', () => {
  it('keeps a client on one endpoint whatever else the request carries', () => {
    const balancer = ipHash()
    const list = makeEndpoints(30)
    const first = balancer.pick(list, req({ clientIp: '2001:db8::7' }))
    for (let i = 0; i < 50; i++) {
      expect(balancer.pick(list, req({ clientIp: '2001:db8::7', target: `/${i}`, headers: { 'x-user': `${i}` } }))).toBe(first)
    }
  })

  // 10 000 client addresses over 4 endpoints: each gets 0.25 ± 0.05.
  it('spreads clients evenly', () => {
    const balancer = ipHash()
    const list = makeEndpoints(4)
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 10_000; i++) {
      counts[list.indexOf(balancer.pick(list, req({ clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` })) as never)]++
    }
    for (const c of counts) expect(Math.abs(c / 10_000 - 0.25)).toBeLessThanOrEqual(0.05)
  })

  it('has no key option (it is always the client IP)', () => {
    expect(() => ipHash({ key: { header: 'x' } } as never)).toThrow(/^key is not a known option/)
  })
})
