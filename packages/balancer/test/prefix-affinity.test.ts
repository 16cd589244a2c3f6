import type { EngineUpdate, RequestInfo } from '@switchboard/core'
import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { prefixAffinity } from '../src/index.ts'
import { req, seeded, tally } from './helpers.ts'

const chat = (system: string, user: string): RequestInfo =>
  req({ method: 'POST', target: '/v1/chat/completions', body: { model: 'llama', messages: [{ role: 'system', content: system }, { role: 'user', content: user }] } })

describeBalancer({
  name: 'prefix-affinity',
  create: () => prefixAffinity({ random: seeded(4), chunkChars: 8 }),
  affinity: (key) => req({ method: 'POST', body: { prompt: `${key} tell me a story about ${key}` } }),
})

function engine(running: number, waiting: number): EngineUpdate {
  return { running, waiting, kvCacheUsage: 0.2, prefixCacheHitRate: Number.NaN, complete: true, staleAfterMs: 1_000 }
}

describe('prefixAffinity', () => {
  it('says it needs the parsed body', () => {
    expect(prefixAffinity().needsBody).toBe(true)
  })

  it('sends requests sharing a long system prompt to the endpoint that served it first', () => {
    const list = makeEndpoints(4)
    const balancer = prefixAffinity({ random: seeded(1), chunkChars: 16, chunks: 4 })
    const system = 'You are a careful assistant for the billing team. Answer briefly.'
    const first = balancer.pick(list, chat(system, 'question 0'))
    for (let i = 1; i < 50; i++) expect(balancer.pick(list, chat(system, `question ${i}`))).toBe(first)
  })

  it('spreads distinct prompts like least-queue', () => {
    const list = makeEndpoints(3)
    const balancer = prefixAffinity({ random: seeded(2), chunkChars: 4, chunks: 2 })
    const counts = tally((i) => balancer.pick(list, req({ body: { prompt: `${i}: summarise this` } })), 300)
    for (const ep of list) expect(counts.get(ep.id)).toBeGreaterThan(60)
  })

  it('moves a hot prefix off an endpoint loaded above loadFactor × the mean', () => {
    const list = makeEndpoints(3)
    const balancer = prefixAffinity({ random: seeded(3), chunkChars: 16, loadFactor: 1.25 })
    const system = 'A long shared system prompt that every request carries.'
    const home = balancer.pick(list, chat(system, 'a'))!
    for (const ep of list) ep.setEngine(ep === home ? engine(6, 4) : engine(2, 0))
    // load 10 + 1 > 1.25 × (14 / 3 + 1): the bound sends it to a least-queue endpoint instead.
    const moved = balancer.pick(list, chat(system, 'b'))
    expect(moved).not.toBe(home)
    for (const ep of list) ep.setEngine(engine(2, 0))
    // Back within the bound, the prefix now lives where it moved.
    expect(balancer.pick(list, chat(system, 'c'))).toBe(moved)
  })

  it('goes least-queue without a prompt in the body', () => {
    const list = makeEndpoints(3)
    list[0].setEngine(engine(3, 0))
    list[1].setEngine(engine(0, 0))
    list[2].setEngine(engine(5, 1))
    const balancer = prefixAffinity({ random: seeded(6) })
    expect(balancer.pick(list, req())).toBe(list[1])
    expect(balancer.pick(list, req({ body: { input: 'no prompt field' } }))).toBe(list[1])
  })

  it('forgets the least recently used prefixes past maxEntries', () => {
    const list = makeEndpoints(4)
    // A huge loadFactor: a remembered prefix always wins, so only forgetting can move it.
    const balancer = prefixAffinity({ random: seeded(8), chunkChars: 4, chunks: 1, maxEntries: 2, loadFactor: 1000 })
    const home = balancer.pick(list, req({ body: { prompt: 'aaaa' } }))!
    const busy = list.find((e) => e === home)!
    for (let i = 0; i < 5; i++) busy.begin()
    expect(balancer.pick(list, req({ body: { prompt: 'aaaa' } }))).toBe(home) // remembered, despite the load
    expect(balancer.pick(list, req({ body: { prompt: 'bbbb' } }))).not.toBe(home)
    expect(balancer.pick(list, req({ body: { prompt: 'cccc' } }))).not.toBe(home) // 'aaaa' is the oldest: evicted
    expect(balancer.pick(list, req({ body: { prompt: 'aaaa' } }))).not.toBe(home)
  })

  it('rejects bad options by name', () => {
    expect(() => prefixAffinity({ chunkChars: 0 })).toThrow(/chunkChars must be an integer/)
    expect(() => prefixAffinity({ loadFactor: 0.5 })).toThrow(/loadFactor must be a number of at least 1/)
  })
})
