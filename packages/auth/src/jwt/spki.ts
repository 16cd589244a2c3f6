/** What an SPKI public key can verify, read from its AlgorithmIdentifier (RFC 5280 §4.1.2.7). */
export type PublicKeyFamily = 'RSA' | 'P-256' | 'P-384' | 'P-521' | 'Ed25519' | 'Ed448'

// DER encodings (tag, length, value) of the OIDs that identify a key type in an SPKI.
const OIDS: ReadonlyArray<readonly [PublicKeyFamily, readonly number[]]> = [
  ['RSA', [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]], // rsaEncryption
  ['RSA', [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]], // id-RSASSA-PSS
  ['P-256', [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]], // prime256v1
  ['P-384', [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]], // secp384r1
  ['P-521', [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]], // secp521r1
  ['Ed25519', [0x06, 0x03, 0x2b, 0x65, 0x70]],
  ['Ed448', [0x06, 0x03, 0x2b, 0x65, 0x71]],
]

const PEM = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n\t ]+)-----END PUBLIC KEY-----\s*$/

/**
 * The key family of a PEM `PUBLIC KEY` (SPKI), or `undefined` when the text is not one (a private
 * key, a certificate, garbage) or its type is not one JWS can use.
 */
export function publicKeyFamily(pem: string): PublicKeyFamily | undefined {
  const m = PEM.exec(pem.trim())
  if (!m) return undefined
  let der: Uint8Array
  try {
    der = Uint8Array.from(atob(m[1]!.replace(/\s+/g, '')), (c) => c.charCodeAt(0))
  } catch {
    return undefined
  }
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }:
  // the OIDs sit in the first few dozen bytes.
  if (der.length < 32 || der[0] !== 0x30) return undefined
  const head = der.subarray(0, 40)
  for (const [family, oid] of OIDS) if (indexOf(head, oid) !== -1) return family
  return undefined
}

function indexOf(haystack: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}
