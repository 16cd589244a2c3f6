import type { Balancer } from '@switchboard/core'
import { engineLoad, leastLoaded, optNumber, PrefixMemory, prefixHashes, promptOf } from './internal/engine.ts'
import { checkOptions, optFunction, optInteger } from './internal/options.ts'

/** Options of {@link prefixAffinity}. */
export interface PrefixAffinityOptions {
  /** Characters per prompt chunk. @default 256 */
  chunkChars?: number
  /** Leading chunks hashed (prefixes longer than `chunkChars × chunks` count as equal). @default 4 */
  chunks?: number
  /** An endpoint keeps its prefixes while `load + 1 ≤ loadFactor × (mean load + 1)`. @default 1.25 */
  loadFactor?: number
  /** Prefix hashes remembered (least recently used go first). @default 10_000 */
  maxEntries?: number
  /** Source of randomness for ties in the least-queue fallback. @default Math.random */
  random?: () => number
}

/**
 * For LLM engines with a prefix (KV) cache: the prompt's leading chunks (`messages` or `prompt`
 * of the JSON body) are hashed, and a request goes to the endpoint that served the longest
 * matching prefix, so the engine reuses its cached KV blocks. Within a load bound: when that
 * endpoint's queue (as in `leastQueue`) is above `loadFactor` × the mean, a hot prefix moves on
 * instead of pinning one engine. New prefixes, requests without a prompt and over-loaded
 * matches go to the least-queue endpoint. The gateway parses the body for it (`needsBody`).
 * @example const endpoint = prefixAffinity({ chunkChars: 128 }).pick(endpoints, { ...request, body: { messages } })
 */
export const prefixAffinity = (options: PrefixAffinityOptions = {}): Balancer => {
  const o = checkOptions(options, ['chunkChars', 'chunks', 'loadFactor', 'maxEntries', 'random'])
  const chunkChars = optInteger(o.chunkChars, 'chunkChars', 256, 1, 1_000_000)
  const chunks = optInteger(o.chunks, 'chunks', 4, 1, 64)
  const loadFactor = optNumber(o.loadFactor, 'loadFactor', 1.25, 1)
  const memory = new PrefixMemory(optInteger(o.maxEntries, 'maxEntries', 10_000, 1, 10_000_000))
  const rand = optFunction<() => number>(o.random, 'random', Math.random)
  const hashes: number[] = []
  return {
    name: 'prefix-affinity',
    needsBody: true,
    pick(candidates, request) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      const prompt = promptOf(request)
      if (prompt === undefined) return leastLoaded(candidates, rand)
      prefixHashes(prompt, chunkChars, chunks, hashes)
      const match = memory.longest(hashes, candidates)
      let chosen = match?.endpoint
      if (chosen !== undefined) {
        let total = 0
        for (let i = 0; i < n; i++) total += engineLoad(candidates[i])
        if (engineLoad(chosen) + 1 > loadFactor * (total / n + 1)) chosen = undefined
      }
      chosen ??= leastLoaded(candidates, rand)
      if (chosen !== undefined) memory.remember(hashes, chosen.id)
      return chosen
    },
  }
}
