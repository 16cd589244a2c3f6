import type { Balancer } from '@switchboard/core'
import { ListState } from './internal/list-state.ts'
import { checkOptions } from './internal/options.ts'

/** Options of {@link leastLatency}. There are none yet; the object is accepted for symmetry. */
export type LeastLatencyOptions = Record<string, never>

/**
 * Sends each request to the candidate with the lowest latency EWMA divided by weight. An endpoint
 * without traffic yet uses its last probe latency (`probeLatencyMs`), so a health checker's probes
 * drive the choice from the start. An endpoint with neither is explored first (while it has nothing
 * in flight), so new endpoints get measured. Ties rotate.
 * @example const endpoint = leastLatency().pick(health.healthy(), request) // probe latency counts until traffic does
 */
export const leastLatency = (options: LeastLatencyOptions = {}): Balancer => {
  checkOptions(options, [])
  const lists = new ListState(() => ({ cursor: 0 }))
  return {
    name: 'least-latency',
    pick(candidates) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      const state = lists.get(candidates)
      // Start scanning at a rotating offset so ties (and unknowns) take turns.
      const start = state.cursor
      state.cursor = start + 1 >= n ? 0 : start + 1
      let best = start
      let bestCost = Number.POSITIVE_INFINITY
      for (let k = 0; k < n; k++) {
        const i = start + k < n ? start + k : start + k - n
        const c = candidates[i]
        const stats = c.stats
        let latency = stats.latencyEwmaMs
        if (Number.isNaN(latency)) latency = stats.probeLatencyMs
        if (Number.isNaN(latency)) {
          if (stats.inFlight === 0) return c // unknown and idle: explore it
          continue // unknown but already being measured
        }
        const cost = latency / c.weight
        if (cost < bestCost) {
          bestCost = cost
          best = i
        }
      }
      return candidates[best]
    },
  }
}
