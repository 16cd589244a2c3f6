// Internal: what the LLM strategies read from an endpoint (engine stats with the gateway's own
// in-flight count as the fallback) and the prompt-prefix memory they share. Not exported.
import type { Endpoint, RequestInfo } from '@switchboard/core'
import { fmix32 } from './hash.ts'

/**
 * The endpoint's queue: `running + waiting` as the engine last reported them, plus the requests
 * the gateway sent since that scrape. Stale or absent engine stats fall back to the gateway's own
 * in-flight count, so a renamed metric never reads as an idle engine.
 */
export function engineLoad(endpoint: Endpoint): number {
  const e = endpoint.engine
  if (e === undefined || e.stale || Number.isNaN(e.running) || Number.isNaN(e.waiting)) return endpoint.stats.inFlight
  return e.running + e.waiting + e.inFlightSinceScrape
}

/** Requests waiting for a slot: the engine's `waiting` plus what was sent since the scrape; in-flight when unknown. */
export function engineQueue(endpoint: Endpoint): number {
  const e = endpoint.engine
  if (e === undefined || e.stale || Number.isNaN(e.waiting)) return endpoint.stats.inFlight
  return e.waiting + e.inFlightSinceScrape
}

/**
 * The prompt of an OpenAI-style body: `messages` (role and text content, in order) or `prompt`
 * (a string or a list of strings). `undefined` when the body has neither.
 */
export function promptOf(request: RequestInfo): string | undefined {
  const body = request.body
  if (typeof body !== 'object' || body === null) return undefined
  const { messages, prompt } = body as { messages?: unknown; prompt?: unknown }
  if (Array.isArray(messages)) {
    let text = ''
    for (const m of messages) {
      if (typeof m !== 'object' || m === null) continue
      const { role, content } = m as { role?: unknown; content?: unknown }
      text += `${typeof role === 'string' ? role : ''}\n`
      if (typeof content === 'string') text += content
      else if (Array.isArray(content)) {
        for (const part of content) {
          const t = (part as { text?: unknown } | null)?.text
          if (typeof t === 'string') text += t
        }
      }
      text += '\n'
    }
    return text.length > 0 ? text : undefined
  }
  if (typeof prompt === 'string') return prompt
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string')) return prompt.join('\n')
  return undefined
}

/** The `model` of the body, when it names one. */
export function modelOf(request: RequestInfo): string | undefined {
  const body = request.body
  if (typeof body !== 'object' || body === null) return undefined
  const model = (body as { model?: unknown }).model
  return typeof model === 'string' && model.length > 0 ? model : undefined
}

/**
 * Hashes of the prompt's leading 1, 2, … `chunks` chunks of `chunkChars` characters (a shorter
 * prompt gives fewer): hash[k] identifies the first k+1 chunks, so equal prefixes share entries.
 */
export function prefixHashes(prompt: string, chunkChars: number, chunks: number, out: number[]): number[] {
  out.length = 0
  let h = 0x811c9dc5
  const end = Math.min(prompt.length, chunkChars * chunks)
  for (let i = 0; i < end; i++) {
    h ^= prompt.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
    if ((i + 1) % chunkChars === 0 || i + 1 === end) out.push(fmix32(h))
  }
  return out
}

/** A bounded LRU map from prefix hash to the id of the endpoint that last served it. */
export class PrefixMemory {
  readonly #map = new Map<number, string>()
  readonly #max: number

  constructor(maxEntries: number) {
    this.#max = maxEntries
  }

  get size(): number {
    return this.#map.size
  }

  /** How many leading chunks of `hashes` `id` served last (0 = none). */
  matched(hashes: readonly number[], id: string): number {
    for (let k = hashes.length - 1; k >= 0; k--) if (this.#map.get(hashes[k]) === id) return k + 1
    return 0
  }

  /** The candidate that served the longest prefix of `hashes`, and how many chunks long. */
  longest(hashes: readonly number[], candidates: readonly Endpoint[]): { endpoint: Endpoint; chunks: number } | undefined {
    for (let k = hashes.length - 1; k >= 0; k--) {
      const id = this.#map.get(hashes[k])
      if (id === undefined) continue
      for (let i = 0; i < candidates.length; i++) if (candidates[i].id === id) return { endpoint: candidates[i], chunks: k + 1 }
    }
    return undefined
  }

  /** `id` served these prefixes now (most recently used). */
  remember(hashes: readonly number[], id: string): void {
    for (const h of hashes) {
      this.#map.delete(h)
      this.#map.set(h, id)
    }
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as number)
  }
}

/** The least loaded candidate, a uniformly random one among equals (reservoir sampling: no allocation). */
export function leastLoaded(candidates: readonly Endpoint[], rand: () => number): Endpoint | undefined {
  const n = candidates.length
  if (n < 2) return candidates[0]
  let best: Endpoint | undefined
  let min = Number.POSITIVE_INFINITY
  let ties = 0
  for (let i = 0; i < n; i++) {
    const c = candidates[i]
    const load = engineLoad(c)
    if (load < min) {
      min = load
      best = c
      ties = 1
    } else if (load === min && rand() * ++ties < 1) best = c
  }
  return best ?? candidates[0]
}

/** A finite number option of at least `min`, or `fallback` when absent. */
export function optNumber(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) throw new RangeError(`${name} must be a number of at least ${min}`)
  return value
}
