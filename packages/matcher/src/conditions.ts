// Compiled non-path conditions: host, header, query and JSON payload. Internal to the package.

/** A header or query condition after compilation. */
export type ValueCondition = true | string | RegExp

/** A host rule: an exact name, or the suffix (with its leading dot) of a `*.` wildcard. */
export interface HostRule {
  readonly exact: string | undefined
  readonly suffix: string | undefined
}

export function compileHost(pattern: unknown, where: string): HostRule {
  if (typeof pattern !== 'string' || pattern === '') throw new TypeError(`${where}: must be a non-empty string`)
  let host = pattern.toLowerCase()
  if (host.endsWith('.')) host = host.slice(0, -1)
  if (host.startsWith('*.')) {
    const suffix = host.slice(1)
    if (suffix.length < 2 || /[*:/\s]/.test(suffix)) throw new TypeError(`${where}: invalid wildcard host "${pattern}"`)
    return { exact: undefined, suffix }
  }
  if (host.startsWith('[')) {
    if (!/^\[[0-9a-f:.]+\]$/.test(host)) throw new TypeError(`${where}: invalid IPv6 host "${pattern}"`)
    return { exact: host, suffix: undefined }
  }
  if (/[*:/\s]/.test(host)) {
    throw new TypeError(`${where}: invalid host "${pattern}" (exact name or "*.example.com"; ports are ignored, leave them out)`)
  }
  return { exact: host, suffix: undefined }
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

export function compileValueConditions(
  record: unknown,
  where: string,
  lowerCaseNames: boolean,
): [string, ValueCondition][] {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new TypeError(`${where}: must be an object of name → true | string | RegExp`)
  }
  const out: [string, ValueCondition][] = []
  for (const [name, cond] of Object.entries(record)) {
    if (name === '') throw new TypeError(`${where}: empty name`)
    if (cond === true || typeof cond === 'string') out.push([lowerCaseNames ? name.toLowerCase() : name, cond])
    else if (cond instanceof RegExp) out.push([lowerCaseNames ? name.toLowerCase() : name, statelessRegExp(cond)])
    else throw new TypeError(`${where}.${name}: must be true, a string or a RegExp`)
  }
  return out
}

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
