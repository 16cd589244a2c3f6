export type { Balancer, Endpoint, EndpointStats, RequestInfo } from '@switchboard/core'
export { createEndpoint, EndpointState, type EndpointOptions } from './endpoint.ts'
export type { EngineStats, EngineStatsField, EngineUpdate } from '@switchboard/core'
export {
  registerBalancer,
  createBalancer,
  balancerNames,
  DEFAULT_BALANCER,
  type BalancerFactory,
  type BalancerSpec,
} from './registry.ts'
export { roundRobin, type RoundRobinOptions } from './round-robin.ts'
export { random, type RandomOptions } from './random.ts'
export { leastConnections, type LeastConnectionsOptions } from './least-connections.ts'
export { leastLatency, type LeastLatencyOptions } from './least-latency.ts'
export { p2c, type P2cOptions } from './p2c.ts'
export { ipHash, type IpHashOptions } from './ip-hash.ts'
export {
  consistentHash,
  DEFAULT_VIRTUAL_NODES,
  DEFAULT_MAGLEV_TABLE_SIZE,
  type ConsistentHashOptions,
  type HashKey,
} from './consistent-hash.ts'
export { stickyCookie, DEFAULT_STICKY_COOKIE, type StickyCookieOptions } from './sticky-cookie.ts'
export { firstAvailable, type FirstAvailableOptions } from './first-available.ts'
export { leastQueue, type LeastQueueOptions } from './least-queue.ts'
export { prefixAffinity, type PrefixAffinityOptions } from './prefix-affinity.ts'
export { score, type ScoreOptions, type ScoreWeights } from './score.ts'
