// A strict parser for the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format), the reading
// half of text.ts. Web-standard only. Written here rather than depending on an npm parser: the
// ones on npm (parse-prometheus-text-format 1.1.1, exposition) have had no maintained release for
// years and accept malformed lines silently, which would turn a garbled scrape into zeros.
import type { MetricType } from './family.ts'

/**
 * One sample line: `name{labels} value [timestamp]`.
 * @example const s: ExpositionSample = { name: 'vllm:num_requests_waiting', labels: { model_name: 'llama' }, value: 3 }
 */
export interface ExpositionSample {
  /** Metric name as written, suffix included (`http_request_duration_seconds_bucket`). */
  readonly name: string
  /** Label values, unescaped. */
  readonly labels: Readonly<Record<string, string>>
  /** The value; `NaN`, `Infinity` and `-Infinity` for `NaN`, `+Inf` and `-Inf`. */
  readonly value: number
  /** Milliseconds since the epoch, when the line carries a timestamp. */
  readonly timestampMs?: number
}

/**
 * A parsed exposition: every sample in order, plus the `# TYPE` and `# HELP` lines by metric name.
 * @example const waiting = parseExposition(text).samples.filter((s) => s.name === 'vllm:num_requests_waiting')
 */
export interface Exposition {
  readonly samples: readonly ExpositionSample[]
  /** `# TYPE` per metric family name (`untyped` is kept as written). */
  readonly types: ReadonlyMap<string, MetricType | 'untyped' | 'summary'>
  /** `# HELP` per metric family name, unescaped. */
  readonly help: ReadonlyMap<string, string>
}

/**
 * A line that is not valid text format 0.0.4; `line` is 1-based.
 * @example try { parseExposition('x{a=b} 1') } catch (e) { if (e instanceof ExpositionParseError) console.log(e.line) }
 */
export class ExpositionParseError extends SyntaxError {
  /** 1-based line number of the offending line. */
  readonly line: number
  constructor(line: number, reason: string) {
    super(`metrics exposition line ${line}: ${reason}`)
    this.name = 'ExpositionParseError'
    this.line = line
  }
}

/**
 * Parses a text-format 0.0.4 exposition strictly: a malformed sample, label, escape, value or
 * timestamp, a second `# TYPE` for one family, or a `# TYPE` after the family's samples throws an
 * {@link ExpositionParseError} naming the line, rather than yielding a wrong number. Comments other
 * than `HELP`/`TYPE` and blank lines are skipped; CRLF line ends are accepted.
 * @example
 * const { samples } = parseExposition('# TYPE up gauge\nup{job="api"} 1\n')
 * samples[0] // { name: 'up', labels: { job: 'api' }, value: 1 }
 */
export function parseExposition(text: string): Exposition {
  if (typeof text !== 'string') throw new TypeError('text must be a string')
  const samples: ExpositionSample[] = []
  const types = new Map<string, MetricType | 'untyped' | 'summary'>()
  const help = new Map<string, string>()
  const sampled = new Set<string>()
  let lineNo = 0
  let start = 0
  while (start <= text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    lineNo++
    let line = text.slice(start, end)
    start = end + 1
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (line.trim() === '') {
      if (end === text.length) break
      continue
    }
    const first = firstNonBlank(line)
    if (line[first] === '#') {
      parseComment(line, first + 1, lineNo, types, help, sampled)
    } else {
      const sample = parseSample(line, first, lineNo)
      sampled.add(sample.name)
      samples.push(sample)
    }
    if (end === text.length) break
  }
  return { samples, types, help }
}

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const FAMILY_SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created']

function parseComment(
  line: string,
  from: number,
  lineNo: number,
  types: Map<string, MetricType | 'untyped' | 'summary'>,
  help: Map<string, string>,
  sampled: Set<string>,
): void {
  let i = skipBlanks(line, from)
  const keywordEnd = tokenEnd(line, i)
  const keyword = line.slice(i, keywordEnd)
  if (keyword !== 'HELP' && keyword !== 'TYPE') return // any other comment
  i = skipBlanks(line, keywordEnd)
  const nameEnd = scanMetricName(line, i)
  if (nameEnd === i) throw new ExpositionParseError(lineNo, `# ${keyword} needs a metric name`)
  const name = line.slice(i, nameEnd)
  if (nameEnd < line.length && !isBlank(line.charCodeAt(nameEnd))) throw new ExpositionParseError(lineNo, `invalid metric name in # ${keyword}`)
  const rest = line.slice(skipBlanks(line, nameEnd))
  if (keyword === 'HELP') {
    if (help.has(name)) throw new ExpositionParseError(lineNo, `second # HELP for ${name}`)
    help.set(name, unescape(rest, false, lineNo))
    return
  }
  const type = rest.trimEnd()
  if (!TYPES.has(type)) throw new ExpositionParseError(lineNo, `unknown metric type "${type}" for ${name}`)
  if (types.has(name)) throw new ExpositionParseError(lineNo, `second # TYPE for ${name}`)
  // The format requires TYPE before the family's first sample.
  if (sampled.has(name) || FAMILY_SUFFIXES.some((s) => sampled.has(name + s))) {
    throw new ExpositionParseError(lineNo, `# TYPE for ${name} after its samples`)
  }
  types.set(name, type as MetricType | 'untyped' | 'summary')
}

function parseSample(line: string, from: number, lineNo: number): ExpositionSample {
  const nameEnd = scanMetricName(line, from)
  if (nameEnd === from) throw new ExpositionParseError(lineNo, 'expected a metric name')
  const name = line.slice(from, nameEnd)
  let i = skipBlanks(line, nameEnd)
  const labels: Record<string, string> = Object.create(null) as Record<string, string>
  if (line[i] === '{') {
    i = skipBlanks(line, i + 1)
    while (line[i] !== '}') {
      const labelEnd = scanLabelName(line, i)
      if (labelEnd === i) throw new ExpositionParseError(lineNo, `expected a label name in ${name}`)
      const label = line.slice(i, labelEnd)
      i = skipBlanks(line, labelEnd)
      if (line[i] !== '=') throw new ExpositionParseError(lineNo, `expected = after label ${label}`)
      i = skipBlanks(line, i + 1)
      if (line[i] !== '"') throw new ExpositionParseError(lineNo, `label ${label} needs a quoted value`)
      const close = closingQuote(line, i + 1)
      if (close === -1) throw new ExpositionParseError(lineNo, `unterminated value of label ${label}`)
      if (label in labels) throw new ExpositionParseError(lineNo, `label ${label} given twice`)
      labels[label] = unescape(line.slice(i + 1, close), true, lineNo)
      i = skipBlanks(line, close + 1)
      if (line[i] === ',') i = skipBlanks(line, i + 1)
      else if (line[i] !== '}') throw new ExpositionParseError(lineNo, `expected , or } after label ${label}`)
    }
    i = skipBlanks(line, i + 1)
  }
  if (i === nameEnd && i < line.length && !isBlank(line.charCodeAt(i))) {
    throw new ExpositionParseError(lineNo, `invalid character after metric name ${name}`)
  }
  const valueEnd = tokenEnd(line, i)
  if (valueEnd === i) throw new ExpositionParseError(lineNo, `${name} has no value`)
  const value = parseValue(line.slice(i, valueEnd))
  if (value === undefined) throw new ExpositionParseError(lineNo, `invalid value "${line.slice(i, valueEnd)}" of ${name}`)
  i = skipBlanks(line, valueEnd)
  if (i >= line.length) return { name, labels: { ...labels }, value }
  const tsEnd = tokenEnd(line, i)
  const ts = line.slice(i, tsEnd)
  if (!/^-?\d{1,19}$/.test(ts)) throw new ExpositionParseError(lineNo, `invalid timestamp "${ts}" of ${name}`)
  if (skipBlanks(line, tsEnd) < line.length) throw new ExpositionParseError(lineNo, `unexpected text after the timestamp of ${name}`)
  return { name, labels: { ...labels }, value, timestampMs: Number(ts) }
}

/** Go's ParseFloat as Prometheus uses it: decimal or exponent notation, `NaN`, `±Inf`. */
function parseValue(token: string): number | undefined {
  const lower = token.toLowerCase()
  if (lower === 'nan') return Number.NaN
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') return Number.POSITIVE_INFINITY
  if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(token)) return undefined
  return Number(token)
}

/** Label values escape `\\`, `\"` and `\n`; HELP text escapes `\\` and `\n`. Anything else is an error. */
function unescape(raw: string, label: boolean, lineNo: number): string {
  if (!raw.includes('\\')) return raw
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    if (c !== '\\') {
      out += c
      continue
    }
    const next = raw[++i]
    if (next === '\\') out += '\\'
    else if (next === 'n') out += '\n'
    else if (next === '"' && label) out += '"'
    else if (!label) out += `\\${next ?? ''}` // HELP keeps unknown escapes as written (as Prometheus does)
    else throw new ExpositionParseError(lineNo, `invalid escape \\${next ?? ''} in a label value`)
  }
  return out
}

function closingQuote(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    const c = line[i]
    if (c === '\\') i++
    else if (c === '"') return i
  }
  return -1
}

function scanMetricName(line: string, from: number): number {
  let i = from
  while (i < line.length) {
    const c = line.charCodeAt(i)
    const ok = c === 0x3a || c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (i > from && c >= 0x30 && c <= 0x39)
    if (!ok) break
    i++
  }
  return i
}

function scanLabelName(line: string, from: number): number {
  let i = from
  while (i < line.length) {
    const c = line.charCodeAt(i)
    const ok = c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (i > from && c >= 0x30 && c <= 0x39)
    if (!ok) break
    i++
  }
  return i
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09
}

function skipBlanks(line: string, from: number): number {
  let i = from
  while (i < line.length && isBlank(line.charCodeAt(i))) i++
  return i
}

function firstNonBlank(line: string): number {
  return skipBlanks(line, 0)
}

function tokenEnd(line: string, from: number): number {
  let i = from
  while (i < line.length && !isBlank(line.charCodeAt(i))) i++
  return i
}
