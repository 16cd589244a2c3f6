import { ConfigValidator, definePolicy, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'

/** Options of {@link rewrite}. */
export interface RewriteOptions {
  /** Removed from the start of the path when it is a whole segment prefix (`/api` strips `/api/x`, not `/apix`). @default none */
  stripPrefix?: string
  /** Put in front of the path after stripping. @default none */
  addPrefix?: string
}

/**
 * Rewrites the path sent upstream: strip a prefix, then add one. The query is kept. Routing and
 * policies still see the original path; only the upstream target changes.
 * @example const layer = rewrite({ stripPrefix: '/api', addPrefix: '/v2' }) // /api/users?x=1 → /v2/users?x=1
 */
export function rewrite(options: RewriteOptions): Middleware {
  return async function rewritePolicy(ex, next) {
    ex.upstreamTarget = rewriteTarget(ex.upstreamTarget, options)
    await next()
  }
}

/**
 * The rewrite rule alone, for users who build targets themselves.
 * @example rewriteTarget('/api/users?x=1', { stripPrefix: '/api' }) // '/users?x=1'
 */
export function rewriteTarget(target: string, options: RewriteOptions): string {
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
export function parseRewriteOptions(raw: Record<string, unknown>, at: string, validator = new ConfigValidator()): RewriteOptions {
  const r = new OptionReader(raw, at, validator)
  const strip = r.get('stripPrefix')
  const add = r.get('addPrefix')
  r.done()
  const out: RewriteOptions = {}
  if (strip !== undefined) out.stripPrefix = validator.pathPrefix(strip, r.path('stripPrefix'))
  if (add !== undefined) out.addPrefix = validator.pathPrefix(add, r.path('addPrefix'))
  if (out.stripPrefix === undefined && out.addPrefix === undefined) validator.fail(at, 'stripPrefix or addPrefix', raw)
  return out
}

/**
 * The `rewrite` policy type: `{ use: rewrite, stripPrefix: /api, addPrefix: /v2 }` (route phase).
 * @example registry.policies.set(rewritePolicy.name, rewritePolicy)
 */
export const rewritePolicy: PolicyDefinition<RewriteOptions> = definePolicy({
  name: 'rewrite',
  phases: ['route'],
  parse: (raw, at) => parseRewriteOptions(raw, at),
  create: (options) => rewrite(options),
})
