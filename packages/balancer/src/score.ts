import { type Balancer, type Endpoint, PoolSaturatedError } from '@switchboard/core'
import { engineLoad, engineQueue, modelOf, optNumber, PrefixMemory, prefixHashes, promptOf } from './internal/engine.ts'
import { checkOptions, optDuration, optEnum, optFunction, optInteger } from './internal/options.ts'

/**
 * Weights of the scorers of {@link score}; each scorer gives 0..1, higher is better.
 * @example const weights: ScoreWeights = { prefix: 3, queue: 2, kv: 1, latency: 0 }
 */
export interface ScoreWeights {
  /** Share of the prompt's leading chunks the endpoint served last. @default 2 */
  prefix?: number
  /** Shortest queue (`running + waiting` + sent since the scrape), min-max scaled over the candidates. @default 2 */
  queue?: number
  /** Free KV cache, `1 - kvCacheUsage` (0.5 when unknown or stale). @default 1 */
  kv?: number
  /** Lowest gateway-observed latency EWMA, min-max scaled (0.5 when unknown). @default 0 */
  latency?: number
}

/** Options of {@link score}. */
export interface ScoreOptions {
  /** Scorer weights. @default { prefix: 2, queue: 2, kv: 1, latency: 0 } */
  weights?: ScoreWeights
  /**
   * An endpoint whose queue (`waiting` + sent since the scrape; in flight when its stats are
   * stale) reaches this is saturated and filtered out. @default undefined (never saturated)
   */
  maxQueue?: number
  /** Status when every candidate is saturated: 429 or 503, with `Retry-After`. @default 503 */
  onSaturated?: 429 | 503
  /** `Retry-After` sent then: a duration (`'2s'`) or milliseconds, rounded up to seconds. @default 1_000 */
  retryAfter?: number | string
  /** Characters per prompt chunk for the prefix scorer. @default 256 */
  chunkChars?: number
  /** Leading chunks hashed. @default 4 */
  chunks?: number
  /** Prefix hashes remembered (LRU). @default 10_000 */
  maxEntries?: number
  /** Source of randomness for ties. @default Math.random */
  random?: () => number
}

/**
 * For LLM engines, after the Gateway API inference extension's endpoint picker: filters, then
 * weighted scorers, then the best score (ties at random). Filters: the endpoint serves the
 * body's `model` when both are known (when no candidate lists it, the filter is skipped: model
 * lists lag), and is not saturated (`maxQueue`). Scorers: prefix affinity, queue depth, KV-cache
 * usage and gateway-observed latency, weighted 2:2:1:0 by default. When every candidate is
 * saturated, `pick()` throws `PoolSaturatedError` (503 or 429 with `Retry-After`).
 * @example const endpoint = score({ maxQueue: 32, onSaturated: 429 }).pick(endpoints, { ...request, body })
 */
export const score = (options: ScoreOptions = {}): Balancer => {
  const o = checkOptions(options, ['weights', 'maxQueue', 'onSaturated', 'retryAfter', 'chunkChars', 'chunks', 'maxEntries', 'random'])
  const w = checkOptions(o.weights, ['prefix', 'queue', 'kv', 'latency'], 'weights.')
  const weights = {
    prefix: optNumber(w.prefix, 'weights.prefix', 2, 0),
    queue: optNumber(w.queue, 'weights.queue', 2, 0),
    kv: optNumber(w.kv, 'weights.kv', 1, 0),
    latency: optNumber(w.latency, 'weights.latency', 0, 0),
  }
  const maxQueue = o.maxQueue === undefined ? Number.POSITIVE_INFINITY : optNumber(o.maxQueue, 'maxQueue', 0, 1)
  const status = o.onSaturated === undefined ? 503 : (Number(optEnum(String(o.onSaturated), 'onSaturated', ['429', '503'], '503')) as 429 | 503)
  const retryAfterSeconds = Math.max(1, Math.ceil((optDuration(o.retryAfter, 'retryAfter') ?? 1_000) / 1000))
  const chunkChars = optInteger(o.chunkChars, 'chunkChars', 256, 1, 1_000_000)
  const chunks = optInteger(o.chunks, 'chunks', 4, 1, 64)
  const memory = new PrefixMemory(optInteger(o.maxEntries, 'maxEntries', 10_000, 1, 10_000_000))
  const rand = optFunction<() => number>(o.random, 'random', Math.random)
  const hashes: number[] = []
  const kept: Endpoint[] = []
  let loads = new Float64Array(16)

  return {
    name: 'score',
    needsBody: true,
    pick(candidates, request) {
      if (candidates.length === 0) return undefined
      // Filter: serves the model (skipped when no candidate lists it), then not saturated.
      const model = modelOf(request)
      kept.length = 0
      if (model !== undefined) for (const c of candidates) if (serves(c, model)) kept.push(c)
      const pool = kept.length > 0 ? kept.slice() : candidates
      kept.length = 0
      for (const c of pool) if (engineQueue(c) < maxQueue) kept.push(c)
      if (kept.length === 0) {
        throw new PoolSaturatedError({ status, retryAfterSeconds, details: { candidates: candidates.length, maxQueue } })
      }
      const list = kept
      const n = list.length
      const prompt = weights.prefix > 0 ? promptOf(request) : undefined
      if (prompt === undefined) hashes.length = 0
      else prefixHashes(prompt, chunkChars, chunks, hashes)
      if (n === 1) return remember(list[0])
      if (loads.length < n) loads = new Float64Array(n * 2)
      let minLoad = Number.POSITIVE_INFINITY
      let maxLoad = Number.NEGATIVE_INFINITY
      let minLatency = Number.POSITIVE_INFINITY
      let maxLatency = Number.NEGATIVE_INFINITY
      for (let i = 0; i < n; i++) {
        const load = engineLoad(list[i])
        loads[i] = load
        if (load < minLoad) minLoad = load
        if (load > maxLoad) maxLoad = load
        const latency = list[i].stats.latencyEwmaMs
        if (latency < minLatency) minLatency = latency
        if (latency > maxLatency) maxLatency = latency
      }
      let best: Endpoint | undefined
      let bestScore = Number.NEGATIVE_INFINITY
      let ties = 0
      for (let i = 0; i < n; i++) {
        const c = list[i]
        let s = 0
        if (weights.prefix > 0 && hashes.length > 0) s += (weights.prefix * memory.matched(hashes, c.id)) / hashes.length
        if (weights.queue > 0) s += weights.queue * (maxLoad === minLoad ? 1 : (maxLoad - loads[i]) / (maxLoad - minLoad))
        if (weights.kv > 0) {
          const e = c.engine
          const usage = e === undefined || e.stale || Number.isNaN(e.kvCacheUsage) ? 0.5 : 1 - Math.min(1, Math.max(0, e.kvCacheUsage))
          s += weights.kv * usage
        }
        if (weights.latency > 0) {
          const latency = c.stats.latencyEwmaMs
          const scaled = Number.isNaN(latency) ? 0.5 : maxLatency === minLatency ? 1 : (maxLatency - latency) / (maxLatency - minLatency)
          s += weights.latency * scaled
        }
        if (s > bestScore) {
          bestScore = s
          best = c
          ties = 1
        } else if (s === bestScore && rand() * ++ties < 1) best = c
      }
      return remember(best ?? list[0])
    },
  }

  function remember(chosen: Endpoint): Endpoint {
    if (hashes.length > 0) memory.remember(hashes, chosen.id)
    return chosen
  }
}

/** True unless the endpoint's model list is known and lacks `model`. */
function serves(endpoint: Endpoint, model: string): boolean {
  const models = endpoint.engine?.models
  return models === undefined || models.length === 0 || models.includes(model)
}
