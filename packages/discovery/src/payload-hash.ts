/** Deepest JSON nesting that is canonicalised; deeper bodies are hashed as raw bytes. @example MAX_CANONICAL_DEPTH // 64 */
export const MAX_CANONICAL_DEPTH: number = 64

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * SHA-256 (lowercase hex) of a request body, for remembered-route keys. A body that parses as JSON
 * is hashed as canonical JSON (object keys sorted, no whitespace), so `{"a":1,"b":2}` and
 * `{ "b": 2, "a": 1 }` hash the same; anything else (including invalid UTF-8, or JSON nested deeper
 * than {@link MAX_CANONICAL_DEPTH}) is hashed byte for byte. An empty or absent body hashes as zero
 * bytes. Uses `crypto.subtle.digest` (Web standard).
 * @example await payloadHash(new TextEncoder().encode('{"b":2,"a":1}')) // same as for '{"a":1,"b":2}'
 */
export async function payloadHash(body: Uint8Array | undefined): Promise<string> {
  const bytes = body === undefined || body.byteLength === 0 ? new Uint8Array(0) : canonicalBytes(body)
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return toHex(new Uint8Array(digest))
}

/**
 * Canonical JSON text of `value` (object keys sorted by UTF-16 code units, `undefined` members
 * dropped), or `undefined` when it is not plain JSON or nests deeper than `maxDepth`.
 * @example canonicalJson({ b: [2, 1], a: null }) // '{"a":null,"b":[2,1]}'
 */
export function canonicalJson(value: unknown, maxDepth: number = MAX_CANONICAL_DEPTH): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined
    case 'object': {
      if (value === null) return 'null'
      if (maxDepth <= 0) return undefined
      if (Array.isArray(value)) {
        const items: string[] = []
        for (const item of value) {
          const text = canonicalJson(item, maxDepth - 1)
          if (text === undefined) return undefined
          items.push(text)
        }
        return `[${items.join(',')}]`
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return undefined
      const members: string[] = []
      for (const key of Object.keys(value).sort()) {
        const member = (value as Record<string, unknown>)[key]
        if (member === undefined) continue
        const text = canonicalJson(member, maxDepth - 1)
        if (text === undefined) return undefined
        members.push(`${JSON.stringify(key)}:${text}`)
      }
      return `{${members.join(',')}}`
    }
    default:
      return undefined
  }
}

/** The bytes that get hashed: canonical JSON when the body is JSON, else the body itself. */
function canonicalBytes(body: Uint8Array): Uint8Array {
  let text: string
  try {
    text = strictUtf8.decode(body)
  } catch {
    return body
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // Not JSON, or nested too deep for this runtime's parser: the raw bytes identify it.
    return body
  }
  const canonical = canonicalJson(parsed)
  return canonical === undefined ? body : encoder.encode(canonical)
}

function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}
