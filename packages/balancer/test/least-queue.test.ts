import type { EngineUpdate } from '@switchboard/core'
import { describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { createEndpoint, leastQueue } from '../src/index.ts'
import { req, seeded, tally } from './helpers.ts'

describeBalancer({ name: 'least-queue', create: () => leastQueue({ random: seeded(3) }) })

/** A fresh, complete engine report. */
function engine(running: number, waiting: number, extra: Partial<EngineUpdate> = {}): EngineUpdate {
  return { running, waiting, kvCacheUsage: 0.5, prefixCacheHitRate: Number.NaN, complete: true, staleAfterMs: 1_000, ...extra }
}

describe('leastQueue', () => {
  it('sends every request to the engine with the shortest running + waiting queue', () => {
    const list = makeEndpoints(3)
    list[0].setEngine(engine(4, 3))
    list[1].setEngine(engine(4, 0))
    list[2].setEngine(engine(2, 6))
    const balancer = leastQueue({ random: seeded(1) })
    for (let i = 0; i < 20; i++) expect(balancer.pick(list, req())).toBe(list[1])
  })

  it("adds the gateway's own requests since the scrape, so one stale scrape cannot herd traffic", () => {
    const list = makeEndpoints(3)
    for (const ep of list) ep.setEngine(engine(2, 0))
    const balancer = leastQueue({ random: seeded(5) })
    const counts = new Map<string, number>()
    for (let i = 0; i < 30; i++) {
      const choice = balancer.pick(list, req())
      const picked = list.find((e) => e === choice)!
      picked.begin() // the gateway sends it; the engine's figures do not know yet
      counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1)
    }
    expect([...counts.values()]).toEqual([10, 10, 10])
    expect(list.map((e) => e.engine!.inFlightSinceScrape)).toEqual([10, 10, 10])
    list[0].setEngine(engine(0, 0)) // a new scrape starts the count over
    expect(list[0].engine!.inFlightSinceScrape).toBe(0)
    expect(balancer.pick(list, req())).toBe(list[0])
  })

  it('only counts requests begun after the scrape when they finish', () => {
    let now = 0
    const ep = createEndpoint({ url: 'http://10.0.0.1:80', now: () => now })
    ep.setEngine(engine(0, 0))
    const before = ep.begin()
    now = 10
    ep.setEngine(engine(1, 0)) // the engine now reports the first request itself
    const after = ep.begin()
    expect(ep.engine!.inFlightSinceScrape).toBe(1)
    ep.end(before, true)
    expect(ep.engine!.inFlightSinceScrape).toBe(1)
    ep.end(after, true)
    expect(ep.engine!.inFlightSinceScrape).toBe(0)
  })

  it('falls back to the gateway in-flight count when an engine is stale (a renamed metric), never reading it as idle', () => {
    const list = makeEndpoints(2)
    list[0].setEngine(engine(Number.NaN, Number.NaN, { complete: false }))
    list[1].setEngine(engine(1, 0))
    for (let i = 0; i < 3; i++) list[0].begin()
    expect(list[0].engine!.stale).toBe(true)
    expect(list[0].engine!.waiting).toBeNaN()
    const balancer = leastQueue({ random: seeded(2) })
    expect(balancer.pick(list, req())).toBe(list[1]) // stale: 3 in flight > 1 + 0
  })

  it('turns stale once the figures are older than staleAfterMs', () => {
    let now = 0
    const ep = createEndpoint({ url: 'http://10.0.0.1:80', now: () => now })
    ep.setEngine(engine(1, 1, { staleAfterMs: 300 }))
    expect(ep.engine!.stale).toBe(false)
    now = 301
    expect(ep.engine!.stale).toBe(true)
    expect(ep.engine!.ageMs).toBe(301)
    expect(ep.engine!.ageOf('waiting')).toBe(301)
    expect(ep.engine!.ageOf('models')).toBe(Number.POSITIVE_INFINITY)
  })

  it('breaks ties at random instead of always taking the first', () => {
    const list = makeEndpoints(4)
    for (const ep of list) ep.setEngine(engine(1, 1))
    const balancer = leastQueue({ random: seeded(9) })
    const counts = tally(() => balancer.pick(list, req()), 4000)
    for (const ep of list) expect(Math.abs(counts.get(ep.id)! / 4000 - 0.25)).toBeLessThan(0.03)
  })

  it('rejects unknown options by name', () => {
    expect(() => leastQueue({ seed: 1 } as never)).toThrow(/seed is not a known option/)
  })
})
