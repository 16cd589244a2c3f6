import type { Balancer, Endpoint, RequestInfo } from '@switchboard/core'
import { buildMaglev, buildRing, type HashTable, isPrime } from './internal/hash-table.ts'
import { ListState } from './internal/list-state.ts'
import { checkOptions, optEnum, optInteger } from './internal/options.ts'
import { compileKey, hashClientIp, type HashKey, type KeyHasher } from './internal/request-key.ts'

export type { HashKey }

/** Options of {@link consistentHash}. */
export interface ConsistentHashOptions {
  /**
   * Where the affinity key comes from: a header, a cookie, a query parameter, the client IP, or a
   * dotted field of the JSON body (`request.body`, when an earlier step parsed it). Requests
   * without the key hash their client IP instead. @default { clientIp: true }
   */
  key?: HashKey
  /** `ring` (ketama-style, virtual nodes) or `maglev` (lookup table, more even). @default 'ring' */
  algorithm?: 'ring' | 'maglev'
  /** Ring points per endpoint of average weight. @default 160 */
  virtualNodes?: number
  /** Maglev table size, a prime well above 100 × endpoints. @default 65537 */
  tableSize?: number
}

/**
 * Default number of ring points per endpoint of average weight.
 * @example consistentHash({ virtualNodes: DEFAULT_VIRTUAL_NODES * 2 })
 */
export const DEFAULT_VIRTUAL_NODES = 160
/**
 * Default Maglev table size (prime).
 * @example consistentHash({ algorithm: 'maglev', tableSize: DEFAULT_MAGLEV_TABLE_SIZE })
 */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537

/**
 * Consistent hashing: the same key reaches the same endpoint, and when an endpoint joins or
 * leaves only about 1/n of the keys move. Weights scale an endpoint's share of the ring or table
 * (read when the candidate list changes).
 * @example consistentHash({ key: { header: 'x-user' }, algorithm: 'maglev' })
 */
export const consistentHash = (options: ConsistentHashOptions = {}): Balancer =>
  createHashBalancer('consistent-hash', options, ['key'])

/** Shared by `consistent-hash` and `ip-hash` (not exported from the package). */
export function createHashBalancer(name: string, options: object, extraKeys: readonly string[]): Balancer {
  const o = checkOptions(options, ['algorithm', 'virtualNodes', 'tableSize', ...extraKeys])
  const hashKey: KeyHasher = o.key === undefined ? hashClientIp : compileKey(o.key, 'key')
  const algorithm = optEnum(o.algorithm, 'algorithm', ['ring', 'maglev'], 'ring')
  const virtualNodes = optInteger(o.virtualNodes, 'virtualNodes', DEFAULT_VIRTUAL_NODES, 1, 10_000)
  const tableSize = optInteger(o.tableSize, 'tableSize', DEFAULT_MAGLEV_TABLE_SIZE, 2, 16_777_259)
  if (!isPrime(tableSize)) throw new RangeError('tableSize must be a prime number, e.g. 65537')
  const lists = new ListState<HashTable>((candidates: readonly Endpoint[]) =>
    algorithm === 'maglev' ? buildMaglev(candidates, tableSize) : buildRing(candidates, virtualNodes),
  )
  return {
    name,
    pick(candidates: readonly Endpoint[], request: RequestInfo) {
      const n = candidates.length
      if (n < 2) return candidates[0]
      let hash = hashKey(request)
      if (hash < 0) hash = hashClientIp(request)
      if (hash < 0) hash = 0
      return candidates[lists.get(candidates).lookup(hash)]
    },
  }
}
