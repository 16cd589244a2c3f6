import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { canonicalJson, MAX_CANONICAL_DEPTH, payloadHash } from '../src/index.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex')

describe('payloadHash', () => {
  it('hashes an absent or empty body as zero bytes', async () => {
    const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    expect(await payloadHash(undefined)).toBe(empty)
    expect(await payloadHash(new Uint8Array(0))).toBe(empty)
  })

  it('hashes JSON as canonical JSON: key order and whitespace do not matter', async () => {
    const a = await payloadHash(text('{"name":"log_file.log","path":"c:/logs","n":{"x":1,"y":[true,null]}}'))
    const b = await payloadHash(text('{\n  "n": { "y": [ true, null ], "x": 1 },\n  "path": "c:/logs",\n  "name": "log_file.log"\n}'))
    expect(a).toBe(b)
    expect(a).toBe(sha256('{"n":{"x":1,"y":[true,null]},"name":"log_file.log","path":"c:/logs"}'))
  })

  it('tells different JSON values apart (array order, types, values)', async () => {
    const hashes = await Promise.all(
      ['[1,2]', '[2,1]', '{"a":1}', '{"a":"1"}', '{"a":1.5}', '{"a":null}', '"a"', '1', 'true'].map((s) => payloadHash(text(s))),
    )
    expect(new Set(hashes).size).toBe(hashes.length)
  })

  it('hashes non-JSON bodies byte for byte', async () => {
    expect(await payloadHash(text('name=log_file.log&path=c:/logs'))).toBe(sha256('name=log_file.log&path=c:/logs'))
    const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x7d])
    expect(await payloadHash(binary)).toBe(sha256(binary))
    expect(await payloadHash(text('{"a":1'))).toBe(sha256('{"a":1'))
  })

  it('falls back to raw bytes for JSON nested deeper than MAX_CANONICAL_DEPTH', async () => {
    const deep = `${'['.repeat(MAX_CANONICAL_DEPTH + 1)}${']'.repeat(MAX_CANONICAL_DEPTH + 1)}`
    expect(await payloadHash(text(deep))).toBe(sha256(deep))
    const ok = `${'['.repeat(MAX_CANONICAL_DEPTH)} ${']'.repeat(MAX_CANONICAL_DEPTH)}`
    expect(await payloadHash(text(ok))).toBe(sha256(ok.replace(' ', '')))
  })

  it('hashes a slice of a larger buffer by its own bytes only', async () => {
    const buffer = text('xx{"b":2,"a":1}yy')
    expect(await payloadHash(buffer.subarray(2, 15))).toBe(sha256('{"a":1,"b":2}'))
  })
})

describe('canonicalJson', () => {
  it('sorts keys, drops undefined members and refuses non-JSON values', () => {
    expect(canonicalJson({ b: [2, 1], a: null, c: undefined })).toBe('{"a":null,"b":[2,1]}')
    expect(canonicalJson({ d: new Date(0) })).toBeUndefined()
    expect(canonicalJson(Number.NaN)).toBeUndefined()
    expect(canonicalJson([[1]], 1)).toBeUndefined()
  })
})
