// pick() throughput per strategy for 3, 30 and 300 candidates.
// Run: cd /work/main && npx vitest bench --run packages/balancer   (table: node packages/balancer/bench/print-table.mjs)
import type { Balancer, RequestInfo } from '@switchboard/core'
import { bench, describe } from 'vitest'
import { makeEndpoints } from '../src/conformance.ts'
import {
  consistentHash,
  firstAvailable,
  ipHash,
  leastConnections,
  leastLatency,
  p2c,
  random,
  roundRobin,
  stickyCookie,
} from '../src/index.ts'

const STRATEGIES: Array<[string, () => Balancer]> = [
  ['round-robin', () => roundRobin()],
  ['random', () => random()],
  ['least-connections', () => leastConnections()],
  ['least-latency', () => leastLatency()],
  ['p2c', () => p2c()],
  ['ip-hash', () => ipHash()],
  ['consistent-hash (header, ring)', () => consistentHash({ key: { header: 'x-user' } })],
  ['consistent-hash (cookie, maglev)', () => consistentHash({ key: { cookie: 'sid' }, algorithm: 'maglev' })],
  ['sticky-cookie', () => stickyCookie()],
  ['first-available', () => firstAvailable()],
]

// A pool of requests so hash strategies do not see one key only; built once, outside the timed loop.
const REQUESTS: RequestInfo[] = Array.from({ length: 64 }, (_, i) => ({
  method: 'GET',
  target: `/items/${i}?page=1`,
  headers: { 'x-user': `user-${i}`, cookie: `theme=dark; sid=s${i}` },
  clientIp: `198.51.100.${i}`,
}))

for (const size of [3, 30, 300]) {
  describe(`${size} endpoints`, () => {
    const list = makeEndpoints(size, (i) => 1 + (i % 3))
    for (const [i, e] of list.entries()) {
      // Realistic, varied stats so stat-driven strategies do real comparisons.
      e.recordProbe(5 + (i % 7))
      for (let k = 0; k < i % 4; k++) e.begin()
    }
    for (const [name, create] of STRATEGIES) {
      const balancer = create()
      let n = 0
      bench(name, () => {
        balancer.pick(list, REQUESTS[n++ & 63])
      }, { time: 150, warmupTime: 50 })
    }
  })
}
