// Path pattern parsing and validation. Internal to the package.
import { normalizeSegment } from './normalize-path.ts'

export type PatternSegment = { readonly param: false; readonly value: string } | { readonly param: true; readonly name: string }

export interface ParsedPattern {
  /** Segments before the wildcard; a trailing slash is a final `''` static segment. */
  readonly segments: readonly PatternSegment[]
  /** Name of the trailing wildcard (`*` when unnamed), or `undefined`. */
  readonly wildcard: string | undefined
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
// RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; plus "/" between segments.
const PATH_CHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@%/]/

/**
 * Parses a path pattern, reporting every problem found to `report` (messages without the field
 * name); `undefined` when there was any.
 */
export function parsePattern(pattern: unknown, strictTrailingSlash: boolean, report: (message: string) => void): ParsedPattern | undefined {
  if (typeof pattern !== 'string' || pattern.charCodeAt(0) !== 0x2f) {
    report('must be a string starting with "/"')
    return undefined
  }
  let ok = true
  const fail = (message: string): void => {
    ok = false
    report(message)
  }
  const shown = JSON.stringify(pattern)
  const bad = new Set<string>()
  for (const ch of pattern) if (!PATH_CHAR.test(ch)) bad.add(ch)
  for (const ch of bad) fail(`${shown} contains ${describeChar(ch)}`)
  const raw = pattern.split('/').slice(1)
  if (!strictTrailingSlash && raw.length > 1 && raw.at(-1) === '') raw.pop()
  const segments: PatternSegment[] = []
  const names = new Set<string>()
  const addName = (name: string): void => {
    if (names.has(name)) fail(`${shown} repeats the param name "${name}"`)
    names.add(name)
  }
  let wildcard: string | undefined
  for (let j = 0; j < raw.length; j++) {
    const seg = raw[j]
    const last = j === raw.length - 1
    if (seg.startsWith('*')) {
      if (!last) fail(`${shown} has a "*" that is not the last segment; a wildcard may only end the pattern`)
      wildcard = seg === '*' ? '*' : seg.slice(1)
      if (wildcard !== '*' && !NAME.test(wildcard)) fail(`${shown} has an invalid wildcard name "${wildcard}" (letters, digits and _, not starting with a digit)`)
      else addName(wildcard)
    } else if (seg.includes('*')) {
      fail(`${shown} uses "*" inside a segment; it may only be a whole last segment`)
    } else if (seg.startsWith(':')) {
      const name = seg.slice(1)
      if (name === '') fail(`${shown} has an empty param name (":" needs a name such as ":id")`)
      else if (!NAME.test(name)) fail(`${shown} has an invalid param name "${name}" (letters, digits and _, not starting with a digit)`)
      else addName(name)
      segments.push({ param: true, name })
    } else if (seg === '' && !last) {
      fail(`${shown} has an empty segment ("//")`)
    } else if (seg === '.' || seg === '..') {
      fail(`${shown} has a "${seg}" segment`)
    } else {
      const value = normalizeSegment(seg)
      if (value === undefined) fail(`${shown} has malformed percent-encoding (or %00)`)
      else segments.push({ param: false, value })
    }
  }
  return ok ? { segments, wildcard } : undefined
}

function describeChar(ch: string): string {
  if (ch === '?') return '"?" (match the query with match.query)'
  if (ch === '#') return '"#" (a fragment never reaches the server)'
  const code = ch.codePointAt(0)!
  const shown = code < 0x21 || code === 0x7f ? `a space or control character (U+${code.toString(16).toUpperCase().padStart(4, '0')})` : `"${ch}"`
  const hint = ch === '{' || ch === '}' ? ', or use ":name" for a param' : ''
  return `${shown}, which a request path cannot carry unencoded; write it percent-encoded (${encode(ch)})${hint}`
}

function encode(ch: string): string {
  let out = ''
  for (const byte of new TextEncoder().encode(ch)) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  return out
}
