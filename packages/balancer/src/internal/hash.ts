// Internal: string hashing used by the hash-based strategies. Not exported from the package.

/** FNV-1a over `text[start..end)`, finished with the murmur3 mixer for avalanche. Allocates nothing. */
export function hashRange(text: string, start: number, end: number): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

/** {@link hashRange} over the whole string. */
export function hashString(text: string): number {
  return hashRange(text, 0, text.length)
}

/** A second, independent hash (different seed) for Maglev's skip. */
export function hashString2(text: string): number {
  let h = 0x9747b28c
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x5bd1e995)
    h ^= h >>> 15
  }
  return fmix32(h)
}

/** murmur3 32-bit finaliser; result is unsigned. */
export function fmix32(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** 8 lowercase hex digits of `hashString(text)`: short, opaque, reversible only by guessing. */
export function shortHash(text: string): string {
  return hashString(text).toString(16).padStart(8, '0')
}
