import type { Balancer } from '@switchboard/core'
import { leastLoaded } from './internal/engine.ts'
import { checkOptions, optFunction } from './internal/options.ts'

/** Options of {@link leastQueue}. */
export interface LeastQueueOptions {
  /** Source of randomness in [0, 1) for ties; inject a seeded one in tests. @default Math.random */
  random?: () => number
}

/**
 * For LLM engines: sends each request to the endpoint with the shortest queue, `running +
 * waiting` as the engine reports them (`endpoint.engine`, scraped by `engineStats:`) plus the
 * requests the gateway sent since that scrape, so a scrape interval longer than a request cannot
 * herd requests onto one engine. An endpoint whose engine stats are stale or absent counts the
 * gateway's own in-flight requests instead. Ties are broken at random.
 * @example const endpoint = leastQueue().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const leastQueue = (options: LeastQueueOptions = {}): Balancer => {
  const o = checkOptions(options, ['random'])
  const rand = optFunction<() => number>(o.random, 'random', Math.random)
  return {
    name: 'least-queue',
    pick(candidates) {
      return leastLoaded(candidates, rand)
    },
  }
}
