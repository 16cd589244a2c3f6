import { type EngineUpdate, isGatewayError, PoolSaturatedError, type RequestInfo } from '@switchboard/core'
import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { createBalancer, createEndpoint, score } from '../src/index.ts'
import { req, seeded, tally } from './helpers.ts'

describeBalancer({
  name: 'score',
  create: () => score({ random: seeded(5), chunkChars: 8 }),
  affinity: (key) => req({ method: 'POST', body: { prompt: `${key} and a longer shared question` } }),
})

function engine(running: number, waiting: number, kvCacheUsage = 0.5, models?: string[]): EngineUpdate {
  return { running, waiting, kvCacheUsage, prefixCacheHitRate: Number.NaN, models, complete: true, staleAfterMs: 1_000 }
}

const body = (model: string, prompt = 'hello'): RequestInfo => req({ method: 'POST', body: { model, prompt } })

describe('score', () => {
  it('prefers the shortest queue, then the freest KV cache (weights 2:2:1)', () => {
    const list = makeEndpoints(3)
    list[0].setEngine(engine(4, 2, 0.1))
    list[1].setEngine(engine(1, 0, 0.9))
    list[2].setEngine(engine(1, 0, 0.3))
    const balancer = score({ random: seeded(1) })
    for (let i = 0; i < 10; i++) expect(balancer.pick(list, req())).toBe(list[2])
  })

  it('filters endpoints that do not serve the requested model (when their lists are known)', () => {
    const list = makeEndpoints(3)
    list[0].setEngine(engine(0, 0, 0.1, ['mistral-7b']))
    list[1].setEngine(engine(5, 5, 0.9, ['llama-3-8b']))
    list[2].setEngine(engine(0, 0, 0.1, ['mistral-7b']))
    const balancer = score({ random: seeded(2) })
    for (let i = 0; i < 10; i++) expect(balancer.pick(list, body('llama-3-8b'))).toBe(list[1])
    const counts = tally(() => balancer.pick(list, body('mistral-7b', `${Math.random()}`)), 200)
    expect(counts.get('ep-1') ?? 0).toBe(0)
    // No candidate lists the model: model lists lag, so the filter is skipped rather than failing.
    expect(balancer.pick(list, body('unknown-model'))).toBeDefined()
  })

  it('throws PoolSaturatedError (503 by default, 429 when configured) with Retry-After when every queue is full', () => {
    const list = makeEndpoints(2)
    for (const ep of list) ep.setEngine(engine(8, 4))
    let caught: unknown
    try {
      score({ maxQueue: 4 }).pick(list, req())
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(PoolSaturatedError)
    expect(isGatewayError(caught) && caught.status).toBe(503)
    expect((caught as PoolSaturatedError).headers['retry-after']).toBe('1')
    const limited = createBalancer({ strategy: 'score', options: { maxQueue: 4, onSaturated: 429, retryAfter: '3s' } })
    expect(() => limited.pick(list, req())).toThrow(expect.objectContaining({ status: 429, code: 'ERR_POOL_SATURATED', retryAfterSeconds: 3 }))
    list[1].setEngine(engine(8, 3)) // one below maxQueue: it is picked, nothing thrown
    expect(limited.pick(list, req())).toBe(list[1])
  })

  it('counts stale engines by the gateway in-flight count for saturation and queue', () => {
    const list = makeEndpoints(2)
    list[0].setEngine({ ...engine(Number.NaN, Number.NaN), complete: false })
    list[1].setEngine(engine(0, 2))
    for (let i = 0; i < 4; i++) list[0].begin()
    const balancer = score({ maxQueue: 4, random: seeded(3) })
    expect(balancer.pick(list, req())).toBe(list[1]) // list[0] holds 4 in flight: saturated
  })

  it('keeps a prefix on the endpoint that served it while queues are even', () => {
    const list = makeEndpoints(4)
    for (const ep of list) ep.setEngine(engine(1, 0, 0.5))
    const balancer = score({ random: seeded(4), chunkChars: 16 })
    const prompt = 'You answer questions about the user manual of the X-200 router. '
    const first = balancer.pick(list, req({ body: { prompt: `${prompt} Q1` } }))
    for (let i = 0; i < 20; i++) expect(balancer.pick(list, req({ body: { prompt: `${prompt} Q${i}` } }))).toBe(first)
    // A much longer queue outweighs the prefix (prefix 2 < queue 2 + kv difference).
    const home = list.find((e) => e === first)!
    home.setEngine(engine(9, 9, 0.95))
    expect(balancer.pick(list, req({ body: { prompt: `${prompt} Q99` } }))).not.toBe(first)
  })

  it('uses gateway-observed latency when weighted', () => {
    let now = 0
    const list = [0, 1].map((i) => createEndpoint({ url: `http://10.0.0.${i}:80`, id: `ep-${i}`, now: () => now }))
    for (const [i, latency] of [80, 10].entries()) {
      const t = list[i].begin()
      now += latency
      list[i].end(t, true)
    }
    const balancer = score({ weights: { prefix: 0, queue: 0, kv: 0, latency: 1 }, random: seeded(5) })
    for (let i = 0; i < 10; i++) expect(balancer.pick(list, req())).toBe(list[1])
  })

  it('rejects bad options by name', () => {
    expect(() => score({ weights: { queue: -1 } })).toThrow(/weights.queue must be a number of at least 0/)
    expect(() => score({ weights: { cache: 1 } as never })).toThrow(/weights.cache is not a known option/)
    expect(() => score({ onSaturated: 500 as never })).toThrow(/onSaturated must be one of/)
    expect(() => score({ maxQueue: 0 })).toThrow(/maxQueue must be a number of at least 1/)
  })
})
