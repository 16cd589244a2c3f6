import type { Balancer } from '@switchboard/core'
import { checkOptions, optFunction } from './internal/options.ts'

/** Options of {@link random}. */
export interface RandomOptions {
  /** Source of randomness in [0, 1); inject a seeded one in tests. @default Math.random */
  random?: () => number
}

/**
 * Picks a candidate at random, proportional to its `weight`.
 * @example const endpoint = random().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const random = (options: RandomOptions = {}): Balancer => {
  const o = checkOptions(options, ['random'])
  const rand = optFunction<() => number>(o.random, 'random', Math.random)
  return {
    name: 'random',
    pick(candidates) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      let total = 0
      for (let i = 0; i < n; i++) total += candidates[i].weight
      let r = rand() * total
      for (let i = 0; i < n; i++) {
        r -= candidates[i].weight
        if (r < 0) return candidates[i]
      }
      return candidates[n - 1] // rounding left r at 0
    },
  }
}
