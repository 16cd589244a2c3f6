// Compiled non-path conditions: host, header, query and JSON payload. Internal to the package.
import { checkRegexSafety } from './regex-safety.ts'

/** A header or query condition after compilation. */
export type ValueCondition = true | string | RegExp

/** A host rule: an exact name, or the suffix (with its leading dot) of a `*.` wildcard. */
export interface HostRule {
  readonly exact: string | undefined
  readonly suffix: string | undefined
}

/** Compiles a host pattern, reporting every problem (messages without the field name). */
export function compileHost(pattern: unknown, report: (message: string) => void): HostRule | undefined {
  if (typeof pattern !== 'string' || pattern === '') {
    report('must be a non-empty string')
    return undefined
  }
  const shown = JSON.stringify(pattern)
  const host = pattern.toLowerCase()
  if (host.startsWith('[')) {
    const close = host.indexOf(']')
    const tail = close === -1 ? '' : host.slice(close + 1)
    if (tail !== '') return void reportPort(tail, shown, report)
    let canonical: string | undefined
    try {
      canonical = /^\[[0-9a-f:.]+\]$/.test(host) ? new URL(`http://${host}/`).hostname : undefined
    } catch {
      canonical = undefined
    }
    if (canonical === undefined) return void report(`invalid IPv6 host ${shown}`)
    // Request hosts are compared as written, so only the canonical (RFC 5952) form can match.
    if (canonical !== host) return void report(`write the IPv6 host ${shown} in its canonical form "${canonical}"`)
    return { exact: host, suffix: undefined }
  }
  const colon = host.indexOf(':')
  if (colon !== -1) return void reportPort(host.slice(colon), shown, report)
  const wildcard = host.startsWith('*.')
  let name = wildcard ? host.slice(2) : host
  if (name.endsWith('.')) name = name.slice(0, -1) // the root label: `example.com.` is `example.com`
  let ok = true
  const fail = (message: string): void => {
    ok = false
    report(message)
  }
  if (name.includes('*')) fail(`invalid host ${shown}: "*" may only be the whole first label, as in "*.example.com"`)
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(name)) fail(`invalid host ${shown}: write an internationalised name in its ASCII (xn--) form`)
  else if (/[^a-z0-9_.*-]/.test(name)) {
    fail(`invalid host ${shown}: a host name holds only letters, digits, "-", "_" and "." (exact name or "*.example.com", no scheme, path or spaces)`)
  }
  if (ok) {
    const labels = name.split('.')
    if (labels.some((l) => l === '')) fail(`invalid host ${shown}: empty label`)
    else if (labels.some((l) => l.length > 63 || l.startsWith('-') || l.endsWith('-'))) {
      fail(`invalid host ${shown}: a label is longer than 63 characters or starts or ends with "-"`)
    } else if (name.length > 253) fail(`invalid host ${shown}: longer than 253 characters`)
  }
  if (!ok) return undefined
  return wildcard ? { exact: undefined, suffix: '.' + name } : { exact: name, suffix: undefined }
}

function reportPort(tail: string, shown: string, report: (message: string) => void): void {
  const port = tail.slice(1)
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || tail[0] !== ':') {
    report(`invalid host ${shown}: "${tail}" is not a port (0-65535); and ports are ignored in matching, so leave it out`)
  } else {
    report(`invalid host ${shown}: ports are ignored in matching (exact name or "*.example.com"), leave the port out`)
  }
}

/** Lower-cases a Host value and drops its port and trailing dot; `''` when absent. */
export function normalizeHost(value: string | string[] | undefined): string {
  const raw = Array.isArray(value) ? value[0] : value
  if (!raw) return ''
  let end = raw.length
  if (raw.charCodeAt(0) === 0x5b /* [ */) {
    end = raw.indexOf(']') + 1
    if (end === 0) return ''
  } else {
    const colon = raw.indexOf(':')
    if (colon !== -1) end = colon
  }
  if (raw.charCodeAt(end - 1) === 0x2e /* . */) end--
  return raw.slice(0, end).toLowerCase()
}

export function hostMatches(rules: readonly HostRule[], host: string): boolean {
  if (host === '') return false
  for (const rule of rules) {
    if (rule.exact !== undefined ? host === rule.exact : host.length > rule.suffix!.length && host.endsWith(rule.suffix!)) {
      return true
    }
  }
  return false
}

/**
 * Compiles header or query conditions, reporting every problem as (name, message); entries are an
 * array, so no condition name is ever looked up on an object's prototype.
 */
export function compileValueConditions(
  record: unknown,
  kind: 'header' | 'query',
  report: (name: string | undefined, message: string) => void,
): [string, ValueCondition][] | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record) || record instanceof RegExp) {
    report(undefined, 'must be an object of name → true | string | RegExp')
    return undefined
  }
  let ok = true
  const out: [string, ValueCondition][] = []
  for (const [name, cond] of Object.entries(record)) {
    if (name === '') {
      ok = false
      report(undefined, 'empty name')
      continue
    }
    // RFC 9110 §5.1: a field name is a token
    if (kind === 'header' && !TOKEN.test(name)) {
      ok = false
      report(name, `${JSON.stringify(name)} is not a valid header name`)
      continue
    }
    const key = kind === 'header' ? name.toLowerCase() : name
    if (cond === true || typeof cond === 'string') out.push([key, cond])
    else if (cond instanceof RegExp) {
      const reason = checkRegexSafety(cond.source, cond.flags)
      if (reason === undefined) out.push([key, statelessRegExp(cond)])
      else {
        ok = false
        report(name, `regex /${cond.source}/${cond.flags} ${reason}`)
      }
    } else {
      ok = false
      report(name, 'must be true, a string or a RegExp')
    }
  }
  return ok ? out : undefined
}

/** RFC 9110 §5.6.2 token, used for header and method names. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export function valueMatches(cond: ValueCondition, value: string | undefined): boolean {
  if (value === undefined) return false
  if (cond === true) return true
  if (typeof cond === 'string') return value === cond
  return cond.test(value)
}

/** A copy without the `g` and `y` flags, whose `lastIndex` would make `test()` depend on the previous call. */
export function statelessRegExp(re: RegExp): RegExp {
  return re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re
}


/** Nesting depth of a JSON value: 0 for a scalar. */
export function jsonDepth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  let max = 0
  for (const item of Array.isArray(value) ? value : Object.values(value)) max = Math.max(max, jsonDepth(item))
  return max + 1
}
