import type { Exchange } from './exchange.ts'

/**
 * Who made a request, once an {@link Authenticator} accepted its credential. Goes upstream in the
 * identity headers and into `ex.state` (see {@link IDENTITY_STATE}); never holds the credential.
 */
export interface Identity {
  /** How it was proven: `api-key`, `jwt`, `basic`, `client`, or a plugin's own scheme name. */
  readonly method: string
  /** Key id, JWT `sub`, Basic user name or client name. */
  readonly subject: string
  /** Tenant (client) the request belongs to, when the scheme has one. */
  readonly client?: string
  /** Verified claims (JWT payload) or other attributes the scheme vouches for. */
  readonly claims?: Readonly<Record<string, unknown>>
}

/**
 * What one authenticator made of a request: accepted with an identity, or refused with a reason.
 * `missing`: no credential of this scheme is present (another scheme may still accept the request).
 * `invalid`: a credential is present and wrong, expired, or unverifiable (401).
 * `forbidden`: the credential is valid but does not allow this request (403).
 * `detail` is for the log only; clients never see it.
 */
export type AuthResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: 'missing' | 'invalid' | 'forbidden'; readonly detail?: string }

/** Where the identity goes upstream. A header named here is always removed from the client's request first. */
export interface IdentityHeaders {
  /** Header carrying {@link Identity.subject}; `undefined` sends none. */
  readonly subject?: string
  /** Header carrying {@link Identity.method}; `undefined` sends none. */
  readonly method?: string
  /** Header carrying {@link Identity.client}; `undefined` sends none. */
  readonly client?: string
  /** Claim name → header name (string and number claims only; others are skipped). */
  readonly claims?: Readonly<Record<string, string>>
}

/** The identity headers sent unless an auth policy configures others. */
export const DEFAULT_IDENTITY_HEADERS: IdentityHeaders = Object.freeze({ subject: 'x-auth-subject', method: 'x-auth-method' })

/**
 * One authentication scheme, configured. Synchronous where it can be (an `api-key` lookup), a
 * promise where it must be (a JWKS fetch). It only judges: removing the credential header and
 * sending the identity upstream is done by whoever combines authenticators (`@switchboard/auth`'s
 * `authenticate()` layer, or the gateway).
 */
export interface Authenticator {
  /** The scheme's name, as in {@link Identity.method}. */
  readonly method: string
  /** Value for `WWW-Authenticate` on a 401 (`Bearer realm="api"`, `Basic realm="staff", charset="UTF-8"`). */
  readonly challenge: string
  /** Lowercase header names that carry this scheme's credential; removed before the request goes upstream. */
  readonly credentialHeaders: readonly string[]
  /** Query parameters that carry the credential (only when configured); removed from the upstream target. */
  readonly credentialQuery?: readonly string[]
  /** Where the identity goes upstream; `false` sends no identity header. */
  readonly identityHeaders: IdentityHeaders | false
  authenticate(ex: Exchange): AuthResult | Promise<AuthResult>
}

/** `ex.state` key of the accepted {@link Identity}. */
export const IDENTITY_STATE = 'switchboard.identity'
/** `ex.state` key of the identity's subject (rate limits keyed by `subject` read it). */
export const SUBJECT_STATE = 'switchboard.subject'
/** `ex.state` key of the identity's client (rate limits keyed by `client` read it). */
export const CLIENT_STATE = 'switchboard.client'
