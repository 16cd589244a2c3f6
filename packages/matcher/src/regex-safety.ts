/** Longest regex source {@link checkRegexSafety} accepts. */
export const MAX_REGEX_SOURCE_LENGTH = 1000

/**
 * Refuses regular expressions whose matching time can explode on a short input (ReDoS), so a route
 * config cannot block the event loop. Conservative: some harmless patterns are refused too.
 *
 * Refused: a source longer than {@link MAX_REGEX_SOURCE_LENGTH}; a syntax error; a group repeated
 * more than once (`*`, `+`, `{n}` with n > 1, ...) that contains a quantifier or an alternation
 * (`(a+)+`, `(a*)*`, `(a|a)*`, `(.*a){20}`), unless it is provably unambiguous (see below);
 * backreferences (`\1`, `\k<name>`); a lookahead or lookbehind containing a quantifier (`(?=.*x)`).
 *
 * A repeated group still passes when each repetition can only start one way: its alternatives are
 * plain strings with pairwise disjoint first characters (`(?:get|put)+`, `(a|b)*`), or it is a
 * sequence of single characters and classes that starts with an unquantified one none of its
 * quantified members can match (`(?:/[a-z0-9]+)*`: every repetition starts at a `/`).
 *
 * Not covered: polynomial backtracking between adjacent quantifiers (`\d+\d+$`), which grows with
 * the square of the input rather than exponentially.
 *
 * @param source the regex source, as in `RegExp.prototype.source`
 * @param flags the regex flags (`i` widens the character comparison, `u`/`v` change escapes)
 * @returns why the pattern is refused, or `undefined` when it is accepted
 * @example
 * checkRegexSafety('^/api/v[0-9]+/users$') // undefined
 * checkRegexSafety('^/(a+)+$')             // 'repeats a group that contains a quantifier ...'
 */
export function checkRegexSafety(source: string, flags: string = ''): string | undefined {
  if (typeof source !== 'string') return 'must be a string'
  if (typeof flags !== 'string') return 'flags must be a string'
  if (source.length > MAX_REGEX_SOURCE_LENGTH) {
    return `is ${source.length} characters long; at most ${MAX_REGEX_SOURCE_LENGTH} are allowed`
  }
  try {
    new RegExp(source, flags)
  } catch (error) {
    return `invalid regular expression: ${(error as Error).message}`
  }
  let ast: Node[][]
  try {
    ast = new Parser(source, flags).parse()
  } catch {
    // The engine accepted what our parser did not understand: refuse rather than guess.
    return 'uses regular expression syntax the safety check does not understand'
  }
  return checkAlternatives(ast, flags.includes('i'))
}

// ---- internals ----------------------------------------------------------------------------

/** Sorted, merged, inclusive code point ranges. */
type CharSet = readonly (readonly [number, number])[]

type Node =
  | { readonly type: 'char'; readonly set: CharSet }
  | { readonly type: 'assert' }
  | { readonly type: 'backref' }
  | { readonly type: 'group'; readonly look: boolean; readonly alts: Node[][] }
  | { readonly type: 'quant'; readonly node: Node; readonly max: number }

const MAX_CP = 0x10ffff
const ANY: CharSet = [[0, MAX_CP]]
const DIGIT: CharSet = [[0x30, 0x39]]
const WORD: CharSet = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]
const SPACE: CharSet = normalize([
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a],
  [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
])

const REASON_NESTED =
  'repeats a group that contains a quantifier or an alternation (like "(a+)+", "(a|a)*" or "(.*a){20}"); such nesting can take exponential time on a short input'
const REASON_BACKREF = 'uses a backreference (\\1, \\k<name>), which can take exponential time'
const REASON_LOOK = 'has a lookahead or lookbehind containing a quantifier, which can take exponential time'

function checkAlternatives(alts: Node[][], ci: boolean): string | undefined {
  for (const seq of alts) {
    for (const node of seq) {
      const reason = checkNode(node, ci)
      if (reason !== undefined) return reason
    }
  }
  return undefined
}

function checkNode(node: Node, ci: boolean): string | undefined {
  switch (node.type) {
    case 'backref':
      return REASON_BACKREF
    case 'group':
      if (node.look && node.alts.some((seq) => seq.some(hasQuantifier))) return REASON_LOOK
      return checkAlternatives(node.alts, ci)
    case 'quant': {
      const inner = node.node
      if (inner.type === 'group' && node.max > 1 && inner.alts.length > 0) {
        const complex = inner.alts.length > 1 || inner.alts.some((seq) => seq.some((n) => hasQuantifier(n) || hasAlternation(n)))
        if (complex && !isUnambiguous(inner.alts, ci)) return REASON_NESTED
      }
      return checkNode(inner, ci)
    }
    default:
      return undefined
  }
}

function hasQuantifier(node: Node): boolean {
  if (node.type === 'quant') return true
  return node.type === 'group' && node.alts.some((seq) => seq.some(hasQuantifier))
}

function hasAlternation(node: Node): boolean {
  if (node.type === 'quant') return hasAlternation(node.node)
  return node.type === 'group' && (node.alts.length > 1 || node.alts.some((seq) => seq.some(hasAlternation)))
}

/** True when each repetition of a group with this content can only start one way. */
function isUnambiguous(alts: Node[][], ci: boolean): boolean {
  if (alts.length > 1) {
    // Plain strings whose first characters are pairwise disjoint: `(?:get|put)`, `(a|b)`.
    const firsts: CharSet[] = []
    for (const seq of alts) {
      if (seq.length === 0 || !seq.every((n) => n.type === 'char')) return false
      firsts.push(fold((seq[0] as { set: CharSet }).set, ci))
    }
    for (let a = 0; a < firsts.length; a++) {
      for (let b = a + 1; b < firsts.length; b++) if (intersects(firsts[a], firsts[b])) return false
    }
    return true
  }
  // A delimited run: `(?:/[a-z]+)`; an unquantified first character none of the quantified ones match.
  const seq = alts[0]
  const head = seq[0]
  if (head === undefined || head.type !== 'char') return false
  const delimiter = fold(head.set, ci)
  for (let k = 1; k < seq.length; k++) {
    const n = seq[k]
    if (n.type === 'char') continue
    if (n.type !== 'quant' || n.node.type !== 'char') return false
    if (intersects(fold(n.node.set, ci), delimiter)) return false
  }
  return true
}

class Parser {
  readonly #src: string
  readonly #unicode: boolean
  readonly #sets: boolean
  #i = 0

  constructor(source: string, flags: string) {
    this.#src = source
    this.#sets = flags.includes('v')
    this.#unicode = this.#sets || flags.includes('u')
  }

  parse(): Node[][] {
    const alts = this.#disjunction()
    if (this.#i !== this.#src.length) throw new SyntaxError('unbalanced )')
    return alts
  }

  #disjunction(): Node[][] {
    const alts: Node[][] = [this.#alternative()]
    while (this.#src[this.#i] === '|') {
      this.#i++
      alts.push(this.#alternative())
    }
    return alts
  }

  #alternative(): Node[] {
    const seq: Node[] = []
    while (this.#i < this.#src.length && this.#src[this.#i] !== '|' && this.#src[this.#i] !== ')') {
      const atom = this.#atom()
      const max = this.#quantifier()
      seq.push(max === undefined ? atom : { type: 'quant', node: atom, max })
    }
    return seq
  }

  #atom(): Node {
    const src = this.#src
    const c = src[this.#i]
    if (c === '^' || c === '$') {
      this.#i++
      return { type: 'assert' }
    }
    if (c === '(') return this.#group()
    if (c === '.') {
      this.#i++
      return { type: 'char', set: ANY }
    }
    if (c === '[') return { type: 'char', set: this.#class() }
    if (c === '\\') {
      const e = src[this.#i + 1]
      if (e === 'b' || e === 'B') {
        this.#i += 2
        return { type: 'assert' }
      }
      if (e !== undefined && e >= '1' && e <= '9') {
        this.#i += 2
        while (/[0-9]/.test(src[this.#i] ?? '')) this.#i++
        return { type: 'backref' }
      }
      if (e === 'k' && (this.#unicode || src[this.#i + 2] === '<')) {
        const close = src.indexOf('>', this.#i)
        this.#i = close === -1 ? src.length : close + 1
        return { type: 'backref' }
      }
      return { type: 'char', set: this.#escape(false) }
    }
    return { type: 'char', set: single(this.#codePoint()) }
  }

  #group(): Node {
    const src = this.#src
    let look = false
    if (src.startsWith('(?=', this.#i) || src.startsWith('(?!', this.#i)) {
      look = true
      this.#i += 3
    } else if (src.startsWith('(?<=', this.#i) || src.startsWith('(?<!', this.#i)) {
      look = true
      this.#i += 4
    } else if (src.startsWith('(?<', this.#i)) {
      const close = src.indexOf('>', this.#i)
      if (close === -1) throw new SyntaxError('unterminated group name')
      this.#i = close + 1
    } else if (src[this.#i + 1] === '?') {
      // (?:...) and modifier groups such as (?i:...) or (?-i:...)
      const m = /^\(\?[a-z-]*:/.exec(src.slice(this.#i, this.#i + 12))
      if (!m) throw new SyntaxError('unknown group')
      this.#i += m[0].length
    } else {
      this.#i++
    }
    const alts = this.#disjunction()
    if (src[this.#i] !== ')') throw new SyntaxError('unterminated group')
    this.#i++
    return { type: 'group', look, alts }
  }

  /** The maximum repeat count of a quantifier at the cursor (consumed), or `undefined`. */
  #quantifier(): number | undefined {
    const src = this.#src
    const c = src[this.#i]
    let max: number
    if (c === '*' || c === '+') {
      max = Infinity
      this.#i++
    } else if (c === '?') {
      max = 1
      this.#i++
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(this.#i))
      if (!m) return undefined // Annex B: a lone `{` is a literal
      max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3])
      this.#i += m[0].length
    } else {
      return undefined
    }
    if (src[this.#i] === '?') this.#i++ // lazy: same worst case
    return max
  }

  #class(): CharSet {
    const src = this.#src
    this.#i++ // [
    if (this.#sets) {
      // `v` mode: nested classes, `--` and `&&`; skip to the matching `]` and assume any character.
      let depth = 1
      while (depth > 0) {
        const ch = src[this.#i++]
        if (ch === undefined) throw new SyntaxError('unterminated class')
        if (ch === '\\') this.#i++
        else if (ch === '[') depth++
        else if (ch === ']') depth--
      }
      return ANY
    }
    const negate = src[this.#i] === '^'
    if (negate) this.#i++
    const ranges: (readonly [number, number])[] = []
    while (src[this.#i] !== ']') {
      if (this.#i >= src.length) throw new SyntaxError('unterminated class')
      const lo = this.#classAtom()
      if (src[this.#i] === '-' && src[this.#i + 1] !== ']' && this.#i + 1 < src.length && lo.length === 1 && lo[0][0] === lo[0][1]) {
        const save = this.#i
        this.#i++
        const hi = this.#classAtom()
        if (hi.length === 1 && hi[0][0] === hi[0][1]) {
          ranges.push([lo[0][0], hi[0][0]])
          continue
        }
        this.#i = save // `[a-\d]`: Annex B reads the `-` as a literal
      }
      ranges.push(...lo)
    }
    this.#i++ // ]
    const set = normalize(ranges)
    return negate ? complement(set) : set
  }

  #classAtom(): CharSet {
    if (this.#src[this.#i] === '\\') return this.#escape(true)
    return single(this.#codePoint())
  }

  /** An escape at the cursor that stands for characters (not an assertion or backreference). */
  #escape(inClass: boolean): CharSet {
    const src = this.#src
    const e = src[this.#i + 1]
    this.#i += 2
    switch (e) {
      case 'd': return DIGIT
      case 'D': return complement(DIGIT)
      case 'w': return WORD
      case 'W': return complement(WORD)
      case 's': return SPACE
      case 'S': return complement(SPACE)
      case 't': return single(9)
      case 'n': return single(10)
      case 'v': return single(11)
      case 'f': return single(12)
      case 'r': return single(13)
      case 'b': return single(8) // only reached inside a class
      case undefined: throw new SyntaxError('trailing backslash')
    }
    if (e === 'c' && /[A-Za-z]/.test(src[this.#i] ?? '')) return single(src.charCodeAt(this.#i++) % 32)
    if (e === 'x' && /^[0-9A-Fa-f]{2}/.test(src.slice(this.#i))) {
      this.#i += 2
      return single(parseInt(src.slice(this.#i - 2, this.#i), 16))
    }
    if (e === 'u') {
      const braced = this.#unicode ? /^\{([0-9A-Fa-f]+)\}/.exec(src.slice(this.#i)) : null
      if (braced) {
        this.#i += braced[0].length
        return single(parseInt(braced[1], 16))
      }
      if (/^[0-9A-Fa-f]{4}/.test(src.slice(this.#i))) {
        this.#i += 4
        return single(parseInt(src.slice(this.#i - 4, this.#i), 16))
      }
    }
    if ((e === 'p' || e === 'P') && this.#unicode) {
      const close = src.indexOf('}', this.#i)
      this.#i = close === -1 ? src.length : close + 1
      return ANY // a Unicode property: assume it can match anything
    }
    if (e >= '0' && e <= '9') {
      // `\0`, or a legacy octal escape inside a class; digits 1-9 outside a class are backreferences.
      if (!inClass && e !== '0') throw new SyntaxError('backreference')
      while (/[0-7]/.test(src[this.#i] ?? '')) this.#i++
      return ANY
    }
    const cp = src.codePointAt(this.#i - 1)!
    if (cp > 0xffff) this.#i++
    return single(cp)
  }

  #codePoint(): number {
    const cp = this.#src.codePointAt(this.#i)!
    this.#i += cp > 0xffff && this.#unicode ? 2 : 1
    return this.#unicode ? cp : this.#src.charCodeAt(this.#i - 1)
  }
}

function single(cp: number): CharSet {
  return [[cp, cp]]
}

function normalize(ranges: (readonly [number, number])[]): CharSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0])
  const out: [number, number][] = []
  for (const [lo, hi] of sorted) {
    const last = out.at(-1)
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi)
    else out.push([lo, hi])
  }
  return out
}

function complement(set: CharSet): CharSet {
  const out: [number, number][] = []
  let next = 0
  for (const [lo, hi] of set) {
    if (lo > next) out.push([next, lo - 1])
    next = hi + 1
  }
  if (next <= MAX_CP) out.push([next, MAX_CP])
  return out
}

function intersects(a: CharSet, b: CharSet): boolean {
  for (const [alo, ahi] of a) for (const [blo, bhi] of b) if (alo <= bhi && blo <= ahi) return true
  return false
}

/**
 * The set widened for the `i` flag: ASCII letters in both cases. Unicode case folding links K and ſ
 * (U+212A, U+017F) to `k` and `s`, so a set with those letters or any non-ASCII character is also
 * widened to all of non-ASCII and `kKsS`.
 */
function fold(set: CharSet, ci: boolean): CharSet {
  if (!ci) return set
  const out: [number, number][] = set.map((r): [number, number] => [r[0], r[1]])
  for (const [lo, hi] of set) {
    const a = Math.max(lo, 0x41)
    const b = Math.min(hi, 0x5a)
    if (a <= b) out.push([a + 32, b + 32])
    const c = Math.max(lo, 0x61)
    const d = Math.min(hi, 0x7a)
    if (c <= d) out.push([c - 32, d - 32])
  }
  const widened = normalize(out)
  if (intersects(widened, [[0x4b, 0x4b], [0x53, 0x53], [0x6b, 0x6b], [0x73, 0x73], [0x80, MAX_CP]])) {
    out.push([0x4b, 0x4b], [0x53, 0x53], [0x6b, 0x6b], [0x73, 0x73], [0x80, MAX_CP])
    return normalize(out)
  }
  return widened
}
