// Per-field JSON body conditions (`match.body`): compiled once, tested without building any regex
// per request. Internal to the package apart from the exported types and limits.
import { statelessRegExp } from './conditions.ts'
import { checkRegexSafety } from './regex-safety.ts'

/**
 * A scalar a body field is compared with: a string (exact, or a glob with `*`), a number, a boolean or null.
 * @example const tier: BodyScalar = 'gold'
 */
export type BodyScalar = string | number | boolean | null

/**
 * One condition on one field of the JSON body (`match.body`):
 * - a string: the field is that string, or matches it as a glob when it holds `*` (`llama-3-*`;
 *   `*` is any run of characters, anchored at both ends, case-sensitive);
 * - a number, boolean or `null`: the field is strictly equal to it;
 * - `{ exists: true }` / `{ exists: false }`: the field is present / absent (any type);
 * - `{ in: [...] }`: the field matches any of the listed strings, globs and scalars;
 * - a `RegExp` (programmatic API only): the field is a string the regex matches.
 * @example
 * const conditions: Record<string, BodyCondition> = { model: 'llama-3-*', stream: true, 'metadata.tier': { in: ['gold', 'silver'] } }
 */
export type BodyCondition = BodyScalar | RegExp | { readonly exists: boolean } | { readonly in: readonly BodyScalar[] }

/** Most `*` in one glob; more is refused when the route is compiled. */
export const MAX_GLOB_STARS = 8
/** Longest string condition (exact or glob), in UTF-16 code units. */
export const MAX_BODY_STRING_LENGTH = 1000
/** Most entries in one `{ in: [...] }` list. */
export const MAX_BODY_IN_VALUES = 256
/** Most segments in one field path (`a.b.c` has 3). */
export const MAX_BODY_PATH_SEGMENTS = 16

/** A compiled value test: exact, glob or regex for strings, strict equality otherwise. */
type ValueTest = { readonly kind: 'equal'; readonly value: BodyScalar } | { readonly kind: 'glob'; readonly glob: Glob } | { readonly kind: 'regex'; readonly regex: RegExp }

/** One field condition after compilation. */
export interface CompiledBodyCondition {
  /** Object keys from the body's root to the field. */
  readonly path: readonly string[]
  /** `exists` conditions: whether the field must be present; `undefined` for value tests. */
  readonly exists: boolean | undefined
  /** Value tests, any of which must hold (one entry unless `{ in }`). */
  readonly tests: readonly ValueTest[]
}

/** A glob split at its `*`: `head*mid1*mid2*tail`. */
interface Glob {
  readonly head: string
  readonly middle: readonly string[]
  readonly tail: string
  /** Shortest string it can match (head + middles + tail). */
  readonly minLength: number
}

/**
 * Compiles `match.body`, reporting every problem as (field key or undefined, message). Entries are
 * read with `Object.entries`, so no key is looked up on a prototype.
 */
export function compileBodyConditions(
  record: unknown,
  report: (key: string | undefined, message: string) => void,
): CompiledBodyCondition[] | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record) || record instanceof RegExp) {
    report(undefined, 'must be an object of field path → condition')
    return undefined
  }
  const entries = Object.entries(record)
  if (entries.length === 0) {
    report(undefined, 'must hold at least one field condition')
    return undefined
  }
  let ok = true
  const out: CompiledBodyCondition[] = []
  for (const [key, cond] of entries) {
    const fail = (message: string): void => {
      ok = false
      report(key, message)
    }
    const path = parseFieldPath(key, fail)
    if (path === undefined) continue
    if (cond !== null && typeof cond === 'object' && !(cond instanceof RegExp) && !Array.isArray(cond)) {
      const keys = Object.keys(cond)
      if (keys.length === 1 && keys[0] === 'exists') {
        const exists = (cond as { exists: unknown }).exists
        if (typeof exists !== 'boolean') fail('{ exists } must be true or false')
        else out.push({ path, exists, tests: [] })
        continue
      }
      if (keys.length === 1 && keys[0] === 'in') {
        const list = (cond as { in: unknown }).in
        if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BODY_IN_VALUES) {
          fail(`{ in } must be a list of 1 to ${MAX_BODY_IN_VALUES} strings, numbers, booleans or null`)
          continue
        }
        const tests: ValueTest[] = []
        list.forEach((item: unknown, k) => {
          const test = compileScalar(item, (message) => fail(`in[${k}]: ${message}`), 'must be a string, number, boolean or null')
          if (test) tests.push(test)
        })
        out.push({ path, exists: undefined, tests })
        continue
      }
      fail('an object condition must be { exists: true | false } or { in: [...] }')
      continue
    }
    if (cond instanceof RegExp) {
      const reason = checkRegexSafety(cond.source, cond.flags)
      if (reason !== undefined) fail(`regex /${cond.source}/${cond.flags} ${reason}`)
      else out.push({ path, exists: undefined, tests: [{ kind: 'regex', regex: statelessRegExp(cond) }] })
      continue
    }
    const test = compileScalar(cond, fail, 'must be a string, number, boolean, null, RegExp, { exists } or { in: [...] }')
    if (test) out.push({ path, exists: undefined, tests: [test] })
  }
  return ok ? out : undefined
}

/** True when every condition holds for `body`; a body that is not a plain JSON object matches none. */
export function bodyMatches(conditions: readonly CompiledBodyCondition[], body: unknown): boolean {
  if (!isObject(body)) return false
  for (const cond of conditions) {
    let value: unknown = body
    let present = true
    for (const key of cond.path) {
      // Own properties only: a `constructor` field must not see Object.prototype.constructor.
      if (!isObject(value) || !Object.hasOwn(value, key)) {
        present = false
        break
      }
      value = (value as Record<string, unknown>)[key]
    }
    if (value === undefined) present = false
    if (cond.exists !== undefined) {
      if (present !== cond.exists) return false
      continue
    }
    if (!present || !anyHolds(cond.tests, value)) return false
  }
  return true
}

/**
 * Splits a field key into object keys at `.`; `\.` is a literal dot and `\\` a literal backslash
 * (`"a\\.b"` in JSON, `a\.b` in plain YAML, names the key `a.b`). Empty segments are refused.
 */
function parseFieldPath(key: string, fail: (message: string) => void): string[] | undefined {
  const segments: string[] = []
  let current = ''
  for (let i = 0; i < key.length; i++) {
    const c = key[i]
    if (c === '\\') {
      const next = key[i + 1]
      if (next !== '.' && next !== '\\') return void fail(`field path ${JSON.stringify(key)}: "\\" may only escape "." or "\\"`)
      current += next
      i++
    } else if (c === '.') {
      segments.push(current)
      current = ''
    } else current += c
  }
  segments.push(current)
  if (segments.some((s) => s === '')) return void fail(`field path ${JSON.stringify(key)} has an empty segment (write a literal dot as "\\.")`)
  if (segments.length > MAX_BODY_PATH_SEGMENTS) return void fail(`field path ${JSON.stringify(key)} is deeper than ${MAX_BODY_PATH_SEGMENTS} segments`)
  return segments
}

function compileScalar(cond: unknown, fail: (message: string) => void, expected: string): ValueTest | undefined {
  if (typeof cond === 'string') {
    if (cond.length > MAX_BODY_STRING_LENGTH) return void fail(`a string condition is longer than ${MAX_BODY_STRING_LENGTH} characters`)
    if (!cond.includes('*')) return { kind: 'equal', value: cond }
    const pieces = cond.split('*')
    if (pieces.length - 1 > MAX_GLOB_STARS) return void fail(`glob ${JSON.stringify(cond)} has more than ${MAX_GLOB_STARS} "*"`)
    const middle = pieces.slice(1, -1).filter((p) => p !== '') // `**` is `*`
    const head = pieces[0]
    const tail = pieces.at(-1)!
    return { kind: 'glob', glob: { head, middle, tail, minLength: head.length + tail.length + middle.reduce((n, p) => n + p.length, 0) } }
  }
  if (typeof cond === 'number') {
    if (!Number.isFinite(cond)) return void fail('a number condition must be finite (JSON has no NaN or Infinity)')
    return { kind: 'equal', value: cond }
  }
  if (typeof cond === 'boolean' || cond === null) return { kind: 'equal', value: cond }
  fail(expected)
  return undefined
}

function anyHolds(tests: readonly ValueTest[], value: unknown): boolean {
  for (const test of tests) if (valueHolds(test, value)) return true
  return false
}

function valueHolds(test: ValueTest, value: unknown): boolean {
  if (test.kind === 'equal') return value === test.value
  if (typeof value !== 'string') return false
  return test.kind === 'glob' ? globMatches(test.glob, value) : test.regex.test(value)
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * Matches `value` against a glob whose only special character is `*` (any run, anchored at both
 * ends). Greedy and non-backtracking: the head and tail are fixed, and each middle piece is taken at
 * its leftmost occurrence after the previous one, which is optimal for `*`-only globs. Linear in
 * the value's length times the number of pieces.
 */
function globMatches(glob: Glob, value: string): boolean {
  if (value.length < glob.minLength) return false
  if (!value.startsWith(glob.head) || !value.endsWith(glob.tail)) return false
  let at = glob.head.length
  const end = value.length - glob.tail.length
  for (const piece of glob.middle) {
    const found = value.indexOf(piece, at)
    if (found === -1 || found + piece.length > end) return false
    at = found + piece.length
  }
  return true
}
