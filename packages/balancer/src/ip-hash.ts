import type { Balancer } from '@switchboard/core'
import { createHashBalancer } from './consistent-hash.ts'

/** Options of {@link ipHash}. */
export interface IpHashOptions {
  /** `ring` or `maglev`, as for consistent-hash. @default 'ring' */
  algorithm?: 'ring' | 'maglev'
  /** Ring points per endpoint of average weight. @default 160 */
  virtualNodes?: number
  /** Maglev table size, a prime. @default 65537 */
  tableSize?: number
}

/**
 * Client affinity by address: the same client IP (after trusted-proxy resolution) reaches the
 * same endpoint, with consistent hashing so a joining endpoint moves only ≈ 1/n of the clients.
 * @example const endpoint = ipHash().pick(endpoints, request) // undefined only when endpoints is empty
 */
export const ipHash = (options: IpHashOptions = {}): Balancer => createHashBalancer('ip-hash', options, [])
