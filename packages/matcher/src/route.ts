// Validation and compilation of one route definition; createMatcher and validateRoute share it.
import { canonicalJson } from '@switchboard/core'
import { compileBodyConditions, type CompiledBodyCondition } from './body.ts'
import { compileHost, compileValueConditions, jsonDepth, statelessRegExp, TOKEN, type HostRule, type ValueCondition } from './conditions.ts'
import { parsePattern, type ParsedPattern } from './pattern.ts'
import { checkRegexSafety } from './regex-safety.ts'
import type { MatcherOptions, RouteDefinition } from './types.ts'

/**
 * One problem in a route definition: `field` is its path inside the definition (`match.path`,
 * `match.host[1]`, `match.headers.x-tenant`; `''` for the definition itself).
 * @example
 * const issue: RouteIssue = { field: 'match.path', message: '"/a/:id/:id" repeats the param name "id"' }
 */
export interface RouteIssue {
  /** Path of the offending value inside the route definition. */
  field: string
  /** What is wrong, without the field name. */
  message: string
}

/**
 * Every problem `createMatcher` would refuse in one route definition, without throwing: bad path
 * patterns (empty or repeated param names, `*` not last, characters a path cannot carry), regex
 * syntax errors and unsafe regexes (see `checkRegexSafety`), bad host patterns, method names,
 * header names, conditions, payloads and body conditions. Duplicate names across routes are checked by `createMatcher` only.
 * `[]` means the route compiles.
 *
 * @param options the matcher options the route will be compiled with (`strictTrailingSlash: false`
 *   accepts a pattern ending in `//`)
 * @example
 * validateRoute({ name: 'u', match: { path: '/users/:id/:id', host: '*example.com' }, data: null })
 * // [{ field: 'match.path', message: '"/users/:id/:id" repeats the param name "id"' },
 * //  { field: 'match.host', message: 'invalid host "*example.com": ...' }]
 */
export function validateRoute(def: RouteDefinition<unknown>, options: MatcherOptions = {}): RouteIssue[] {
  const issues: RouteIssue[] = []
  compileRoute(def, options.strictTrailingSlash ?? true, issues)
  return issues
}

/** A route after compilation (internal). */
export interface CompiledRoute<T> {
  readonly def: RouteDefinition<T>
  readonly priority: number
  readonly methods: ReadonlySet<string> | undefined
  readonly hosts: readonly HostRule[] | undefined
  readonly headers: readonly [string, ValueCondition][] | undefined
  readonly query: readonly [string, ValueCondition][] | undefined
  readonly payloads: ReadonlySet<string> | undefined
  readonly payloadDepth: number
  readonly body: readonly CompiledBodyCondition[] | undefined
  readonly pattern: ParsedPattern | undefined
  readonly regex: RegExp | undefined
  readonly paramNames: string[]
  wildcardName: string | undefined
}

export const MAX_PAYLOAD_DEPTH = 64

/** Compiles a route, pushing every problem to `issues`; the result is only usable when none was pushed. */
export function compileRoute<T>(def: RouteDefinition<T>, strictTrailingSlash: boolean, issues: RouteIssue[]): CompiledRoute<T> | undefined {
  const report = (field: string) => (message: string): void => void issues.push({ field, message })
  if (def === null || typeof def !== 'object') {
    report('')('must be an object')
    return undefined
  }
  if (typeof def.name !== 'string' || def.name === '') report('name')('must be a non-empty string')
  if (def.priority !== undefined && !Number.isFinite(def.priority)) report('priority')('must be a finite number')
  const match = def.match
  if (match === null || typeof match !== 'object' || Array.isArray(match)) {
    report('match')('must be an object')
    return undefined
  }
  let pattern: ParsedPattern | undefined
  let regex: RegExp | undefined
  if (match.path !== undefined && match.pathRegex !== undefined) report('match')('set either path or pathRegex, not both')
  else if (match.path !== undefined) pattern = parsePattern(match.path, strictTrailingSlash, report('match.path'))
  else if (match.pathRegex !== undefined) regex = compileRegex(match.pathRegex, report('match.pathRegex'))

  let methods: Set<string> | undefined
  if (match.methods !== undefined) {
    if (!Array.isArray(match.methods) || match.methods.length === 0) {
      report('match.methods')('must be a non-empty array of method names')
    } else {
      methods = new Set()
      match.methods.forEach((m: unknown, k) => {
        // RFC 9110 §9.1: a method is a token
        if (typeof m !== 'string' || !TOKEN.test(m)) report(`match.methods[${k}]`)(`invalid method ${JSON.stringify(m)}`)
        else methods!.add(m.toUpperCase())
      })
    }
  }
  let hosts: HostRule[] | undefined
  if (match.host !== undefined) {
    const list: unknown[] = Array.isArray(match.host) ? match.host : [match.host]
    if (list.length === 0) report('match.host')('must not be empty')
    hosts = []
    list.forEach((h, k) => {
      const rule = compileHost(h, report(Array.isArray(match.host) ? `match.host[${k}]` : 'match.host'))
      if (rule) hosts!.push(rule)
    })
  }
  const conditions = (kind: 'header' | 'query', record: unknown): [string, ValueCondition][] | undefined => {
    const field = kind === 'header' ? 'match.headers' : 'match.query'
    return compileValueConditions(record, kind, (name, message) => report(name === undefined ? field : `${field}.${name}`)(message))
  }
  const headers = match.headers === undefined ? undefined : conditions('header', match.headers)
  const query = match.query === undefined ? undefined : conditions('query', match.query)
  let payloads: Set<string> | undefined
  let payloadDepth = 0
  if (match.payload !== undefined) {
    if (!Array.isArray(match.payload) || match.payload.length === 0) {
      report('match.payload')('must be a non-empty array of JSON values')
    } else {
      payloads = new Set()
      match.payload.forEach((p, k) => {
        const text = canonicalJson(p, MAX_PAYLOAD_DEPTH)
        if (text === undefined) {
          report(`match.payload[${k}]`)(`must be a plain JSON value nested at most ${MAX_PAYLOAD_DEPTH} deep`)
          return
        }
        payloads!.add(text)
        payloadDepth = Math.max(payloadDepth, jsonDepth(p))
      })
    }
  }
  const body =
    match.body === undefined
      ? undefined
      : compileBodyConditions(match.body, (key, message) => report(key === undefined ? 'match.body' : `match.body.${key}`)(message))
  return {
    def,
    priority: def.priority ?? 0,
    methods,
    hosts,
    headers,
    query,
    payloads,
    payloadDepth,
    body,
    pattern,
    regex,
    paramNames: [],
    wildcardName: undefined,
  }
}

function compileRegex(source: unknown, report: (message: string) => void): RegExp | undefined {
  if (source instanceof RegExp) {
    const reason = checkRegexSafety(source.source, source.flags)
    if (reason !== undefined) return void report(`/${source.source}/${source.flags} ${reason}`)
    return statelessRegExp(source)
  }
  if (typeof source !== 'string' || source === '') return void report('must be a RegExp or a non-empty string')
  const reason = checkRegexSafety(source)
  if (reason !== undefined) return void report(reason.startsWith('invalid') ? reason : `${JSON.stringify(source)} ${reason}`)
  return new RegExp(source)
}
