// Text exposition format 0.0.4 helpers (https://prometheus.io/docs/instrumenting/exposition_formats/).
// Internal: not re-exported from index.ts.

/**
 * A sample value or `le` bound as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, integers in plain
 * digits (no exponent below 1e21, exact up to 2^53), other numbers in their shortest round-trip form.
 * @example formatNumber(Infinity) // '+Inf'
 */
export function formatNumber(v: number): string {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  // String() gives 'NaN' for NaN, '0' for -0, '1e-7' / '1e+21' for tiny or huge values: all parse with Go's ParseFloat.
  return String(v)
}

/**
 * A label value between double quotes: backslash, double quote and line feed escaped (the only
 * three escapes the format has).
 * @example escapeLabelValue('a"b') // 'a\\"b'
 */
export function escapeLabelValue(value: string): string {
  return LABEL_ESCAPES.test(value) ? value.replace(LABEL_ESCAPES_ALL, escapeOne) : value
}

/**
 * A HELP docstring: backslash and line feed escaped (double quotes stay as they are).
 * @example escapeHelp('line one\nline two') // 'line one\\nline two'
 */
export function escapeHelp(help: string): string {
  return HELP_ESCAPES.test(help) ? help.replace(HELP_ESCAPES_ALL, escapeOne) : help
}

const LABEL_ESCAPES = /[\\"\n]/
const LABEL_ESCAPES_ALL = /[\\"\n]/g
const HELP_ESCAPES = /[\\\n]/
const HELP_ESCAPES_ALL = /[\\\n]/g

function escapeOne(c: string): string {
  return c === '\n' ? '\\n' : `\\${c}`
}
