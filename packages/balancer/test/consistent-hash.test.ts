import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { consistentHash, type ConsistentHashOptions } from '../src/index.ts'
import { req } from './helpers.ts'

describeBalancer({
  name: 'consistent-hash',
  create: () => consistentHash({ key: { header: 'x-user' } }),
  affinity: (key) => req({ headers: { 'x-user': key } }),
})
describeBalancer({
  name: 'consistent-hash',
  create: () => consistentHash({ key: { cookie: 'session' }, algorithm: 'maglev' }),
  affinity: (key) => req({ headers: { cookie: `theme=dark; session=${key}; lang=en` } }),
})
describeBalancer({
  name: 'consistent-hash',
  create: () => consistentHash({ key: { query: 'tenant' } }),
  affinity: (key) => req({ target: `/v1/items?page=2&tenant=${key}&x=1` }),
})
describeBalancer({
  name: 'consistent-hash',
  create: () => consistentHash({ key: { bodyField: 'user.id' }, algorithm: 'maglev' }),
  affinity: (key) => req({ method: 'POST', body: { user: { id: key } } }),
})
describeBalancer({
  name: 'consistent-hash',
  create: () => consistentHash({ key: { clientIp: true } }),
  affinity: (key) => req({ clientIp: key }),
})

const KEYS = 10_000
const userRequest = (k: number) => req({ headers: { 'x-user': `user-${k}` } })

function remap(options: ConsistentHashOptions) {
  const balancer = consistentHash({ key: { header: 'x-user' }, ...options })
  const five = makeEndpoints(5)
  const four = five.slice(0, 4)
  let moved = 0
  let movedElsewhere = 0
  for (let k = 0; k < KEYS; k++) {
    const before = balancer.pick(four, userRequest(k))
    const after = balancer.pick(five, userRequest(k))
    if (before !== after) {
      moved++
      if (after !== five[4]) movedElsewhere++
    }
  }
  return { fraction: moved / KEYS, movedElsewhere }
}

describe('consistentHash', () => {
  // Ideal is 1/5 = 0.2 of the keys; tolerance ±0.05 (ring with 160 virtual nodes or Maglev 65537).
  it('moves ≈ 1/5 of 10 000 keys when a 5th endpoint joins 4 (ring), all of them to the new one', () => {
    const { fraction, movedElsewhere } = remap({ algorithm: 'ring' })
    expect(Math.abs(fraction - 0.2)).toBeLessThanOrEqual(0.05)
    expect(movedElsewhere).toBe(0)
  })

  it('moves ≈ 1/5 of 10 000 keys when a 5th endpoint joins 4 (maglev), nearly all to the new one', () => {
    const { fraction, movedElsewhere } = remap({ algorithm: 'maglev' })
    expect(Math.abs(fraction - 0.2)).toBeLessThanOrEqual(0.05)
    expect(movedElsewhere / KEYS).toBeLessThanOrEqual(0.02) // Maglev is near-minimal, not exactly minimal
  })

  it('moves only the keys of an endpoint that leaves', () => {
    const balancer = consistentHash({ key: { header: 'x-user' } })
    const all = makeEndpoints(5)
    const without = all.filter((_, i) => i !== 2)
    for (let k = 0; k < 2000; k++) {
      const before = balancer.pick(all, userRequest(k))
      if (before !== all[2]) expect(balancer.pick(without, userRequest(k))).toBe(before)
    }
  })

  it('does not depend on candidate order', () => {
    const balancer = consistentHash({ key: { header: 'x-user' } })
    const list = makeEndpoints(5)
    const reversed = list.slice().reverse()
    for (let k = 0; k < 500; k++) expect(balancer.pick(reversed, userRequest(k))).toBe(balancer.pick(list, userRequest(k)))
  })

  for (const algorithm of ['ring', 'maglev'] as const) {
    // 20 000 keys over weights 1:1:2 → ideal shares 0.25, 0.25, 0.5; tolerance ±0.05.
    it(`scales shares with weight (${algorithm})`, () => {
      const balancer = consistentHash({ key: { header: 'x-user' }, algorithm })
      const list = makeEndpoints(3, (i) => (i === 2 ? 2 : 1))
      const counts = [0, 0, 0]
      for (let k = 0; k < 20_000; k++) counts[list.indexOf(balancer.pick(list, userRequest(k)) as never)]++
      expect(Math.abs(counts[0] / 20_000 - 0.25)).toBeLessThanOrEqual(0.05)
      expect(Math.abs(counts[1] / 20_000 - 0.25)).toBeLessThanOrEqual(0.05)
      expect(Math.abs(counts[2] / 20_000 - 0.5)).toBeLessThanOrEqual(0.05)
    })
  }

  it('hashes the client IP when the key is missing', () => {
    const balancer = consistentHash({ key: { header: 'x-user' } })
    const list = makeEndpoints(30)
    const viaIp = consistentHash({ key: { clientIp: true } })
    for (let i = 0; i < 50; i++) {
      const r = req({ clientIp: `192.0.2.${i}` })
      expect(balancer.pick(list, r)).toBe(viaIp.pick(list, r))
    }
  })

  it('finds cookies and query parameters exactly, not by prefix', () => {
    const balancer = consistentHash({ key: { cookie: 'sid' } })
    const list = makeEndpoints(30)
    const a = balancer.pick(list, req({ headers: { cookie: 'xsid=1; sid=abc' } }))
    const b = balancer.pick(list, req({ headers: { cookie: 'sid=abc' } }))
    expect(a).toBe(b)
    const q = consistentHash({ key: { query: 'id' } })
    expect(q.pick(list, req({ target: '/?pid=9&id=7' }))).toBe(q.pick(list, req({ target: '/x?id=7' })))
  })

  it('throws naming bad options', () => {
    expect(() => consistentHash({ key: { header: '' } })).toThrow(/^key\.header must be a non-empty string/)
    expect(() => consistentHash({ key: { clientIp: false } as never })).toThrow(/^key\.clientIp must be true/)
    expect(() => consistentHash({ key: { header: 'a', cookie: 'b' } as never })).toThrow(/^key must have exactly one of/)
    expect(() => consistentHash({ key: { bodyField: 'a..b' } })).toThrow(/^key\.bodyField/)
    expect(() => consistentHash({ algorithm: 'rendezvous' as never })).toThrow(RangeError)
    expect(() => consistentHash({ tableSize: 1000 })).toThrow(/^tableSize must be a prime/)
    expect(() => consistentHash({ virtualNodes: 0 })).toThrow(/^virtualNodes must be an integer/)
  })
})
