import type { Balancer, Endpoint } from '@switchboard/core'
import { checkOptions, optFunction } from './internal/options.ts'

/** Options of {@link p2c}. */
export interface P2cOptions {
  /** Source of randomness in [0, 1); inject a seeded one in tests. @default Math.random */
  random?: () => number
}

/**
 * Power of two choices (Mitzenmacher; Finagle/Linkerd's P2C over EWMA): samples two distinct
 * candidates proportionally to weight and keeps the one with the lower cost, `latency EWMA ×
 * (inFlight + 1)`. Latency falls back to the last probe latency; an endpoint with neither costs
 * only its in-flight count, so it gets explored. On a tie the first sample wins, which keeps the
 * weighted distribution. The default for new configs.
 * @example const endpoint = p2c().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const p2c = (options: P2cOptions = {}): Balancer => {
  const o = checkOptions(options, ['random'])
  const rand = optFunction<() => number>(o.random, 'random', Math.random)
  return {
    name: 'p2c',
    pick(candidates) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      let total = 0
      for (let i = 0; i < n; i++) total += candidates[i].weight
      const first = sample(candidates, rand() * total, -1)
      const second = sample(candidates, rand() * (total - candidates[first].weight), first)
      const a = candidates[first]
      const b = candidates[second]
      return cost(b) < cost(a) ? b : a
    },
  }
}

/** Index found by walking `r` down the weights, skipping `exclude`. */
function sample(candidates: readonly Endpoint[], r: number, exclude: number): number {
  let last = -1
  for (let i = 0; i < candidates.length; i++) {
    if (i === exclude) continue
    last = i
    r -= candidates[i].weight
    if (r < 0) return i
  }
  return last // rounding left r at 0
}

function cost(endpoint: Endpoint): number {
  const stats = endpoint.stats
  let latency = stats.latencyEwmaMs
  if (Number.isNaN(latency)) latency = stats.probeLatencyMs
  if (Number.isNaN(latency)) return stats.inFlight // unknown: cheap until it is busy, so it gets measured
  return latency * (stats.inFlight + 1)
}
