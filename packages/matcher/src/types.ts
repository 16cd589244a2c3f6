import type { BodyCondition } from './body.ts'

/**
 * The conditions of one route; every condition given must hold.
 * @example
 * const match: RouteMatch = { path: '/users/:id', methods: ['GET'], host: '*.example.com' }
 */
export interface RouteMatch {
  /**
   * Path pattern, matched against the normalised path (see `normalizePath`): exact (`/users`),
   * params (`/users/:id`, one non-empty segment), prefix wildcard (`/api/*`, which also matches
   * `/api` and `/api/`; param `*` holds the rest without its leading slash), named wildcard
   * (`/files/*rest`). `/*` matches every path. Set `path` or `pathRegex`, not both.
   * @default every path
   */
  path?: string
  /**
   * Regular expression tested against the normalised path (escapes other than unreserved ones stay
   * encoded); named groups become params (decoded). Not anchored unless you anchor it; `g` and `y`
   * flags are dropped.
   * @default none
   */
  pathRegex?: string | RegExp
  /** Upper-case methods. @default any method */
  methods?: string[]
  /**
   * Exact host (`api.example.com`) or wildcard (`*.example.com`: any subdomain depth, not the apex).
   * Case-insensitive; the request's port and a trailing dot are ignored.
   * @default any host
   */
  host?: string | string[]
  /**
   * Header conditions by (case-insensitive) name: `true` = present, string = exact value,
   * RegExp = tested. A repeated header is tested joined with `, ` (RFC 9110 §5.3).
   * @default none
   */
  headers?: Record<string, string | RegExp | true>
  /**
   * Query conditions by exact parameter name, on the first occurrence's decoded value
   * (`URLSearchParams.get`): `true` = present, string = exact value, RegExp = tested.
   * @default none
   */
  query?: Record<string, string | RegExp | true>
  /**
   * JSON payloads: the request's JSON body must deep-equal one of them (object keys in any order,
   * arrays in order, `1` ≠ `"1"`). The caller parses the body when `needsBody()` says so.
   * @default none
   */
  payload?: unknown[]
  /**
   * Per-field conditions on the JSON body, all of which must hold: keys are dotted field paths
   * (`model`, `metadata.tier`; a dot inside a key is escaped: `'a\\.b'` in JS source names the key
   * `a.b`), values a {@link BodyCondition}
   * (`'llama-3-*'`, `true`, `{ exists: false }`, `{ in: ['a', 'b'] }`, a RegExp). A body that is
   * not a JSON object, or a field of another type, does not match. Among routes of equal priority
   * and path, those with `body` or `payload` conditions are tried first. The caller parses the body
   * when `needsBody()` says so.
   * @default none
   */
  body?: Record<string, BodyCondition>
}

/**
 * One route: a unique name, its conditions, an optional priority and your data.
 * @example
 * const route: RouteDefinition<string> = { name: 'users', match: { path: '/users/:id' }, data: 'users-upstream' }
 */
export interface RouteDefinition<T> {
  /** Unique name. */
  name: string
  /** Conditions. */
  match: RouteMatch
  /** Higher wins before specificity is considered. @default 0 */
  priority?: number
  /** Anything: the upstream, policies, ... returned with the match. */
  data: T
}

/**
 * What the matcher looks at. `headers` is a lowercase record, as `node:http` gives it.
 * @example
 * const input: MatchInput = { method: 'GET', path: '/users/42', query: '?full=1', host: 'api.example.com' }
 */
export interface MatchInput {
  /** Request method. */
  method: string
  /** Raw path (normalised by the matcher). A `?…` tail is split off into `query` when `query` is absent. */
  path: string
  /** Raw query string, with or without the leading `?`. @default '' */
  query?: string
  /** Host (a `host` header is used when absent). @default headers.host */
  host?: string
  /** Lowercase header record. @default {} */
  headers?: Record<string, string | string[] | undefined>
  /** The parsed JSON body, for routes with a `payload` or `body` condition. @default undefined */
  body?: unknown
}

/**
 * The route that claimed a request, with its decoded params.
 * @example
 * const result: MatchResult<string> | undefined = matcher.match({ method: 'GET', path: '/users/42' })
 * result?.params.id // '42'
 */
export interface MatchResult<T> {
  /** The winning route, as defined. */
  route: RouteDefinition<T>
  /**
   * Named params, `*` for an unnamed wildcard; `decodeURIComponent`-decoded. A null-prototype
   * object, so a param named `__proto__` or `constructor` is an ordinary key and a missing one is
   * `undefined`, never an `Object.prototype` member.
   */
  params: Record<string, string>
}

/**
 * A compiled set of routes.
 * @example
 * const matcher: Matcher<string> = createMatcher([{ name: 'all', match: { path: '/*' }, data: 'x' }])
 */
export interface Matcher<T> {
  /** The best route whose conditions all hold, or `undefined` (also for a path `normalizePath` refuses). */
  match(input: MatchInput): MatchResult<T> | undefined
  /**
   * True when a route with a `payload` or `body` condition could claim this input, so the caller must parse
   * the body (bounded) and call `match()` again with `body` set. Cheap; no body needed.
   */
  needsBody(input: MatchInput): boolean
  /**
   * Methods of the routes whose other conditions hold for this input, upper-case and sorted;
   * `[]` when no route matches even ignoring the method. Lets a caller answer 405 with `Allow`.
   * A route without `methods` adds `'*'`.
   */
  allowedMethods(input: MatchInput): string[]
  /** The routes as given. */
  readonly routes: readonly RouteDefinition<T>[]
}

/**
 * Options of {@link createMatcher}.
 * @example
 * const options: MatcherOptions = { strictTrailingSlash: false }
 */
export interface MatcherOptions {
  /**
   * When true, `/users` and `/users/` are different paths; when false, a trailing slash is ignored
   * on both patterns and requests (except `/`).
   * @default true
   */
  strictTrailingSlash?: boolean
  /**
   * When false, static path segments compare case-insensitively (params keep the request's case;
   * add the `i` flag to regexes yourself). Set it when the origin ignores case (IIS, some Spring
   * setups), so `/ADMIN` still meets the `/admin/*` route's policies.
   * @default true
   */
  caseSensitive?: boolean
}
