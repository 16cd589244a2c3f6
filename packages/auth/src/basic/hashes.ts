import { argon2dAsync, argon2iAsync, argon2idAsync } from '@noble/hashes/argon2.js'
import bcrypt from 'bcryptjs'
import { constantTimeEqual } from '../shared/credentials.ts'

/**
 * Largest argon2 memory cost accepted, in KiB (256 MiB): more is a denial of service per login.
 * @example if (m > MAX_ARGON2_MEMORY_KIB) throw new RangeError('m too large')
 */
export const MAX_ARGON2_MEMORY_KIB = 256 * 1024
/**
 * Largest argon2 time cost (iterations) accepted.
 * @example if (t > MAX_ARGON2_ITERATIONS) throw new RangeError('t too large')
 */
export const MAX_ARGON2_ITERATIONS = 10
/**
 * Largest bcrypt cost accepted (2^15 rounds, about a second in bcryptjs).
 * @example if (cost > MAX_BCRYPT_COST) throw new RangeError('cost too high')
 */
export const MAX_BCRYPT_COST = 15

/** A parsed password hash. */
export type PasswordHash =
  | { readonly kind: 'bcrypt'; readonly text: string; readonly cost: number }
  | {
      readonly kind: 'argon2'
      readonly text: string
      readonly variant: 'argon2id' | 'argon2i' | 'argon2d'
      readonly version: number
      readonly m: number
      readonly t: number
      readonly p: number
      readonly salt: Uint8Array
      readonly hash: Uint8Array
    }

const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/
const ARGON2 = /^\$(argon2id|argon2i|argon2d)\$(?:v=(\d+)\$)?m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

/**
 * Parses a bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 PHC string
 * (`$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`); returns why not when it is neither or its cost
 * is out of bounds (so plaintext passwords are refused, never compared).
 */
export function parsePasswordHash(text: string): PasswordHash | string {
  const b = BCRYPT.exec(text)
  if (b) {
    const cost = Number(b[1])
    if (cost < 4 || cost > MAX_BCRYPT_COST) return `a bcrypt cost from 04 to ${MAX_BCRYPT_COST}`
    return { kind: 'bcrypt', text, cost }
  }
  const a = ARGON2.exec(text)
  if (!a) return 'a bcrypt ($2b$…) or argon2 PHC ($argon2id$v=19$m=…,t=…,p=…$salt$hash) hash, not a plaintext password'
  const version = a[2] === undefined ? 0x10 : Number(a[2])
  const m = Number(a[3])
  const t = Number(a[4])
  const p = Number(a[5])
  if (version !== 0x10 && version !== 0x13) return 'an argon2 hash of version 16 or 19'
  if (t < 1 || t > MAX_ARGON2_ITERATIONS) return `an argon2 hash with t from 1 to ${MAX_ARGON2_ITERATIONS}`
  if (p < 1 || p > 64) return 'an argon2 hash with p from 1 to 64'
  if (m < 8 * p || m > MAX_ARGON2_MEMORY_KIB) return `an argon2 hash with m from 8·p to ${MAX_ARGON2_MEMORY_KIB} (KiB, 256 MiB)`
  const salt = unbase64(a[6]!)
  const hash = unbase64(a[7]!)
  if (salt === undefined || salt.length < 8) return 'an argon2 hash with a salt of at least 8 bytes'
  if (hash === undefined || hash.length < 4 || hash.length > 1024) return 'an argon2 hash with an output of 4 to 1024 bytes'
  return { kind: 'argon2', text, variant: a[1] as 'argon2id' | 'argon2i' | 'argon2d', version, m, t, p, salt, hash }
}

const ARGON2_FN = { argon2id: argon2idAsync, argon2i: argon2iAsync, argon2d: argon2dAsync } as const

/**
 * True when `password` matches the parsed hash: bcryptjs for bcrypt (its own constant-time
 * compare), @noble/hashes for argon2 (output compared in constant time). Both yield to the event
 * loop while they work.
 */
export async function verifyParsedHash(password: string, parsed: PasswordHash): Promise<boolean> {
  if (parsed.kind === 'bcrypt') return bcrypt.compare(password, parsed.text)
  const out = await ARGON2_FN[parsed.variant](password, parsed.salt, {
    t: parsed.t,
    m: parsed.m,
    p: parsed.p,
    version: parsed.version,
    dkLen: parsed.hash.length,
    maxmem: parsed.m * 1024 + 1024 * 1024,
  })
  return constantTimeEqual(out, parsed.hash)
}

// PHC strings use standard base64 without padding.
function unbase64(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined
  try {
    const bin = atob(text + '='.repeat((4 - (text.length % 4)) % 4))
    return Uint8Array.from(bin, (c) => c.charCodeAt(0))
  } catch {
    return undefined
  }
}
