import { ConfigValidator, definePolicy, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'
import { rewriteRegexIssue } from './regex-safety.ts'

export { rewriteRegexIssue } from './regex-safety.ts'

/** Options of {@link rewrite}. */
export interface RewriteOptions {
  /** Removed from the start of the path when it is a whole segment prefix (`/api` strips `/api/x`, not `/apix`). @default none */
  stripPrefix?: string
  /** Put in front of the path after stripping. @default none */
  addPrefix?: string
  /**
   * A regular expression matched against the raw (not decoded) path; on a match, the first match is
   * replaced with {@link replace}. Not combinable with the prefixes. Refused when it could backtrack
   * exponentially (nested quantifiers, backreferences). @default none
   */
  regex?: string | RegExp
  /** Replacement for {@link regex}: `$1`, `$<name>`, `$&`, `$$` as in `String.prototype.replace`. @default none */
  replace?: string
  /**
   * Match {@link regex} against path and query together; the replacement then decides the query.
   * When false, the original query is kept: appended as is, or after `&` when the replacement has a `?`.
   * @default false
   */
  includeQuery?: boolean
}

/**
 * Rewrites the path sent upstream: strip a prefix, then add one; or replace a regex match. The
 * query is kept. Routing and policies still see the original path; only the upstream target
 * changes. Throws a `RangeError` for an unsafe or invalid regex.
 * @example
 * const layer = rewrite({ stripPrefix: '/api', addPrefix: '/v2' }) // /api/users?x=1 → /v2/users?x=1
 * const versioned = rewrite({ regex: '^/api/v(\\d+)/(.*)$', replace: '/v$1/$2' }) // /api/v2/users → /v2/users
 */
export function rewrite(options: RewriteOptions): Middleware {
  const compiled = compileRewrite(options)
  return async function rewritePolicy(ex, next) {
    ex.upstreamTarget = rewriteTarget(ex.upstreamTarget, compiled)
    await next()
  }
}

/**
 * The rewrite rule alone, for users who build targets themselves.
 * @example rewriteTarget('/api/users?x=1', { stripPrefix: '/api' }) // '/users?x=1'
 */
export function rewriteTarget(target: string, options: RewriteOptions): string {
  if (options.regex !== undefined) return regexTarget(target, options)
  let out = target
  const strip = options.stripPrefix
  if (strip && (out === strip || out.startsWith(strip.endsWith('/') ? strip : `${strip}/`) || out.startsWith(`${strip}?`))) {
    out = out.slice(strip.endsWith('/') ? strip.length - 1 : strip.length)
    if (!out.startsWith('/')) out = `/${out}`
  }
  if (options.addPrefix) out = options.addPrefix.replace(/\/$/, '') + out
  return out
}

/** Parses `{ stripPrefix, addPrefix }` (key paths in errors). */
export function parseRewriteOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): RewriteOptions {
  const r = new OptionReader(raw, at, validator)
  const strip = r.get('stripPrefix')
  const add = r.get('addPrefix')
  const regex = r.get('regex')
  const replace = r.get('replace')
  const includeQuery = r.boolean('includeQuery', false)
  r.done()
  const out: RewriteOptions = {}
  if (strip !== undefined) out.stripPrefix = validator.pathPrefix(strip, r.path('stripPrefix'))
  if (add !== undefined) out.addPrefix = validator.pathPrefix(add, r.path('addPrefix'))
  if (regex !== undefined) {
    if (out.stripPrefix !== undefined || out.addPrefix !== undefined) validator.fail(r.path('regex'), 'regex without stripPrefix or addPrefix (use one kind of rewrite)', regex)
    const source = validator.string(regex, r.path('regex'))
    const issue = rewriteRegexIssue(source)
    if (issue !== undefined) validator.fail(r.path('regex'), `a safe regular expression (this one ${issue})`, source)
    if (replace === undefined) validator.fail(r.path('replace'), 'a replacement for regex (for example /v$1/$2)', replace)
    out.regex = source
    out.replace = typeof replace === 'string' && replace === '' ? '' : validator.string(replace, r.path('replace'))
    if (includeQuery) out.includeQuery = true
    return out
  }
  if (replace !== undefined) validator.fail(r.path('replace'), 'replace together with regex', replace)
  if (includeQuery) validator.fail(r.path('includeQuery'), 'includeQuery together with regex', includeQuery)
  if (out.stripPrefix === undefined && out.addPrefix === undefined) validator.fail(at, 'stripPrefix or addPrefix, or regex and replace', raw)
  return out
}

/**
 * The `rewrite` policy type: `{ use: rewrite, stripPrefix: /api, addPrefix: /v2 }` or
 * `{ use: rewrite, regex: '^/api/v(\\d+)/(.*)$', replace: '/v$1/$2' }` (route phase).
 * @example registry.policies.set(rewritePolicy.name, rewritePolicy)
 */
export const rewritePolicy: PolicyDefinition<RewriteOptions> = definePolicy({
  name: 'rewrite',
  phases: ['route'],
  parse: (raw, at) => parseRewriteOptions(raw, at),
  create: (options) => rewrite(options),
})

// ---- internals ----------------------------------------------------------------------------

const compiledRegex = new WeakMap<RewriteOptions, RegExp>()

/** Validates and compiles once; `rewriteTarget` then finds the RegExp without recompiling. */
function compileRewrite(options: RewriteOptions): RewriteOptions {
  if (options.regex === undefined) return options
  if (options.stripPrefix !== undefined || options.addPrefix !== undefined) throw new RangeError('rewrite: regex cannot be combined with stripPrefix or addPrefix')
  if (typeof options.replace !== 'string') throw new RangeError('rewrite: regex needs a replace string')
  const source = typeof options.regex === 'string' ? options.regex : options.regex.source
  const issue = rewriteRegexIssue(source)
  if (issue !== undefined) throw new RangeError(`rewrite: regex ${issue}`)
  compiledRegex.set(options, typeof options.regex === 'string' ? new RegExp(source) : new RegExp(source, options.regex.flags.replace(/[gy]/g, '')))
  return options
}

function regexTarget(target: string, options: RewriteOptions): string {
  const re = compiledRegex.get(options) ?? compiledRegex.get(compileRewrite(options))!
  const replacement = options.replace ?? ''
  if (options.includeQuery) {
    if (!re.test(target)) return target
    return leadingSlash(target.replace(re, replacement))
  }
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q)
  if (!re.test(path)) return target
  const out = leadingSlash(path.replace(re, replacement))
  if (!query) return out
  return out.includes('?') ? `${out}&${query.slice(1)}` : out + query
}

// The upstream target is appended to the endpoint's base path: it must stay a path.
function leadingSlash(path: string): string {
  return path.startsWith('/') ? path : `/${path}`
}
