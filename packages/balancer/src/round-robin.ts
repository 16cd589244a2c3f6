import type { Balancer, Endpoint } from '@switchboard/core'
import { ListState } from './internal/list-state.ts'
import { checkOptions } from './internal/options.ts'

/** Options of {@link roundRobin}. There are none yet; the object is accepted for symmetry. */
export type RoundRobinOptions = Record<string, never>

/**
 * Smooth weighted round-robin, as in nginx: each pick adds every candidate's `weight` to its
 * running score, takes the highest, and subtracts the total from it. Weights 5, 1, 1 give
 * `a a b a c a a` rather than `a a a a a b c`. Weights are read live, so slow start works.
 * @example const endpoint = roundRobin().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const roundRobin = (options: RoundRobinOptions = {}): Balancer => {
  checkOptions(options, [])
  const lists = new ListState(carryScores)
  return {
    name: 'round-robin',
    pick(candidates) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      return candidates[smoothPick(candidates, lists.get(candidates).scores)]
    },
  }
}

interface Scores {
  readonly endpoints: readonly Endpoint[]
  readonly scores: Float64Array
}

/** Runs one step of smooth weighted round-robin over `scores`; returns the chosen index. */
function smoothPick(candidates: readonly Endpoint[], scores: Float64Array): number {
  let total = 0
  let best = 0
  let bestScore = Number.NEGATIVE_INFINITY
  for (let i = 0; i < candidates.length; i++) {
    const w = candidates[i].weight
    scores[i] += w
    total += w
    if (scores[i] > bestScore) {
      bestScore = scores[i]
      best = i
    }
  }
  scores[best] -= total
  return best
}

/** New per-list scores; endpoints that stay keep their running score so a flap does not reset the rotation. */
function carryScores(candidates: readonly Endpoint[], previous: Scores | undefined): Scores {
  const scores = new Float64Array(candidates.length)
  if (previous !== undefined) {
    const old = new Map<Endpoint, number>()
    for (let i = 0; i < previous.endpoints.length; i++) old.set(previous.endpoints[i], previous.scores[i])
    for (let i = 0; i < candidates.length; i++) scores[i] = old.get(candidates[i]) ?? 0
  }
  return { endpoints: candidates.slice(), scores }
}
