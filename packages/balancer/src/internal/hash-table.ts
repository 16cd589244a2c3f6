// Internal: the lookup tables behind consistent-hash and ip-hash.
import type { Endpoint } from '@switchboard/core'
import { hashString, hashString2 } from './hash.ts'

/** Maps a 32-bit key hash to an index into the candidate list it was built from. */
export interface HashTable {
  lookup(hash: number): number
}

/**
 * Ketama-style ring: each endpoint owns `virtualNodes × weight / mean weight` points. Adding an
 * endpoint moves only the keys that fall on its new points (≈ 1/n of them).
 */
export function buildRing(candidates: readonly Endpoint[], virtualNodes: number): HashTable {
  const n = candidates.length
  let weightSum = 0
  for (const c of candidates) weightSum += c.weight
  const mean = weightSum / n
  const counts = new Uint32Array(n)
  let total = 0
  for (let i = 0; i < n; i++) {
    counts[i] = Math.max(1, Math.round((virtualNodes * candidates[i].weight) / mean))
    total += counts[i]
  }
  const hashes = new Uint32Array(total)
  const owners = new Int32Array(total)
  let k = 0
  for (let i = 0; i < n; i++) {
    const id = candidates[i].id
    for (let v = 0; v < counts[i]; v++) {
      hashes[k] = hashString(`${id}#${v}`)
      owners[k++] = i
    }
  }
  const order = new Uint32Array(total)
  for (let j = 0; j < total; j++) order[j] = j
  // Ties (a 32-bit collision) resolve by id so the ring does not depend on candidate order.
  order.sort((a, b) => hashes[a] - hashes[b] || (candidates[owners[a]].id < candidates[owners[b]].id ? -1 : 1))
  const points = new Uint32Array(total)
  const pointOwners = new Int32Array(total)
  for (let j = 0; j < total; j++) {
    points[j] = hashes[order[j]]
    pointOwners[j] = owners[order[j]]
  }
  return {
    lookup(hash) {
      let j = lowerBound(points, hash)
      if (j === points.length) j = 0
      return pointOwners[j]
    },
  }
}

/**
 * Maglev (Eisenbud et al., NSDI 2016 §3.4) with Envoy-style weights: a fixed-size table filled
 * by per-endpoint permutations. Lookup is one array read; remapping is near-minimal.
 */
export function buildMaglev(candidates: readonly Endpoint[], tableSize: number): HashTable {
  const n = candidates.length
  const table = new Int32Array(tableSize).fill(-1)
  const offset = new Uint32Array(n)
  const skip = new Uint32Array(n)
  const next = new Uint32Array(n)
  const normalized = new Float64Array(n)
  const target = new Float64Array(n)
  let maxWeight = 0
  for (const c of candidates) maxWeight = Math.max(maxWeight, c.weight)
  for (let i = 0; i < n; i++) {
    const id = candidates[i].id
    offset[i] = hashString(id) % tableSize
    skip[i] = (hashString2(id) % (tableSize - 1)) + 1
    normalized[i] = candidates[i].weight / maxWeight
  }
  let filled = 0
  for (let iteration = 0; filled < tableSize; iteration++) {
    for (let i = 0; i < n && filled < tableSize; i++) {
      if (iteration * normalized[i] < target[i]) continue
      target[i] += 1
      let c = (offset[i] + skip[i] * next[i]) % tableSize
      while (table[c] >= 0) {
        next[i]++
        c = (offset[i] + skip[i] * next[i]) % tableSize
      }
      table[c] = i
      next[i]++
      filled++
    }
  }
  return {
    lookup(hash) {
      return table[hash % tableSize]
    },
  }
}

/** True when `value` is a prime (table sizes must be). */
export function isPrime(value: number): boolean {
  if (value < 2) return false
  for (let d = 2; d * d <= value; d++) if (value % d === 0) return false
  return true
}

function lowerBound(points: Uint32Array, value: number): number {
  let lo = 0
  let hi = points.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid] < value) lo = mid + 1
    else hi = mid
  }
  return lo
}
