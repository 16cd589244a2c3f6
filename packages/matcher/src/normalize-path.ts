/**
 * Normalises a raw request path for matching, or returns `undefined` for a path the gateway must
 * refuse with 400. Only matching uses the result; the gateway still forwards the raw target.
 *
 * - percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other
 *   escape is kept with upper-case hex (`%2f` → `%2F`, RFC 3986 §6.2.2);
 * - `.` and `..` segments are resolved (RFC 3986 §5.2.4), after decoding, so `%2e%2e` counts too;
 * - empty segments collapse (`//admin` → `/admin`); a trailing slash is kept;
 * - `%2F`, `%5C` and `\` are never turned into separators.
 *
 * Refused (`undefined`): a path not starting with `/`; control characters (NUL included), `%00`,
 * `?` or `#`; malformed percent-encoding; a `..` above the root; a `..` that would remove an empty
 * segment (origins disagree on `/a//..`); and a segment that would be a dot segment once `%2F`, `%5C` or
 * `\` were read as separators (`..%2F`, `..\`) or a `;` parameter were dropped (`..;x`), because
 * some origins do.
 *
 * @example
 * normalizePath('/public/../%61dmin') // '/admin'
 * normalizePath('/../etc/passwd')      // undefined
 */
export function normalizePath(rawPath: string): string | undefined {
  if (typeof rawPath !== 'string' || rawPath.charCodeAt(0) !== SLASH) return undefined
  return isClean(rawPath) ? rawPath : slowNormalize(rawPath)
}

/**
 * Decodes unreserved escapes and upper-cases the others in one path segment (no dot handling).
 * Used for the static segments of patterns, so they compare equal to normalised request paths.
 */
export function normalizeSegment(segment: string): string | undefined {
  return segment.includes('%') ? decodeUnreserved(segment) : segment
}

const SLASH = 0x2f
const DOT = 0x2e
const PERCENT = 0x25
const BACKSLASH = 0x5c
const QUESTION = 0x3f
const HASH = 0x23

/** True when the path needs no work: the common case on the hot path, scanned once without allocating. */
function isClean(path: string): boolean {
  let prev = SLASH
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === PERCENT || c === BACKSLASH || c === QUESTION || c === HASH) return false
    if (c === SLASH && prev === SLASH) return false
    if (c === DOT && prev === SLASH) return false // possible dot segment
    prev = c
  }
  return true
}

function slowNormalize(raw: string): string | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === QUESTION || c === HASH) return undefined
  }
  const decoded = raw.includes('%') ? decodeUnreserved(raw) : raw
  if (decoded === undefined) return undefined
  const parts = decoded.split('/')
  // RFC 3986 §5.2.4 over the segments as received (empty ones included); empty segments are
  // dropped from the result only at the end, as an origin that merges slashes would see it.
  const stack: string[] = []
  const last = parts.length - 1
  for (let k = 1; k <= last; k++) {
    const seg = parts[k]
    if (seg === '.') continue
    if (seg === '..') {
      if (stack.length === 0) return undefined // above the root
      // RFC 3986 drops the empty segment in `/a//..`, an origin that merges slashes drops `a`.
      if (stack.pop() === '') return undefined
      continue
    }
    if (seg !== '' && hasHiddenDotSegment(seg)) return undefined
    stack.push(seg)
  }
  let out = ''
  for (const seg of stack) if (seg !== '') out += '/' + seg
  const tail = parts[last]
  return out === '' || tail === '' || tail === '.' || tail === '..' ? out + '/' : out
}

/**
 * A segment such as `..%2F`, `a\..` or `..;x` that turns into a dot segment on an origin that splits
 * on `%2F`, `%5C` or `\`, or drops `;` path parameters (Tomcat reads `/public/..;/admin` as `/admin`).
 */
function hasHiddenDotSegment(seg: string): boolean {
  if (!seg.includes('.') || !HIDDEN_SEPARATOR.test(seg)) return false
  for (const piece of seg.split(SEPARATORS)) {
    const semicolon = piece.search(PARAMETER)
    const name = semicolon === -1 ? piece : piece.slice(0, semicolon)
    if (name === '.' || name === '..') return true
  }
  return false
}

const HIDDEN_SEPARATOR = /%2F|%5C|%3B|[\\;]/
const SEPARATORS = /%2F|%5C|\\/
const PARAMETER = /%3B|;/

function decodeUnreserved(s: string): string | undefined {
  let out = ''
  let from = 0
  let i = s.indexOf('%')
  while (i !== -1) {
    const hi = hexValue(s.charCodeAt(i + 1))
    const lo = hexValue(s.charCodeAt(i + 2))
    if (hi < 0 || lo < 0) return undefined
    const byte = hi * 16 + lo
    if (byte === 0) return undefined
    out += s.slice(from, i)
    out += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[hi] + HEX[lo]
    from = i + 3
    i = s.indexOf('%', from)
  }
  return out + s.slice(from)
}

const HEX = '0123456789ABCDEF'

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1 // NaN past the end lands here too
}

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~"
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === DOT || b === 0x5f || b === 0x7e
  )
}
