import { decodeJson, encodeJson } from '@switchboard/core'

/** Headers as stored: lowercase names, no hop-by-hop fields. */
export type StoredHeaders = Record<string, string | string[]>

/** A stored response: what {@link decodeRecord} returns for an entry. */
export interface CacheEntry {
  readonly kind: 'entry'
  readonly status: number
  readonly headers: StoredHeaders
  /** When the request that produced it was sent (ms since epoch, cache clock). */
  readonly requestTime: number
  /** When its head arrived (ms since epoch, cache clock). */
  readonly responseTime: number
  readonly body: Uint8Array
}

/** The record at a primary key when responses vary: which headers, and the variant generation. */
export interface VaryStub {
  readonly kind: 'vary'
  /** Sorted lowercase request header names from `Vary`. */
  readonly names: string[]
  /** Random id in every variant key; a new stub orphans the variants of the old one. */
  readonly generation: string
}

/** Either record kind. */
export type CacheRecord = CacheEntry | VaryStub

/**
 * One store value: a 4-byte big-endian length, a small JSON header, then the body bytes.
 * @example await store.set(key, encodeRecord(entry))
 */
export function encodeRecord(record: CacheRecord): Uint8Array {
  const meta =
    record.kind === 'vary'
      ? { v: FORMAT, k: 'vary', n: record.names, g: record.generation }
      : { v: FORMAT, k: 'entry', s: record.status, h: record.headers, q: record.requestTime, r: record.responseTime }
  const head = encodeJson(meta)
  const body = record.kind === 'entry' ? record.body : EMPTY
  const out = new Uint8Array(4 + head.length + body.length)
  new DataView(out.buffer).setUint32(0, head.length)
  out.set(head, 4)
  out.set(body, 4 + head.length)
  return out
}

/**
 * Reverses {@link encodeRecord}; `undefined` for anything that is not a record of this format
 * (a foreign value under our prefix, or an older format), which callers treat as a miss.
 * @example const record = decodeRecord(await store.get(key))
 */
export function decodeRecord(bytes: Uint8Array | undefined): CacheRecord | undefined {
  if (bytes === undefined || bytes.length < 4) return undefined
  // The memory store hands back the same bytes on every hit: decode them once.
  const known = decoded.get(bytes)
  if (known !== undefined) return known
  const record = decodeFresh(bytes)
  if (record !== undefined) decoded.set(bytes, record)
  return record
}

const decoded = new WeakMap<Uint8Array, CacheRecord>()

function decodeFresh(bytes: Uint8Array): CacheRecord | undefined {
  try {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const length = view.getUint32(0)
    if (4 + length > bytes.length) return undefined
    const meta = decodeJson<Record<string, unknown>>(bytes.subarray(4, 4 + length))
    if (meta.v !== FORMAT) return undefined
    if (meta.k === 'vary' && Array.isArray(meta.n) && typeof meta.g === 'string') {
      return Object.freeze({ kind: 'vary' as const, names: meta.n as string[], generation: meta.g })
    }
    if (meta.k === 'entry' && typeof meta.s === 'number' && typeof meta.h === 'object' && meta.h !== null) {
      // Frozen: a decoded record may be shared by every hit on the same stored bytes.
      return Object.freeze({
        kind: 'entry' as const,
        status: meta.s,
        headers: Object.freeze(meta.h) as StoredHeaders,
        requestTime: Number(meta.q),
        responseTime: Number(meta.r),
        // A copy, so a store keeping the buffer never sees writes into what we hand to clients.
        body: bytes.slice(4 + length),
      })
    }
  } catch {
    // Malformed JSON: treat as absent.
  }
  return undefined
}

const FORMAT = 1
const EMPTY = new Uint8Array(0)
