// The JSON request body the gateway parses for itself: for routes with body conditions (the
// matcher's `needsBody`) and for balancers that read the prompt (`Balancer.needsBody`).

/**
 * Parses request body bytes as JSON: `undefined` for an empty body or one that is not valid UTF-8
 * JSON (so it matches no body condition, and a balancer sees no prompt).
 * @example parseJson(new TextEncoder().encode('{"model":"llama-3-8b"}')) // { model: 'llama-3-8b' }
 */
export function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined
  try {
    return JSON.parse(DECODER.decode(bytes))
  } catch {
    return undefined
  }
}

// `fatal`: bytes that are not UTF-8 are not JSON either, rather than U+FFFD-patched text.
const DECODER = new TextDecoder('utf-8', { fatal: true })
