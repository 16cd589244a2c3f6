import { canonicalJson } from '@switchboard/core'
import { bodyMatches } from './body.ts'
import { hostMatches, normalizeHost, valueMatches } from './conditions.ts'
import { normalizePath } from './normalize-path.ts'
import { compileRoute, type CompiledRoute, type RouteIssue } from './route.ts'
import type { MatchInput, Matcher, MatcherOptions, MatchResult, RouteDefinition } from './types.ts'

/**
 * Compiles routes once into a segment tree (static children in a `Map`, then a param child, then a
 * wildcard) plus a priority-ordered list of regex routes, and returns a matcher.
 *
 * Precedence: higher `priority` first (default 0); then the most specific path, compared segment by
 * segment from the left (static > param > wildcard, so a longer static prefix wins); then path
 * patterns before regexes; then routes with a `payload` or `body` condition before those without
 * (so a catch-all defined first cannot hide them); then definition order. A route whose path
 * matches but whose method, host, header, query, payload or body condition fails falls through to
 * the next candidate.
 *
 * Throws a `TypeError` naming the route and listing every problem `validateRoute` finds
 * (`route "users": match.path: "/users/:id/:id" repeats the param name "id"`), including unsafe
 * regexes (see `checkRegexSafety`), or a duplicate route name. A route without a usable name is
 * named by its index (`routes[2]: name: must be a non-empty string`).
 *
 * @example
 * const matcher = createMatcher([
 *   { name: 'user', match: { path: '/users/:id', methods: ['GET'] }, data: 'users' },
 *   { name: 'api', match: { path: '/api/*' }, data: 'api' },
 * ])
 * matcher.match({ method: 'GET', path: '/users/42' })?.params // { id: '42' }
 */
export function createMatcher<T>(routes: RouteDefinition<T>[], options: MatcherOptions = {}): Matcher<T> {
  return new CompiledMatcher(routes, options)
}

class CompiledMatcher<T> implements Matcher<T> {
  readonly routes: readonly RouteDefinition<T>[]
  #root: TreeNode<T> = new TreeNode()
  #regexRoutes: CompiledRoute<T>[] = []
  #maxPriority = -Infinity
  #hasBodyRoutes = false
  #strictTrailingSlash: boolean
  #caseSensitive: boolean

  constructor(routes: RouteDefinition<T>[], options: MatcherOptions) {
    if (!Array.isArray(routes)) throw new TypeError('routes: must be an array')
    if (options === null || typeof options !== 'object') throw new TypeError('options: must be an object')
    if (options.strictTrailingSlash !== undefined && typeof options.strictTrailingSlash !== 'boolean') {
      throw new TypeError('options.strictTrailingSlash: must be a boolean')
    }
    if (options.caseSensitive !== undefined && typeof options.caseSensitive !== 'boolean') {
      throw new TypeError('options.caseSensitive: must be a boolean')
    }
    this.#strictTrailingSlash = options.strictTrailingSlash ?? true
    this.#caseSensitive = options.caseSensitive ?? true
    this.routes = Object.freeze([...routes])
    const names = new Map<string, number>()
    routes.forEach((def, index) => {
      const issues: RouteIssue[] = []
      const route = compileRoute(def, this.#strictTrailingSlash, issues)
      const named = def !== null && typeof def === 'object' && typeof def.name === 'string' && def.name !== ''
      if (named) {
        const previous = names.get(def.name)
        if (previous !== undefined) issues.push({ field: 'name', message: `duplicate route name (routes[${previous}] and routes[${index}])` })
        else names.set(def.name, index)
      }
      if (issues.length > 0 || route === undefined) {
        const label = named ? `route ${JSON.stringify(def.name)}` : `routes[${index}]`
        throw new TypeError(`${label}: ${issues.map((i) => (i.field === '' ? i.message : `${i.field}: ${i.message}`)).join('; ')}`)
      }
      this.#maxPriority = Math.max(this.#maxPriority, route.priority)
      if (needsBodyToMatch(route)) this.#hasBodyRoutes = true
      this.#insert(route)
    })
    // Stable sort: equal priorities keep definition order.
    this.#regexRoutes.sort((a, b) => b.priority - a.priority || bodyRank(b) - bodyRank(a))
  }

  match(input: MatchInput): MatchResult<T> | undefined {
    const search = this.#search(input, MODE_MATCH)
    if (search?.best === undefined) return undefined
    return { route: search.best.def, params: search.bestParams! }
  }

  needsBody(input: MatchInput): boolean {
    if (!this.#hasBodyRoutes) return false
    const best = this.#search(input, MODE_NEEDS_BODY)?.best
    return best !== undefined && needsBodyToMatch(best)
  }

  allowedMethods(input: MatchInput): string[] {
    const search = this.#search(input, MODE_ALLOWED)
    return search?.allowed ? [...search.allowed].sort() : []
  }

  #insert(route: CompiledRoute<T>): void {
    if (route.regex !== undefined) {
      this.#regexRoutes.push(route)
      return
    }
    let node = this.#root
    const pattern = route.pattern
    if (pattern === undefined) {
      addRoute(node.wildcard, route) // no path condition: every path, ranked like `/*`, no params
      return
    }
    for (const seg of pattern.segments) {
      if (seg.param) {
        node.param ??= new TreeNode()
        node = node.param
        route.paramNames.push(seg.name)
      } else {
        node.statics ??= new Map()
        const key = this.#caseSensitive ? seg.value : seg.value.toLowerCase()
        let child = node.statics.get(key)
        if (!child) node.statics.set(key, (child = new TreeNode()))
        node = child
      }
    }
    if (pattern.wildcard !== undefined) {
      route.wildcardName = pattern.wildcard
      addRoute(node.wildcard, route)
    } else {
      addRoute(node.routes, route)
    }
  }

  #search(input: MatchInput, mode: Mode): Search<T> | undefined {
    let rawPath = input.path
    let query = input.query
    if (typeof rawPath !== 'string') return undefined
    const q = rawPath.indexOf('?')
    if (q !== -1) {
      query ??= rawPath.slice(q)
      rawPath = rawPath.slice(0, q)
    }
    let path = normalizePath(rawPath)
    if (path === undefined) return undefined
    if (!this.#strictTrailingSlash && path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
    const search = new Search<T>(input, query, path, mode, this.#maxPriority, this.#caseSensitive)
    walk(this.#root, search, 1)
    if (search.done) return search
    for (const route of this.#regexRoutes) {
      if (route.priority <= search.bestPriority && mode !== MODE_ALLOWED) break
      const m = route.regex!.exec(path)
      if (m === null) continue
      if (search.consider(route, m.groups) && search.done) break
    }
    return search
  }
}

const MODE_MATCH = 0
const MODE_NEEDS_BODY = 1
const MODE_ALLOWED = 2
type Mode = typeof MODE_MATCH | typeof MODE_NEEDS_BODY | typeof MODE_ALLOWED

class TreeNode<T> {
  statics: Map<string, TreeNode<T>> | undefined = undefined
  param: TreeNode<T> | undefined = undefined
  /** Routes whose pattern ends at this node. */
  readonly routes: CompiledRoute<T>[] = []
  /** Routes whose pattern ends with a wildcard after this node. */
  readonly wildcard: CompiledRoute<T>[] = []
}

/** State of one match() call; the tree walk visits candidates most specific first. */
class Search<T> {
  readonly segments: string[]
  /** Keys for the static lookup: `segments`, lower-cased when matching is case-insensitive. */
  readonly keys: string[]
  readonly captures: string[] = []
  best: CompiledRoute<T> | undefined = undefined
  bestParams: Record<string, string> | undefined = undefined
  bestPriority = -Infinity
  done = false
  allowed: Set<string> | undefined = undefined
  #input: MatchInput
  #rawQuery: string | undefined
  #mode: Mode
  #maxPriority: number
  #method: string | undefined
  #host: string | undefined
  #query: URLSearchParams | undefined
  #body: Map<number, string | undefined> | undefined

  constructor(input: MatchInput, rawQuery: string | undefined, path: string, mode: Mode, maxPriority: number, caseSensitive: boolean) {
    this.#input = input
    this.#rawQuery = rawQuery
    this.#mode = mode
    this.#maxPriority = maxPriority
    this.segments = path.split('/')
    // Lower-casing never adds a '/', so keys[i] stays aligned with segments[i].
    this.keys = caseSensitive ? this.segments : path.toLowerCase().split('/')
  }

  /** Returns true when the route was accepted. */
  consider(route: CompiledRoute<T>, groups: Record<string, string | undefined> | undefined, remainder?: string): boolean {
    if (this.#mode === MODE_ALLOWED) {
      if (!this.#conditionsHold(route, false)) return false
      const allowed = (this.allowed ??= new Set())
      if (route.methods) for (const m of route.methods) allowed.add(m)
      else allowed.add('*')
      return true
    }
    if (route.priority <= this.bestPriority) return false // an earlier, more specific candidate wins ties
    if (!this.#conditionsHold(route, true)) return false
    const params = route.regex ? groupParams(groups) : this.#treeParams(route, remainder)
    if (params === undefined) return false // malformed escape in a param: the route does not match
    if (this.#mode === MODE_MATCH) {
      if (route.payloads && !this.#payloadHolds(route)) return false
      if (route.body && !bodyMatches(route.body, this.#input.body)) return false
    }
    this.best = route
    this.bestParams = params
    this.bestPriority = route.priority
    if (route.priority >= this.#maxPriority) this.done = true
    return true
  }

  #conditionsHold(route: CompiledRoute<T>, checkMethod: boolean): boolean {
    const input = this.#input
    if (checkMethod && route.methods) {
      this.#method ??= typeof input.method === 'string' ? input.method.toUpperCase() : ''
      if (!route.methods.has(this.#method)) return false
    }
    if (route.hosts) {
      this.#host ??= normalizeHost(input.host ?? input.headers?.host)
      if (!hostMatches(route.hosts, this.#host)) return false
    }
    if (route.headers) {
      const headers = input.headers
      if (!headers) return false
      for (const [name, cond] of route.headers) {
        // Own properties only: a `constructor` condition must not see Object.prototype.constructor.
        const value = Object.hasOwn(headers, name) ? headers[name] : undefined
        if (!valueMatches(cond, Array.isArray(value) ? value.join(', ') : value)) return false
      }
    }
    if (route.query) {
      if (this.#query === undefined) {
        this.#query = new URLSearchParams(this.#rawQuery ?? '') // a leading '?' is skipped
      }
      for (const [name, cond] of route.query) {
        if (!valueMatches(cond, this.#query.get(name) ?? undefined)) return false
      }
    }
    return true
  }

  #payloadHolds(route: CompiledRoute<T>): boolean {
    const body = this.#input.body
    if (body === undefined) return false
    this.#body ??= new Map()
    let text: string | undefined
    if (this.#body.has(route.payloadDepth)) text = this.#body.get(route.payloadDepth)
    else this.#body.set(route.payloadDepth, (text = canonicalJson(body, route.payloadDepth)))
    return text !== undefined && route.payloads!.has(text)
  }

  #treeParams(route: CompiledRoute<T>, remainder: string | undefined): Record<string, string> | undefined {
    const params: Record<string, string> = Object.create(null) // a `__proto__` param is an ordinary key
    const names = route.paramNames
    for (let i = 0; i < names.length; i++) {
      const value = decode(this.captures[i])
      if (value === undefined) return undefined
      params[names[i]] = value
    }
    if (route.wildcardName !== undefined) {
      const value = decode(remainder ?? '')
      if (value === undefined) return undefined
      params[route.wildcardName] = value
    }
    return params
  }
}

function needsBodyToMatch(route: CompiledRoute<unknown>): boolean {
  return route.payloads !== undefined || route.body !== undefined
}

function bodyRank(route: CompiledRoute<unknown>): number {
  return needsBodyToMatch(route) ? 1 : 0
}

/** Appends `route`, or inserts it before the first route without a body condition when it has one (keeping definition order within each group). */
function addRoute<T>(list: CompiledRoute<T>[], route: CompiledRoute<T>): void {
  if (!needsBodyToMatch(route)) {
    list.push(route)
    return
  }
  const at = list.findIndex((r) => !needsBodyToMatch(r))
  if (at === -1) list.push(route)
  else list.splice(at, 0, route)
}

/** Depth-first: static child, then param child, then wildcard; stops once the best possible route is found. */
function walk<T>(node: TreeNode<T>, search: Search<T>, i: number): void {
  const segments = search.segments
  if (i === segments.length) {
    for (const route of node.routes) if (search.consider(route, undefined) && search.done) return
    for (const route of node.wildcard) if (search.consider(route, undefined, '') && search.done) return
    return
  }
  const seg = segments[i]
  const child = node.statics?.get(search.keys[i])
  if (child) {
    walk(child, search, i + 1)
    if (search.done) return
  }
  if (node.param && seg !== '') {
    search.captures.push(seg)
    walk(node.param, search, i + 1)
    search.captures.pop()
    if (search.done) return
  }
  if (node.wildcard.length > 0) {
    const remainder = i === segments.length - 1 ? seg : segments.slice(i).join('/')
    for (const route of node.wildcard) if (search.consider(route, undefined, remainder) && search.done) return
  }
}

function groupParams(groups: Record<string, string | undefined> | undefined): Record<string, string> | undefined {
  const params: Record<string, string> = Object.create(null) // a `__proto__` param is an ordinary key
  if (!groups) return params
  for (const name in groups) {
    const raw = groups[name]
    if (raw === undefined) continue
    const value = decode(raw)
    if (value === undefined) return undefined
    params[name] = value
  }
  return params
}

function decode(raw: string): string | undefined {
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined // e.g. %FF: not UTF-8
  }
}
