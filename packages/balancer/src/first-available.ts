import type { Balancer } from '@switchboard/core'
import { checkOptions } from './internal/options.ts'

/** Options of {@link firstAvailable}. There are none yet; the object is accepted for symmetry. */
export type FirstAvailableOptions = Record<string, never>

/**
 * Primary/backup tiers: picks from the lowest `priority` present among the (healthy) candidates,
 * and within that tier the first in configuration order. Backups only see traffic when every
 * endpoint of a better tier is out.
 * @example
 * const primary = createEndpoint({ url: 'http://10.0.0.1:3000' })
 * const backup = createEndpoint({ url: 'http://10.0.0.2:3000', priority: 1 })
 * firstAvailable().pick([primary, backup], request) // primary while it is healthy
 */
export const firstAvailable = (options: FirstAvailableOptions = {}): Balancer => {
  checkOptions(options, [])
  return {
    name: 'first-available',
    pick(candidates) {
      let best = candidates[0]
      for (let i = 1; i < candidates.length; i++) {
        if (candidates[i].priority < best.priority) best = candidates[i]
      }
      return best
    },
  }
}
