import type { Authenticator } from './auth.ts'
import type { Middleware } from './exchange.ts'
import type { Store } from './store.ts'

/** Where a policy instance may run. */
export type PolicyPhase = 'server' | 'route'

/** What a policy factory gets besides its options. */
export interface PolicyContext {
  /** The instance name from config (`policies.NAME`), or the route for shorthand keys. */
  readonly name: string
  /** Log sink of the gateway. */
  readonly log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void
  /** The gateway's store (`store:` in config): shared state such as rate-limit counters lives here. */
  readonly store?: Store
}

/**
 * A policy type: its registry name, its option parser and its factory. Validation lives beside the
 * code: `parse` gets the raw options (without `use`) and the key path they came from, and throws a
 * `ConfigError` naming `${at}.key` on anything wrong, so `check` and `run` refuse the same files.
 * `create` never sees unparsed options.
 * @example
 * const hello = definePolicy({
 *   name: 'hello',
 *   parse: (raw, at) => {
 *     const r = new OptionReader(raw, at)
 *     const options = { text: r.string('text', 'hi') }
 *     r.done()
 *     return options
 *   },
 *   create: (o) => async (ex, next) => (ex.request.path === '/hello' ? ex.respond(200, {}, o.text) : next()),
 * })
 */
export interface PolicyDefinition<O = unknown> {
  /** kebab-case name used by `use:` in config. */
  readonly name: string
  /** Phases this policy makes sense in. @default both */
  readonly phases?: readonly PolicyPhase[]
  /** Validates and normalises raw options; throws `ConfigError` with the key path. */
  parse(raw: Record<string, unknown>, at: string): O
  /** Builds the layer from parsed options. */
  create(options: O, context: PolicyContext): Middleware
  /**
   * Present on authentication schemes (`api-key`, `jwt`, `basic`, a plugin's own): builds the
   * {@link Authenticator} the gateway combines with the route's others ("any one suffices"), skips
   * on `public: true` routes and runs after the route matched even when listed in
   * `server.policies`. `create` is then the same scheme as a stand-alone layer.
   */
  authenticator?(options: O, context: PolicyContext): Authenticator
}

/**
 * Identity helper that types a {@link PolicyDefinition} (and checks its name).
 * @example export const myPolicy = definePolicy({ name: 'my-policy', parse: () => ({}), create: () => (ex, next) => next() })
 */
export function definePolicy<O>(definition: PolicyDefinition<O>): PolicyDefinition<O> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(definition.name)) throw new TypeError(`policy name must be kebab-case, got ${JSON.stringify(definition.name)}`)
  if (typeof definition.parse !== 'function' || typeof definition.create !== 'function') {
    throw new TypeError(`policy ${definition.name}: parse and create must be functions`)
  }
  return definition
}
