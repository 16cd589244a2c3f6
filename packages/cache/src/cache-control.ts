/**
 * Parsed `Cache-Control` directives: lowercase names, `true` for a directive without a value, the
 * unquoted value otherwise. The first occurrence of a repeated directive wins.
 * @example const cc: CacheDirectives = parseCacheControl('max-age=60')
 */
export type CacheDirectives = Readonly<Record<string, string | true>>

/**
 * Parses one or more `Cache-Control` field values (RFC 9111 §5.2). Commas inside quoted strings
 * are kept; names are lowercased; unknown directives are kept so callers can read extensions.
 * @example parseCacheControl('public, max-age=60, no-cache="set-cookie"')
 * // { public: true, 'max-age': '60', 'no-cache': 'set-cookie' }
 */
export function parseCacheControl(value: string | readonly string[] | undefined): CacheDirectives {
  if (value === undefined) return NO_DIRECTIVES
  const text = typeof value === 'string' ? value : value.join(',')
  // Hot path of every hit: the same few header values repeat, so parse each once (bounded).
  const known = parsed.get(text)
  if (known !== undefined) return known
  const out = parseDirectives(text)
  if (parsed.size >= PARSED_LIMIT) parsed.clear()
  parsed.set(text, out)
  return out
}

const NO_DIRECTIVES: CacheDirectives = Object.freeze(Object.create(null) as Record<string, string | true>)
const PARSED_LIMIT = 512
const parsed = new Map<string, CacheDirectives>()

function parseDirectives(text: string): CacheDirectives {
  const out: Record<string, string | true> = Object.create(null)
  for (const part of splitList(text)) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (!name || name in out) continue
    if (eq === -1) {
      out[name] = true
      continue
    }
    let v = part.slice(eq + 1).trim()
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
    out[name] = v
  }
  // Shared between callers: frozen so none can change what another one reads.
  return Object.freeze(out)
}

/**
 * Reads a delta-seconds directive value in milliseconds (RFC 9111 §1.2.2). Returns `undefined`
 * when the directive is absent and `0` when its value is malformed (treated as already stale).
 * @example deltaSeconds(parseCacheControl('max-age=60'), 'max-age') // 60000
 */
export function deltaSeconds(directives: CacheDirectives, name: string): number | undefined {
  const v = directives[name]
  if (v === undefined) return undefined
  // RFC 9111 §1.2.2: a valueless or malformed delta is unusable; treat the response as stale.
  if (v === true || !/^\d+$/.test(v)) return 0
  return Math.min(Number(v), MAX_DELTA_SECONDS) * 1000
}

/** RFC 9111 §1.2.2: values beyond 2^31 are capped at 2^31 seconds. */
const MAX_DELTA_SECONDS = 2 ** 31

/** Splits a comma-separated list, keeping commas inside quoted strings. */
function splitList(text: string): string[] {
  const parts: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '"') quoted = !quoted
    else if (ch === '\\' && quoted && i + 1 < text.length) {
      current += ch + text[++i]
      continue
    } else if (ch === ',' && !quoted) {
      if (current.trim()) parts.push(current)
      current = ''
      continue
    }
    current += ch
  }
  if (current.trim()) parts.push(current)
  return parts
}
