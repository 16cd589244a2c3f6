import { canonicalJson, MAX_CANONICAL_DEPTH } from '@switchboard/core'

export { canonicalJson, MAX_CANONICAL_DEPTH }

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
