import type { Balancer } from '@switchboard/core'
import { ListState } from './internal/list-state.ts'
import { checkOptions, optEnum } from './internal/options.ts'

/** Options of {@link leastConnections}. */
export interface LeastConnectionsOptions {
  /**
   * What counts as a connection: requests in flight, or open upstream sockets (which lag, since
   * pools keep idle sockets). @default 'inFlight'
   */
  count?: 'inFlight' | 'openConnections'
}

/**
 * Sends each request to the candidate with the fewest in-flight requests relative to its weight
 * (`inFlight / weight`, as nginx `least_conn`). Ties go through smooth weighted round-robin, so
 * an idle pool still spreads load and honours weights.
 * @example const endpoint = leastConnections().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const leastConnections = (options: LeastConnectionsOptions = {}): Balancer => {
  const o = checkOptions(options, ['count'])
  const useSockets = optEnum(o.count, 'count', ['inFlight', 'openConnections'], 'inFlight') === 'openConnections'
  const lists = new ListState((candidates) => new Float64Array(candidates.length))
  return {
    name: 'least-connections',
    pick(candidates) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      let min = Number.POSITIVE_INFINITY
      for (let i = 0; i < n; i++) {
        const c = candidates[i]
        const load = (useSockets ? c.stats.openConnections : c.stats.inFlight) / c.weight
        if (load < min) min = load
      }
      // Smooth weighted round-robin among the least loaded only.
      const scores = lists.get(candidates)
      let total = 0
      let best = -1
      let bestScore = Number.NEGATIVE_INFINITY
      for (let i = 0; i < n; i++) {
        const c = candidates[i]
        if ((useSockets ? c.stats.openConnections : c.stats.inFlight) / c.weight !== min) continue
        scores[i] += c.weight
        total += c.weight
        if (scores[i] > bestScore) {
          bestScore = scores[i]
          best = i
        }
      }
      scores[best] -= total
      return candidates[best]
    },
  }
}
