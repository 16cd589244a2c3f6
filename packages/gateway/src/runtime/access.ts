import { type Authenticator, DEFAULT_IDENTITY_HEADERS, type Middleware, type PolicyContext } from '@switchboard/core'
import { authenticate } from '@switchboard/auth'
import type { GatewayConfig, RouteConfig } from '../config/types.ts'
import type { GatewayRegistry } from '../registry.ts'
import type { GatewayLogger } from './runtime.ts'

/**
 * Client headers that could make an origin think a request was another method. On a route that
 * authenticates they are removed before the request goes upstream, so `POST` with
 * `X-HTTP-Method-Override: DELETE` cannot become a DELETE that the route's rules never saw.
 */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const

/**
 * How a runtime places authentication. Auth policies (those whose definition has an
 * `authenticator`) never run as ordinary layers: every route gets one combined layer ("any one
 * suffices") from the server's auth policies and its own, unless it is `public: true`.
 */
export class AccessPlan {
  /** Authenticators of `server.policies`, applied to every non-public route and to unmatched requests. */
  readonly serverAuthenticators: readonly Authenticator[]
  /** Every identity header name any scheme may send: removed from every client request first. */
  readonly identityHeaders: readonly string[]
  readonly #config: GatewayConfig
  readonly #logger: GatewayLogger
  readonly #built = new Map<string, Authenticator>()

  constructor(config: GatewayConfig, registry: GatewayRegistry, logger: GatewayLogger, context: (name: string) => PolicyContext) {
    this.#config = config
    this.#logger = logger
    for (const name of Object.keys(config.policies)) {
      const instance = config.policies[name]
      const def = registry.policy(instance.use)
      if (def?.authenticator) this.#built.set(name, def.authenticator(instance.options, context(name)))
    }
    this.serverAuthenticators = config.server.policies.filter((n) => this.isAuth(n)).map((n) => this.#built.get(n)!)
    const names = new Set<string>([DEFAULT_IDENTITY_HEADERS.subject!, DEFAULT_IDENTITY_HEADERS.method!])
    for (const a of this.#built.values()) addIdentityNames(names, a.identityHeaders)
    for (const c of Object.values(config.clients)) addIdentityNames(names, c.identityHeaders)
    this.identityHeaders = [...names]
  }

  /** True when the policy instance `name` is an authentication scheme. */
  isAuth(name: string): boolean {
    return this.#built.has(name)
  }

  /** The combined authentication layer for these authenticators (server's first), with `server.publicPaths` exempt. */
  layer(authenticators: readonly Authenticator[]): Middleware {
    return authenticate(authenticators, {
      exempt: this.#config.server.publicPaths,
      log: (level, message, fields) => this.#logger(level, message, fields),
    })
  }

  /** The route's authenticators: the server's and its own, none on a public route. */
  routeAuthenticators(route: RouteConfig): Authenticator[] {
    if (route.public) return []
    return [...this.serverAuthenticators, ...route.policies.filter((n) => this.isAuth(n)).map((n) => this.#built.get(n)!)]
  }

  /**
   * The route's own policy names in order with the auth placeholder `null` where the combined
   * layer goes: first when the server authenticates, else where the route's first auth policy
   * is; never before a `cors` policy, so preflights are answered before credentials are asked.
   */
  order(route: RouteConfig): Array<string | null> {
    const others = route.policies.filter((n) => !this.isAuth(n))
    if (this.routeAuthenticators(route).length === 0) return others
    let at = this.serverAuthenticators.length > 0 ? 0 : route.policies.filter((n, i) => !this.isAuth(n) && i < route.policies.findIndex((m) => this.isAuth(m))).length
    for (let i = others.length - 1; i >= at; i--) {
      if (this.#config.policies[others[i]]?.use === 'cors') {
        at = i + 1
        break
      }
    }
    return [...others.slice(0, at), null, ...others.slice(at)]
  }
}

function addIdentityNames(names: Set<string>, h: { subject?: string; method?: string; client?: string; claims?: Readonly<Record<string, string>> } | false): void {
  if (!h) return
  for (const n of [h.subject, h.method, h.client]) if (n) names.add(n)
  if (h.claims) for (const k of Object.keys(h.claims)) names.add(h.claims[k])
}

/**
 * A path that an origin may read as another route's: each segment lower-cased, with trailing dots
 * and `;parameters` dropped (IIS, Windows file systems, Tomcat). Equal to `path` for ordinary paths.
 */
export function looseVariant(path: string): string {
  let loose = false
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if ((c >= 0x41 && c <= 0x5a) || c === 0x3b /* ; */ || (c === 0x2e /* . */ && (i === path.length - 1 || path.charCodeAt(i + 1) === 0x2f))) {
      loose = true
      break
    }
  }
  if (!loose) return path
  return path
    .split('/')
    .map((seg) => {
      const semi = seg.indexOf(';')
      return (semi === -1 ? seg : seg.slice(0, semi)).replace(/\.+$/, '').toLowerCase()
    })
    .join('/')
}
