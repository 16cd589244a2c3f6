import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { random } from '../src/index.ts'
import { req, seeded } from './helpers.ts'

// Seeded PRNG; ±0.02 over 10k picks is > 4 standard deviations for shares up to 0.4.
describeBalancer({ name: 'random', create: () => random({ random: seeded(1) }), weighted: true })

describe('random', () => {
  it('uses the injected source of randomness', () => {
    const list = makeEndpoints(4)
    expect(random({ random: () => 0 }).pick(list, req())).toBe(list[0])
    expect(random({ random: () => 0.999_999 }).pick(list, req())).toBe(list[3])
    expect(random({ random: () => 0.5 }).pick(list, req())).toBe(list[2])
  })

  it('is reproducible with the same seed', () => {
    const list = makeEndpoints(30)
    const a = random({ random: seeded(42) })
    const b = random({ random: seeded(42) })
    for (let i = 0; i < 100; i++) expect(a.pick(list, req())).toBe(b.pick(list, req()))
  })

  it('throws a TypeError naming a bad option', () => {
    expect(() => random({ random: 5 as never })).toThrow(TypeError)
    expect(() => random({ random: 5 as never })).toThrow(/random must be a function/)
  })
})
