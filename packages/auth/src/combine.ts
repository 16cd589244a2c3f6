import {
  type AuthResult,
  type Authenticator,
  CLIENT_STATE,
  DEFAULT_IDENTITY_HEADERS,
  type Exchange,
  ForbiddenError,
  IDENTITY_STATE,
  type Identity,
  type IdentityHeaders,
  type Middleware,
  type PolicyContext,
  ServiceUnavailableError,
  SUBJECT_STATE,
  UnauthorizedError,
} from '@switchboard/core'
import { removeCookies, removeQueryParams } from './shared/credentials.ts'
import { identityHeaderNames } from './shared/identity-headers.ts'

/**
 * `detail` of the {@link AuthResult} a scheme returns when it could not judge the credential
 * because its verification queue is full (Basic's hash checks). {@link authenticate} answers such a
 * request 503 `ERR_SERVICE_UNAVAILABLE` with `Retry-After: 1` (unless another scheme accepted or
 * refused it with 403): the client should retry, not ask the user for a new password.
 * @example if (!result.ok && result.detail === BUSY_DETAIL) console.log('verifier saturated')
 */
export const BUSY_DETAIL = 'busy'

/**
 * An {@link Authenticator} that may also carry its credential in a cookie (the `jwt` scheme's
 * `cookie` option). {@link authenticate} removes only those cookies from the upstream `Cookie`
 * header; removing the whole header would drop the application's other cookies.
 */
export interface CookieCredentialAuthenticator extends Authenticator {
  /** Cookie names that carry this scheme's credential. */
  readonly credentialCookies?: readonly string[]
}

/** Options of {@link authenticate}. */
export interface AuthenticateOptions {
  /**
   * Paths that need no credential, matched against `ex.request.normalizedPath`: exact
   * (`/health`) or a subtree ending in `/*` (`/public/*` matches `/public` and everything below
   * it, not `/publicity`). Client-sent identity headers are still removed on them.
   * @default []
   */
  exempt?: readonly string[]
  /**
   * Called with `('warn', 'auth: refused', { method, reason, detail })` for every scheme that found
   * a credential and refused it (`invalid` or `forbidden`), when no scheme accepted the request.
   * Never given a credential value. @default none
   */
  log?: PolicyContext['log']
}

/**
 * The "any one suffices" layer: tries each authenticator in order and lets the request through on
 * the first that accepts it. The credential headers, query parameters and cookies of EVERY listed
 * scheme are then removed from the upstream request, every configured identity header (and the
 * default ones) is removed
 * and the winner's identity headers set (values with CR, LF, NUL or other control characters are
 * skipped), and `ex.state` gets {@link IDENTITY_STATE}, {@link SUBJECT_STATE} and
 * {@link CLIENT_STATE} (when the identity has a client). When none accepts: 403 `ERR_FORBIDDEN` if
 * any scheme said `forbidden`, else 503 `ERR_SERVICE_UNAVAILABLE` if a scheme was too busy to
 * judge ({@link BUSY_DETAIL}), else 401 `ERR_UNAUTHORIZED` with one `WWW-Authenticate` challenge
 * per scheme. Bodies are the core errors' short JSON; the refusal's detail only goes to `log`.
 * Throws a RangeError for a bad `exempt` pattern or an empty list.
 * @example
 * const auth = authenticate([createApiKeyAuthenticator({ keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })], { exempt: ['/health'] })
 */
export function authenticate(authenticators: readonly Authenticator[], options: AuthenticateOptions = {}): Middleware {
  const list = [...authenticators]
  if (list.length === 0) throw new RangeError('authenticate: give at least one authenticator')
  const exempt = exemptMatcher(options.exempt ?? [])
  const log = options.log
  const plan = credentialPlan(list)
  const identityNames = allIdentityNames(list)
  const challenges = [...new Set(list.map((a) => a.challenge))]
  return async function authenticateLayer(ex, next) {
    if (exempt(ex.request.normalizedPath)) {
      for (const name of identityNames) ex.upstreamHeaders[name] = undefined
      return next()
    }
    const refused: Array<{ method: string; result: Exclude<AuthResult, { ok: true }> }> = []
    for (const authenticator of list) {
      const result = await authenticator.authenticate(ex)
      if (result.ok) {
        stripPlanned(ex, plan)
        for (const name of identityNames) ex.upstreamHeaders[name] = undefined
        sendIdentity(ex, result.identity, authenticator.identityHeaders)
        ex.state.set(IDENTITY_STATE, result.identity)
        ex.state.set(SUBJECT_STATE, result.identity.subject)
        if (result.identity.client !== undefined) ex.state.set(CLIENT_STATE, result.identity.client)
        return next()
      }
      refused.push({ method: authenticator.method, result })
    }
    if (log) {
      for (const { method, result } of refused) {
        if (result.reason !== 'missing') log('warn', 'auth: refused', { method, reason: result.reason, detail: result.detail })
      }
    }
    if (refused.some((r) => r.result.reason === 'forbidden')) throw new ForbiddenError()
    if (refused.some((r) => r.result.reason === 'invalid' && r.result.detail === BUSY_DETAIL)) {
      ex.responseHeaders['retry-after'] = '1'
      throw new ServiceUnavailableError()
    }
    ex.responseHeaders['www-authenticate'] = challenges.length === 1 ? challenges[0]! : [...challenges]
    throw new UnauthorizedError()
  }
}

/**
 * Removes from the upstream request every identity header the given schemes may send (and the
 * default `x-auth-subject` / `x-auth-method`), whatever the client put there: what the gateway does on `public: true` routes, so an upstream never sees a
 * forged `x-auth-subject`.
 * @example stripIdentityHeaders(ex, [createApiKeyAuthenticator({ keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })])
 */
export function stripIdentityHeaders(ex: Exchange, authenticators: readonly Authenticator[]): void {
  for (const name of allIdentityNames(authenticators)) ex.upstreamHeaders[name] = undefined
}

/**
 * Removes the credentials of the given schemes from the upstream request: their headers, their
 * query parameters (rewriting `ex.upstreamTarget`) and their cookies (only those cookies).
 * {@link authenticate} does this once a scheme accepted the request.
 * @example stripCredentials(ex, [createApiKeyAuthenticator({ header: 'x-api-key', query: 'api_key', keys: [{ id: 'ci', key: 'k-0123456789abcdef' }] })])
 */
export function stripCredentials(ex: Exchange, authenticators: readonly Authenticator[]): void {
  stripPlanned(ex, credentialPlan(authenticators))
}

interface CredentialPlan {
  readonly headers: readonly string[]
  readonly query: ReadonlySet<string>
  readonly cookies: ReadonlySet<string>
}

function credentialPlan(list: readonly Authenticator[]): CredentialPlan {
  const headers = new Set<string>()
  const query = new Set<string>()
  const cookies = new Set<string>()
  for (const a of list) {
    for (const h of a.credentialHeaders) headers.add(h.toLowerCase())
    for (const q of a.credentialQuery ?? []) query.add(q)
    for (const c of (a as CookieCredentialAuthenticator).credentialCookies ?? []) cookies.add(c)
  }
  return { headers: [...headers], query, cookies }
}

function stripPlanned(ex: Exchange, plan: CredentialPlan): void {
  for (const name of plan.headers) ex.upstreamHeaders[name] = undefined
  if (plan.query.size > 0) ex.upstreamTarget = removeQueryParams(ex.upstreamTarget, plan.query)
  if (plan.cookies.size > 0 && !plan.headers.includes('cookie')) {
    const given = Object.hasOwn(ex.upstreamHeaders, 'cookie') ? ex.upstreamHeaders.cookie : joined(ex.request.headers.cookie)
    if (given !== undefined) ex.upstreamHeaders.cookie = removeCookies(given, plan.cookies)
  }
}

// The default names are always removed too: a scheme that sends no identity (or other headers)
// must not let a client-forged `x-auth-subject` through to an upstream that trusts it.
function allIdentityNames(list: readonly Authenticator[]): string[] {
  return [...new Set([...identityHeaderNames(DEFAULT_IDENTITY_HEADERS), ...list.flatMap((a) => identityHeaderNames(a.identityHeaders))])]
}

// RFC 9110 §5.5: a field value is visible characters, spaces, tabs and obs-text; anything else
// (CR, LF, NUL, other controls, characters past U+00FF) could split or break the upstream request.
const SAFE_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

function sendIdentity(ex: Exchange, identity: Identity, headers: IdentityHeaders | false): void {
  if (headers === false) return
  const put = (name: string | undefined, value: unknown): void => {
    if (name === undefined) return
    const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined
    if (text !== undefined && SAFE_VALUE.test(text)) ex.upstreamHeaders[name] = text
  }
  put(headers.subject, identity.subject)
  put(headers.method, identity.method)
  put(headers.client, identity.client)
  if (headers.claims && identity.claims) {
    for (const [claim, name] of Object.entries(headers.claims)) {
      if (Object.hasOwn(identity.claims, claim)) put(name, identity.claims[claim])
    }
  }
}

function exemptMatcher(patterns: readonly string[]): (path: string) => boolean {
  if (patterns.length === 0) return () => false
  const exact = new Set<string>()
  const prefixes: string[] = []
  for (const p of patterns) {
    if (typeof p !== 'string' || !p.startsWith('/')) throw new RangeError(`authenticate: exempt pattern ${JSON.stringify(p)} must start with /`)
    if (p.endsWith('/*')) {
      const base = p.slice(0, -2)
      if (base.includes('*')) throw new RangeError(`authenticate: exempt pattern ${JSON.stringify(p)} may only end in /*`)
      prefixes.push(base)
    } else if (p.includes('*')) throw new RangeError(`authenticate: exempt pattern ${JSON.stringify(p)} may only end in /*`)
    else exact.add(p)
  }
  // `/public/*` covers `/public` itself and everything below it, never `/publicity`.
  return (path) => exact.has(path) || prefixes.some((base) => path === base || path.startsWith(`${base}/`))
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join('; ') : value
}
