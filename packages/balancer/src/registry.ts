import type { Balancer } from '@switchboard/core'
import { consistentHash, type ConsistentHashOptions } from './consistent-hash.ts'
import { firstAvailable, type FirstAvailableOptions } from './first-available.ts'
import { ipHash, type IpHashOptions } from './ip-hash.ts'
import { leastConnections, type LeastConnectionsOptions } from './least-connections.ts'
import { leastLatency, type LeastLatencyOptions } from './least-latency.ts'
import { leastQueue, type LeastQueueOptions } from './least-queue.ts'
import { p2c, type P2cOptions } from './p2c.ts'
import { prefixAffinity, type PrefixAffinityOptions } from './prefix-affinity.ts'
import { random, type RandomOptions } from './random.ts'
import { roundRobin, type RoundRobinOptions } from './round-robin.ts'
import { score, type ScoreOptions } from './score.ts'
import { stickyCookie, type StickyCookieOptions } from './sticky-cookie.ts'

/**
 * Builds a balancer from config options (plain data from YAML/JSON); throws naming a bad option.
 * @example const factory: BalancerFactory = (options) => leastConnections(options)
 */
export type BalancerFactory = (options: Record<string, unknown>) => Balancer

/**
 * How config names a balancer: `p2c`, or `{ strategy: 'my-strategy', options: {...} }`.
 * @example const spec: BalancerSpec = { strategy: 'consistent-hash', options: { key: { cookie: 'sid' } } }
 */
export type BalancerSpec = string | { strategy: string; options?: Record<string, unknown> }

/**
 * The strategy new configs get when they name none.
 * @example createBalancer(DEFAULT_BALANCER) // p2c
 */
export const DEFAULT_BALANCER = 'p2c'

const NAME = /^[a-z0-9][a-z0-9-]*$/
const factories = new Map<string, BalancerFactory>()

/**
 * Makes a strategy nameable from config. Names are kebab-case and unique; registering a taken
 * name throws unless `replace` is true.
 * @example registerBalancer('least-busy', (options) => leastConnections(options as LeastConnectionsOptions))
 */
export function registerBalancer(name: string, factory: BalancerFactory, options: { replace?: boolean } = {}): void {
  if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError('name must be kebab-case, e.g. "my-strategy"')
  if (typeof factory !== 'function') throw new TypeError('factory must be a function')
  if (factories.has(name) && options.replace !== true) {
    throw new RangeError(`balancer "${name}" is already registered (pass { replace: true } to override)`)
  }
  factories.set(name, factory)
}

/**
 * Creates a registered strategy from its config spec. An unknown name throws a `RangeError`
 * listing the known ones; option errors name the option (`key.header must be ...`).
 * @example createBalancer({ strategy: 'consistent-hash', options: { key: { header: 'x-user' } } })
 */
export function createBalancer(spec: BalancerSpec = DEFAULT_BALANCER): Balancer {
  let strategy: unknown
  let options: unknown
  if (typeof spec === 'string') strategy = spec
  else if (typeof spec === 'object' && spec !== null && !Array.isArray(spec)) {
    strategy = spec.strategy
    options = spec.options
  } else throw new TypeError('balancer must be a strategy name or { strategy, options }')
  if (typeof strategy !== 'string') throw new TypeError('strategy must be a string')
  const factory = factories.get(strategy)
  if (factory === undefined) {
    throw new RangeError(`unknown balancer "${strategy}" (known: ${balancerNames().join(', ')})`)
  }
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object' || Array.isArray(options)) throw new TypeError('options must be an object')
  const balancer = factory(options as Record<string, unknown>)
  if (typeof balancer !== 'object' || balancer === null || typeof balancer.pick !== 'function') {
    throw new TypeError(`balancer factory "${strategy}" did not return a balancer`)
  }
  return balancer
}

/**
 * Registered strategy names, sorted.
 * @example balancerNames() // ['consistent-hash', 'first-available', ..., 'sticky-cookie']
 */
export function balancerNames(): string[] {
  return [...factories.keys()].sort()
}

registerBalancer('round-robin', (o) => roundRobin(o as RoundRobinOptions))
registerBalancer('random', (o) => random(o as RandomOptions))
registerBalancer('least-connections', (o) => leastConnections(o as LeastConnectionsOptions))
registerBalancer('least-latency', (o) => leastLatency(o as LeastLatencyOptions))
registerBalancer('p2c', (o) => p2c(o as P2cOptions))
registerBalancer('ip-hash', (o) => ipHash(o as IpHashOptions))
registerBalancer('consistent-hash', (o) => consistentHash(o as ConsistentHashOptions))
registerBalancer('first-available', (o) => firstAvailable(o as FirstAvailableOptions))
registerBalancer('least-queue', (o) => leastQueue(o as LeastQueueOptions))
registerBalancer('prefix-affinity', (o) => prefixAffinity(o as PrefixAffinityOptions))
registerBalancer('score', (o) => score(o as ScoreOptions))
registerBalancer('sticky-cookie', (o) => {
  // Config names the fallback like any balancer: `fallback: least-connections` or `{ strategy, options }`.
  const { fallback, ...rest } = o
  const resolved = fallback === undefined || isBalancer(fallback) ? fallback : createNested(fallback)
  return stickyCookie({ ...rest, fallback: resolved } as StickyCookieOptions)
})

function isBalancer(value: unknown): value is Balancer {
  return typeof value === 'object' && value !== null && typeof (value as Balancer).pick === 'function'
}

function createNested(spec: unknown): Balancer {
  try {
    return createBalancer(spec as BalancerSpec)
  } catch (error) {
    const E = error instanceof RangeError ? RangeError : TypeError
    throw new E(`fallback: ${(error as Error).message}`, { cause: error })
  }
}
