import { type Balancer, definePolicy, type Exchange, type PolicyDefinition } from '@switchboard/core'
import { balancerNames, createBalancer, type BalancerFactory } from '@switchboard/balancer'
import { builtinAuthPolicies } from '@switchboard/auth'
import { builtinPolicies } from '@switchboard/policies'
import { type StoreDriverDefinition, storeDriver, storeDriverNames } from '@switchboard/store'
import type { Store } from '@switchboard/core'

/** What a `reload` hook is told. */
export interface ReloadSummary {
  /** Upstreams, routes and policies added, removed or changed, by name. */
  readonly added: string[]
  readonly removed: string[]
  readonly changed: string[]
  /** One human line: `reload: +route b, ~upstream api (targets), -upstream old`. */
  readonly line: string
}

/**
 * Lifecycle hooks (seed 001's on_startup / on_request / on_response / on_error / on_shutdown, plus
 * reload). Request, response and error hooks run around every request, server policies included;
 * a hook that throws is logged and does not change the response.
 * Order: `startup` once after listening; per request `request` → (`error` when an error became the
 * response) → `response`; `reload` after a new config took effect; `shutdown` once while closing.
 */
export interface LifecycleHooks {
  startup?(info: { address: string; port: number }): void | Promise<void>
  request?(ex: Exchange): void | Promise<void>
  response?(ex: Exchange): void | Promise<void>
  error?(error: unknown, ex: Exchange): void | Promise<void>
  reload?(summary: ReloadSummary): void | Promise<void>
  shutdown?(): void | Promise<void>
}

/** What a plugin's `setup` can do. */
export interface PluginApi {
  /** Makes a balancer nameable from `upstreams.X.balancer`. */
  registerBalancer(name: string, factory: BalancerFactory): void
  /** Makes a policy type nameable from `policies.X.use`. */
  registerPolicy(definition: PolicyDefinition<any>): void
  /** Makes a store driver nameable from `store.driver` (and `discovery.store.driver`). */
  registerStoreDriver(definition: StoreDriverDefinition<any>): void
  /** Adds lifecycle hooks. */
  hooks(hooks: LifecycleHooks): void
}

/**
 * A plugin module's default export: a name and a setup function (or just the setup function).
 * @example
 * export default definePlugin({
 *   name: 'least-queue',
 *   setup(api) {
 *     api.registerBalancer('least-queue', () => ({ name: 'least-queue', pick: (c) => c[0] }))
 *   },
 * })
 */
export interface GatewayPlugin {
  readonly name: string
  setup(api: PluginApi): void | Promise<void>
}

/**
 * Types a plugin (identity at run time).
 * @example export default definePlugin({ name: 'hello', setup: (api) => api.hooks({ startup: () => console.log('up') }) })
 */
export function definePlugin(plugin: GatewayPlugin): GatewayPlugin {
  return plugin
}

/**
 * Everything config can name: balancers, policy types, and the hooks plugins added. One per
 * config build, so a reload that drops a plugin drops what it registered.
 */
export class GatewayRegistry {
  readonly #balancers = new Map<string, BalancerFactory>()
  readonly #policies = new Map<string, PolicyDefinition<any>>()
  readonly #stores = new Map<string, StoreDriverDefinition<any>>()
  readonly hooks: LifecycleHooks[] = []
  /** Names of the plugins loaded into this registry, in order. */
  readonly plugins: string[] = []

  constructor() {
    for (const definition of [...builtinPolicies, ...builtinAuthPolicies]) this.#policies.set(definition.name, definition)
  }

  registerBalancer(name: string, factory: BalancerFactory): void {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new TypeError(`balancer name must be kebab-case, got ${JSON.stringify(name)}`)
    if (this.hasBalancer(name)) throw new RangeError(`balancer "${name}" is already registered`)
    this.#balancers.set(name, factory)
  }

  /** Adds a policy type; `replace: true` swaps a registered one (a built-in with an injected clock in tests, say). */
  registerPolicy(definition: PolicyDefinition<any>, options: { replace?: boolean } = {}): void {
    definePolicy(definition) // checks the name and the functions
    if (this.#policies.has(definition.name) && options.replace !== true) throw new RangeError(`policy type "${definition.name}" is already registered`)
    this.#policies.set(definition.name, definition)
  }

  registerStoreDriver(definition: StoreDriverDefinition<any>): void {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(definition.name)) throw new TypeError(`store driver name must be kebab-case, got ${JSON.stringify(definition.name)}`)
    if (this.storeDriver(definition.name)) throw new RangeError(`store driver "${definition.name}" is already registered`)
    this.#stores.set(definition.name, definition)
  }

  /** A store driver: one a plugin registered here, else a built-in (or globally registered) one. */
  storeDriver(name: string): StoreDriverDefinition<any> | undefined {
    return this.#stores.get(name) ?? storeDriver(name)
  }

  storeDriverNames(): string[] {
    return [...new Set([...storeDriverNames(), ...this.#stores.keys()])].sort()
  }

  /** Creates a store from a config spec `{ driver, ...options }` (options checked by the driver). */
  async createStore(spec: { driver: string } & Record<string, unknown>): Promise<Store> {
    const { driver, ...options } = spec
    const def = this.storeDriver(driver)
    if (!def) throw new RangeError(`unknown store driver "${driver}" (known: ${this.storeDriverNames().join(', ')})`)
    return def.create(def.parse(options, 'store'))
  }

  hasBalancer(name: string): boolean {
    return this.#balancers.has(name) || balancerNames().includes(name)
  }

  balancerNames(): string[] {
    return [...new Set([...balancerNames(), ...this.#balancers.keys()])].sort()
  }

  /** Builds a balancer; throws (with the factory's message) on bad options. */
  createBalancer(name: string, options: Record<string, unknown>): Balancer {
    const own = this.#balancers.get(name)
    if (!own) return createBalancer({ strategy: name, options })
    const balancer = own(options)
    if (typeof balancer !== 'object' || balancer === null || typeof balancer.pick !== 'function') {
      throw new TypeError(`balancer factory "${name}" did not return a balancer`)
    }
    return balancer
  }

  policy(name: string): PolicyDefinition<any> | undefined {
    return this.#policies.get(name)
  }

  policyNames(): string[] {
    return [...this.#policies.keys()].sort()
  }

  /** Runs a plugin's setup against this registry. */
  async use(plugin: GatewayPlugin | GatewayPlugin['setup'], label = 'plugin'): Promise<void> {
    const p: GatewayPlugin = typeof plugin === 'function' ? { name: label, setup: plugin } : plugin
    if (typeof p?.setup !== 'function') throw new TypeError(`${label}: expected a default export definePlugin({ name, setup }) or a setup function`)
    await p.setup({
      registerBalancer: (name, factory) => this.registerBalancer(name, factory),
      registerPolicy: (definition) => this.registerPolicy(definition),
      registerStoreDriver: (definition) => this.registerStoreDriver(definition),
      hooks: (hooks) => void this.hooks.push(hooks),
    })
    this.plugins.push(p.name ?? label)
  }
}
