import type { Balancer, Endpoint, RequestInfo } from '@switchboard/core'
import { describe, expect, it } from 'vitest'
import { createEndpoint, type EndpointState } from './endpoint.ts'

/**
 * Options of {@link describeBalancer}.
 * @example const options: DescribeBalancerOptions = { name: 'round-robin', create: () => roundRobin(), weighted: true }
 */
export interface DescribeBalancerOptions {
  /** Expected `balancer.name` (the registry name). */
  name: string
  /** Returns a fresh balancer; called once per check. Inject seeded randomness here. */
  create: () => Balancer
  /** The strategy spreads load in proportion to `weight` when endpoints are idle. @default false */
  weighted?: boolean
  /**
   * Largest accepted difference between an endpoint's share of 10 000 picks and its share of the
   * total weight (absolute, 0.02 = two percentage points). @default 0.02
   */
  tolerance?: number
  /**
   * For affinity strategies: builds a request carrying `key` (in a header, cookie, ...). The suite
   * then checks that one key keeps reaching one endpoint. @default undefined
   */
  affinity?: (key: string) => RequestInfo
  /** Builds the i-th ordinary request. @default GET / from 198.51.100.(i % 250) */
  request?: (i: number) => RequestInfo
  /** Candidate list sizes to exercise. @default [1, 3, 30, 300] */
  sizes?: readonly number[]
}

/**
 * The shared conformance suite every balancer passes: empty list gives `undefined`, the pick is
 * always a current candidate (never one from a stale list), a single candidate is always chosen,
 * weights hold over 10 000 picks (`weighted`), one key keeps one endpoint (`affinity`), and lists
 * of 1, 3, 30 and 300 candidates work. Call it from a test file; it uses vitest's `describe`/`it`.
 * @example
 * describeBalancer({ name: 'random', create: () => random(), weighted: true })
 */
export function describeBalancer(options: DescribeBalancerOptions): void {
  const { name, create } = options
  const tolerance = options.tolerance ?? 0.02
  const request = options.request ?? defaultRequest
  const sizes = options.sizes ?? [1, 3, 30, 300]

  describe(`balancer conformance: ${name}`, () => {
    it('has the registry name and a pick() function', () => {
      const balancer = create()
      expect(balancer.name).toBe(name)
      expect(typeof balancer.pick).toBe('function')
    })

    it('returns undefined for an empty list', () => {
      const balancer = create()
      expect(balancer.pick([], request(0))).toBeUndefined()
      const list = makeEndpoints(3)
      balancer.pick(list, request(1))
      expect(balancer.pick([], request(2))).toBeUndefined()
    })

    it('always chooses the only candidate', () => {
      const balancer = create()
      const only = makeEndpoints(1)
      for (let i = 0; i < 50; i++) expect(balancer.pick(only, request(i))).toBe(only[0])
    })

    for (const size of sizes) {
      it(`always picks one of ${size} candidate(s), including under load`, () => {
        const balancer = create()
        const list = makeEndpoints(size, (i) => 1 + (i % 3))
        const members = new Set<Endpoint>(list)
        for (let i = 0; i < 600; i++) {
          const picked = balancer.pick(list, request(i))
          expect(picked !== undefined && members.has(picked)).toBe(true)
          // Feed some live stats back so stat-driven strategies leave their idle path.
          if (picked !== undefined && i % 3 === 0) {
            const state = picked as EndpointState
            const started = state.begin()
            if (i % 2 === 0) state.end(started - (i % 7), i % 11 !== 0)
          }
        }
      })
    }

    it('never returns an endpoint removed from the list (stale state)', () => {
      const balancer = create()
      const all = makeEndpoints(6)
      for (let i = 0; i < 200; i++) balancer.pick(all, request(i))
      if (options.affinity) for (let k = 0; k < 50; k++) balancer.pick(all, options.affinity(`key-${k}`))
      const removed = all[2]
      const fewer = all.filter((e) => e !== removed)
      // Same length, one endpoint swapped: state keyed on length alone would go stale here.
      const swapped = all.map((e) => (e === removed ? makeEndpoints(1, () => 1, 'swap')[0] : e))
      for (const list of [fewer, swapped]) {
        const members = new Set<Endpoint>(list)
        for (let i = 0; i < 500; i++) {
          const picked = balancer.pick(list, request(i))
          expect(picked !== removed && picked !== undefined && members.has(picked)).toBe(true)
        }
        if (options.affinity) {
          for (let k = 0; k < 50; k++) {
            const picked = balancer.pick(list, options.affinity(`key-${k}`))
            expect(picked !== removed && picked !== undefined && members.has(picked)).toBe(true)
          }
        }
      }
    })

    if (options.weighted) {
      it(`honours weights 1:2:3:4 over 10 000 picks within ±${tolerance}`, () => {
        const balancer = create()
        const list = makeEndpoints(4, (i) => i + 1)
        const counts = new Map<Endpoint | undefined, number>()
        const picks = 10_000
        for (let i = 0; i < picks; i++) {
          const picked = balancer.pick(list, request(i))
          counts.set(picked, (counts.get(picked) ?? 0) + 1)
        }
        for (let i = 0; i < list.length; i++) {
          const share = (counts.get(list[i]) ?? 0) / picks
          expect(Math.abs(share - (i + 1) / 10), `endpoint ${i} share ${share}`).toBeLessThanOrEqual(tolerance)
        }
      })
    }

    if (options.affinity) {
      const affinity = options.affinity
      it('sends one key to one endpoint, also across a rebuilt list with the same endpoints', () => {
        const balancer = create()
        const list = makeEndpoints(5)
        const first = new Map<string, Endpoint | undefined>()
        for (let k = 0; k < 100; k++) first.set(`key-${k}`, balancer.pick(list, affinity(`key-${k}`)))
        for (let i = 0; i < 100; i++) balancer.pick(list, request(i)) // unrelated traffic in between
        const copy = list.slice()
        for (let k = 0; k < 100; k++) {
          expect(balancer.pick(list, affinity(`key-${k}`))).toBe(first.get(`key-${k}`))
          expect(balancer.pick(copy, affinity(`key-${k}`))).toBe(first.get(`key-${k}`))
        }
        expect(new Set(first.values()).size).toBeGreaterThan(1) // keys still spread
      })
    }

    it('returns string headers (or nothing) from responseHeaders(), when it has one', () => {
      const balancer = create()
      const list = makeEndpoints(3)
      const req = request(0)
      const picked = balancer.pick(list, req)
      expect(picked).toBeDefined()
      const headers = balancer.responseHeaders?.(picked as Endpoint, req)
      if (headers !== undefined) {
        for (const value of Object.values(headers)) expect(typeof value).toBe('string')
      }
      expect(headers === undefined || typeof headers === 'object').toBe(true)
    })
  })
}

/**
 * `count` live endpoints (`http://10.0.<i/250>.<i%250>:8080`) for balancer tests.
 * @example const list = makeEndpoints(3, (i) => i + 1) // weights 1, 2, 3
 */
export function makeEndpoints(
  count: number,
  weight: (i: number) => number = () => 1,
  prefix = 'ep',
): EndpointState[] {
  const list: EndpointState[] = []
  for (let i = 0; i < count; i++) {
    list.push(
      createEndpoint({
        url: `http://10.${prefix === 'ep' ? 0 : 1}.${Math.floor(i / 250)}.${i % 250}:8080`,
        id: `${prefix}-${i}`,
        weight: weight(i),
        now: () => 0,
      }),
    )
  }
  return list
}

function defaultRequest(i: number): RequestInfo {
  return { method: 'GET', target: `/items/${i}`, headers: {}, clientIp: `198.51.100.${i % 250}` }
}
