import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { balancerNames, createBalancer, DEFAULT_BALANCER, registerBalancer, type Balancer } from '../src/index.ts'
import { req } from './helpers.ts'

const BUILT_INS = [
  'consistent-hash',
  'first-available',
  'ip-hash',
  'least-connections',
  'least-latency',
  'p2c',
  'random',
  'round-robin',
  'sticky-cookie',
]

// A contributed strategy, registered and created through config like the built-ins.
registerBalancer('last-one', (): Balancer => ({ name: 'last-one', pick: (candidates) => candidates.at(-1) }))
describeBalancer({ name: 'last-one', create: () => createBalancer({ strategy: 'last-one' }) })

describe('registry', () => {
  it('pre-registers every built-in', () => {
    for (const name of BUILT_INS) {
      expect(balancerNames()).toContain(name)
      expect(createBalancer(name).name).toBe(name)
    }
  })

  it('defaults to p2c', () => {
    expect(DEFAULT_BALANCER).toBe('p2c')
    expect(createBalancer().name).toBe('p2c')
  })

  it('passes options through ({ strategy, options })', () => {
    const balancer = createBalancer({ strategy: 'consistent-hash', options: { key: { header: 'x-user' }, algorithm: 'maglev' } })
    const list = makeEndpoints(10)
    const r = req({ headers: { 'x-user': 'ada' } })
    expect(balancer.pick(list, r)).toBe(balancer.pick(list.slice(), r))
  })

  it('rejects an unknown name with a RangeError listing the known ones', () => {
    expect(() => createBalancer('fastest')).toThrow(RangeError)
    expect(() => createBalancer('fastest')).toThrow(/unknown balancer "fastest" \(known: consistent-hash, .*round-robin, score, sticky-cookie\)/)
  })

  it('lets option errors name the option', () => {
    expect(() => createBalancer({ strategy: 'consistent-hash', options: { key: { header: 42 } } })).toThrow(/^key\.header must be/)
    expect(() => createBalancer({ strategy: 'random', options: { seed: 1 } })).toThrow(/^seed is not a known option/)
    expect(() => createBalancer({ strategy: 'p2c', options: [] as never })).toThrow(/^options must be an object/)
    expect(() => createBalancer(42 as never)).toThrow(TypeError)
  })

  it('resolves a sticky-cookie fallback named in config', () => {
    const balancer = createBalancer({ strategy: 'sticky-cookie', options: { name: 'r', fallback: 'first-available' } })
    const list = makeEndpoints(3)
    expect(balancer.pick(list, req())).toBe(list[0])
    const nested = createBalancer({
      strategy: 'sticky-cookie',
      options: { fallback: { strategy: 'consistent-hash', options: { key: { query: 'u' } } } },
    })
    expect(nested.pick(list, req({ target: '/?u=1' }))).toBe(nested.pick(list, req({ target: '/?u=1' })))
    expect(() => createBalancer({ strategy: 'sticky-cookie', options: { fallback: 'nope' } })).toThrow(/^fallback: unknown balancer "nope"/)
  })

  it('refuses duplicate or badly named registrations unless replacing', () => {
    const factory = (): Balancer => ({ name: 'dup', pick: (c) => c[0] })
    registerBalancer('dup', factory)
    expect(() => registerBalancer('dup', factory)).toThrow(/already registered/)
    expect(() => registerBalancer('dup', factory, { replace: true })).not.toThrow()
    expect(() => registerBalancer('My Strategy', factory)).toThrow(/^name must be kebab-case/)
    registerBalancer('broken', () => ({}) as Balancer)
    expect(() => createBalancer('broken')).toThrow(/did not return a balancer/)
  })
})
