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

export function parsePattern(pattern: unknown, where: string, strictTrailingSlash: boolean): ParsedPattern {
  if (typeof pattern !== 'string' || pattern.charCodeAt(0) !== 0x2f) {
    throw new TypeError(`${where}: must be a string starting with "/"`)
  }
  // eslint-disable-next-line no-control-regex
  if (/[?#\s\x00-\x1f\x7f]/.test(pattern)) throw new TypeError(`${where}: "${pattern}" contains "?", "#", a space or a control character`)
  const raw = pattern.split('/').slice(1)
  if (!strictTrailingSlash && raw.length > 1 && raw.at(-1) === '') raw.pop()
  const segments: PatternSegment[] = []
  const names = new Set<string>()
  let wildcard: string | undefined
  for (let j = 0; j < raw.length; j++) {
    const seg = raw[j]
    const last = j === raw.length - 1
    if (seg.startsWith('*')) {
      if (!last) throw new TypeError(`${where}: "${pattern}" has a "*" that is not the last segment`)
      wildcard = seg === '*' ? '*' : seg.slice(1)
      if (wildcard !== '*' && !NAME.test(wildcard)) throw new TypeError(`${where}: "${pattern}" has an invalid wildcard name "${wildcard}"`)
      addName(names, wildcard, pattern, where)
    } else if (seg.includes('*')) {
      throw new TypeError(`${where}: "${pattern}" uses "*" inside a segment; it may only be a whole last segment`)
    } else if (seg.startsWith(':')) {
      const name = seg.slice(1)
      if (!NAME.test(name)) throw new TypeError(`${where}: "${pattern}" has an invalid param name "${name}"`)
      addName(names, name, pattern, where)
      segments.push({ param: true, name })
    } else if (seg === '' && !last) {
      throw new TypeError(`${where}: "${pattern}" has an empty segment ("//")`)
    } else if (seg === '.' || seg === '..') {
      throw new TypeError(`${where}: "${pattern}" has a "${seg}" segment`)
    } else {
      const value = normalizeSegment(seg)
      if (value === undefined) throw new TypeError(`${where}: "${pattern}" has malformed percent-encoding`)
      segments.push({ param: false, value })
    }
  }
  return { segments, wildcard }
}

function addName(names: Set<string>, name: string, pattern: string, where: string): void {
  if (names.has(name)) throw new TypeError(`${where}: "${pattern}" repeats the param name "${name}"`)
  names.add(name)
}
