// What a request is counted by, shared by the policies that keep per-key state in the store
// (rate-limit, token-budget); not exported from the package.
import { CLIENT_STATE, type ConfigValidator, type Exchange, ForbiddenError, type OptionReader, SUBJECT_STATE } from '@switchboard/core'

/** One part of a request key: `ip`, `subject`, `client`, `route` or `header:NAME`. */
export type RequestKeyPart = 'ip' | 'subject' | 'client' | 'route' | `header:${string}`

/** What happens to a request whose key (or a part of it) has no value. */
export type MissingKeyBehaviour = 'allow' | 'deny' | 'shared'

/** Reads one key part of a request; `undefined` when it has no value. */
export type KeyReader = (ex: Exchange) => string | undefined

/** True when `k` names a key part. */
export function isKeyPart(k: string): boolean {
  return /^(ip|subject|client|route)$/i.test(k) || /^header:[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(k)
}

/** Parses `key` (one part or a list) of an options mapping, naming the key path in errors. */
export function parseKeyOption(r: OptionReader, validator: ConfigValidator, fallback: RequestKeyPart): RequestKeyPart[] {
  const keyRaw = r.get('key')
  const keyList = keyRaw === undefined ? [fallback] : Array.isArray(keyRaw) ? keyRaw : [keyRaw]
  if (keyList.length === 0) validator.fail(r.path('key'), 'at least one key part', keyRaw)
  return keyList.map((k, i) => {
    const path = Array.isArray(keyRaw) ? `${r.path('key')}[${i}]` : r.path('key')
    if (typeof k === 'string' && isKeyPart(k)) return k.toLowerCase() as RequestKeyPart
    return validator.fail(path, 'ip, subject, client, route or header:NAME', k)
  })
}

/** The reader of one key part; `owner` names the policy in the error for an unknown part. */
export function keyReader(part: RequestKeyPart, owner: string): KeyReader {
  const lower = part.toLowerCase()
  if (lower === 'ip') return (ex) => ex.request.clientIp || undefined
  if (lower === 'route') return (ex) => ex.route?.name
  if (lower === 'subject') return (ex) => stateString(ex.state.get(SUBJECT_STATE))
  if (lower === 'client') return (ex) => stateString(ex.state.get(CLIENT_STATE))
  if (lower.startsWith('header:') && lower.length > 'header:'.length) {
    const header = lower.slice('header:'.length)
    return (ex) => {
      const value = ex.request.headers[header]
      const text = Array.isArray(value) ? value.join(', ') : value
      return text === undefined || text === '' ? undefined : text
    }
  }
  throw new RangeError(`${owner}: key part ${JSON.stringify(part)} is not ip, subject, client, route or header:NAME`)
}

/**
 * The request's key from its parts (not yet compacted, see {@link compactKey}): `undefined` when a
 * part is missing and `missing` is `'allow'` (count nothing); throws 403 for `'deny'`; `'shared'`
 * puts every keyless request on one counter (per the other parts).
 */
export function readRequestKey(ex: Exchange, readers: readonly KeyReader[], missing: MissingKeyBehaviour, denial: string): string | undefined {
  const parts: string[] = []
  for (const read of readers) {
    const value = read(ex)
    if (value === undefined) {
      if (missing === 'allow') return undefined
      if (missing === 'deny') throw new ForbiddenError({ message: denial })
      parts.push('-')
    } else parts.push(`=${encodeURIComponent(value)}`)
  }
  return parts.length === 1 ? parts[0]! : parts.join('&')
}

/** Long keys (big header values) become a SHA-256 digest: bounded store keys, no collisions to aim for. */
export async function compactKey(key: string): Promise<string> {
  if (key.length <= 200) return key
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)))
  let hex = ''
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0')
  return `#${hex}`
}

function stateString(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return undefined
}
