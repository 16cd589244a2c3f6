import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { ConfigError, type ConfigObject, ConfigValidator, type PolicyPhase } from '@switchboard/core'
import { createEndpoint } from '@switchboard/balancer'
import { createHealthChecker } from '@switchboard/health-checker'
import { validateRoute } from '@switchboard/matcher'
import { parse as parseYaml } from 'yaml'
import { GatewayRegistry } from '../registry.ts'
import { parseAdmin, parseLogs, parseMetrics, parseTracing } from './admin.ts'
import { parseClients, parseDocs, parseProxy, parseSecrets, parseTargets } from './clients.ts'
import { parseDiscovery } from './discovery.ts'
import { parseModels } from './models.ts'
import { parseRoute } from './routes.ts'
import { parseServer } from './server.ts'
import { parseStore } from './store.ts'
import type { GatewayConfig, ParseConfigOptions, PolicyInstanceConfig, RouteConfig, UpstreamConfig } from './types.ts'
import { parseUpstream } from './upstreams.ts'

const ROOT_KEYS = ['server', 'upstreams', 'routes', 'store', 'admin', 'discovery', 'plugins', 'policies', 'targets', 'secrets', 'clients', 'proxy', 'docs', 'metrics', 'logs', 'tracing', 'models']

/**
 * Parses YAML (or JSON, which is YAML) config text, expands `${ENV}` in string values, validates it
 * and fills in defaults. Throws {@link ConfigError} naming the file and key path. Plugins named in
 * the text are not loaded here (see `loadConfigFile`); pass a `registry` they were loaded into.
 * @example const config = loadConfigText(readFileSync('gw.yaml', 'utf8'), { file: 'gw.yaml' })
 */
export function loadConfigText(text: string, options: ParseConfigOptions = {}): GatewayConfig {
  return parseConfig(parseConfigText(text, options.file), options)
}

/** YAML text → plain object, with the YAML error as a ConfigError naming the file. */
export function parseConfigText(text: string, file?: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    throw new ConfigError('', `valid YAML (${(err as Error).message.split('\n')[0]})`, { file, cause: err })
  }
}

/**
 * Validates an already-parsed config object (see {@link loadConfigText}). Everything the gateway
 * could refuse while starting is refused here, with the key path: route patterns (built once),
 * balancer and health-check options (built once), policy options (each type's own parser), names.
 * @example parseConfig({ upstreams: { a: { targets: ['http://127.0.0.1:3000'] } }, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'a' }] })
 */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): GatewayConfig {
  const env = options.env ?? (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {}
  const registry = options.registry ?? new GatewayRegistry()
  const v = new ConfigValidator(options.file, env)
  const root = v.object(raw, '')
  v.keys(root, '', ROOT_KEYS)
  const plugins = root.plugins === undefined ? [] : v.list(root.plugins, 'plugins').map((p, i) => v.string(p, `plugins[${i}]`))
  const baseDir = options.file ? dirname(resolve(options.file)) : process.cwd()
  const server = parseServer(v, root.server, baseDir)
  const discovery = parseDiscovery(v, root.discovery, registry)
  const upstreams = Object.create(null) as Record<string, UpstreamConfig>
  // With `targets:` (seed 004) or discovery, `upstreams:` may be left out.
  const tenants = root.clients !== undefined
  const upstreamsRaw = (discovery || root.targets !== undefined) && root.upstreams === undefined ? {} : v.map(root.upstreams, 'upstreams')
  const names = Object.keys(upstreamsRaw)
  for (const name of names) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) v.fail(`upstreams.${name}`, 'an upstream name of letters, digits, _ . -', name)
    upstreams[name] = parseUpstream(v, name, upstreamsRaw[name], registry, baseDir)
    checkHealthOptions(v, upstreams[name])
  }
  for (const target of parseTargets(v, root.targets, names)) upstreams[target.name] = target
  if (Object.keys(upstreams).length === 0 && !discovery) v.fail('upstreams', 'at least one upstream (or a targets: section)', upstreamsRaw)
  const secrets = parseSecrets(v, root.secrets)
  const clients = parseClients(v, root.clients, upstreams, secrets)
  if (tenants && Object.keys(clients).length === 0) v.fail('clients', 'at least one client', root.clients)
  if (root.proxy !== undefined && !tenants) v.fail('proxy', 'a clients: section (the /proxy envelope serves clients)', root.proxy)
  const proxy = tenants ? parseProxy(v, root.proxy, server.limits.maxBodyBytes) : undefined
  const docs = parseDocs(v, root.docs)
  const policies = parsePolicies(v, root.policies, registry, baseDir)
  const routesRaw = (discovery || tenants) && root.routes === undefined ? [] : v.list(root.routes, 'routes')
  if (routesRaw.length === 0 && !discovery && !tenants) v.fail('routes', 'at least one route (or a discovery: or clients: section)', routesRaw)
  const seen = new Set<string>()
  const routes = routesRaw.map((r, i) => {
    const at = `routes[${i}]`
    const route = parseRoute(v, at, r, upstreams)
    if (seen.has(route.name)) v.fail(`${at}.name`, 'a name no other route uses', route.name)
    seen.add(route.name)
    checkRoutePattern(v, at, route)
    checkPolicyRefs(v, `${at}.policies`, route.policies, policies, registry, 'route')
    const auth = route.policies.find((n) => registry.policy(policies[n].use)?.authenticator !== undefined)
    if (route.public && auth !== undefined) v.fail(`${at}.public`, `a route without auth policies, or public: false (policies lists ${auth})`, true)
    return route
  })
  checkPolicyRefs(v, 'server.policies', server.policies, policies, registry, 'server')
  if (proxy) checkPolicyRefs(v, 'proxy.policies', [...proxy.policies], policies, registry, 'route')
  const store = parseStore(v, root.store, registry)
  const admin = parseAdmin(v, root.admin, server.healthPath)
  const metrics = parseMetrics(v, root.metrics)
  const models = parseModels(v, root.models, upstreams)
  checkReservedPaths(v, server.healthPath, admin && !admin.listen ? admin.path : undefined, proxy?.path, docs, metrics?.path, models?.path)
  return {
    server,
    upstreams,
    routes,
    store,
    admin,
    discovery,
    plugins,
    policies,
    secrets,
    clients,
    proxy,
    docs,
    metrics,
    models,
    logs: parseLogs(v, root.logs),
    tracing: parseTracing(v, root.tracing),
    source: { file: options.file },
  }
}

/** The gateway's own endpoints must not shadow each other. */
function checkReservedPaths(
  v: ConfigValidator,
  health: string,
  admin: string | undefined,
  proxy: string | undefined,
  docs: { path: string; openapiPath: string } | undefined,
  metrics: string | undefined,
  models?: string,
): void {
  const taken: Array<[string, string]> = [['server.healthPath', health]]
  if (admin !== undefined) taken.push(['admin.path', admin])
  const under = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)
  const check = (at: string, path: string): void => {
    for (const [other, p] of taken) if (under(path, p)) v.fail(at, `a path that does not overlap ${other} (${p})`, path)
    taken.push([at, path])
  }
  if (proxy !== undefined) check('proxy.path', proxy)
  if (docs) {
    check('docs.path', docs.path)
    check('docs.openapiPath', docs.openapiPath)
  }
  if (metrics !== undefined) check('metrics.path', metrics)
  if (models !== undefined) check('models.path', models)
}

/**
 * Options that name a file instead of holding a value (`publicKeyFile: keys/idp.pem`,
 * `secretFile: /run/secrets/jwt`): the file is read here (relative to the config file's folder), on
 * every load and reload, and its text handed to the policy as `publicKey` / `secret`.
 */
const FILE_OPTIONS: Record<string, string> = { publicKeyFile: 'publicKey', secretFile: 'secret' }

function readOptionFiles(v: ConfigValidator, options: ConfigObject, at: string, baseDir: string): void {
  for (const [fileKey, valueKey] of Object.entries(FILE_OPTIONS)) {
    if (options[fileKey] === undefined) continue
    const path = v.string(options[fileKey], `${at}.${fileKey}`)
    if (options[valueKey] !== undefined) v.fail(`${at}.${fileKey}`, `either ${fileKey} or ${valueKey}, not both`, path)
    let text: string
    try {
      text = readFileSync(isAbsolute(path) ? path : resolve(baseDir, path), 'utf8')
    } catch (err) {
      return v.fail(`${at}.${fileKey}`, `a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, path)
    }
    delete options[fileKey]
    // A secret file usually ends with a newline that is not part of the secret.
    options[valueKey] = valueKey === 'secret' ? text.replace(/\r?\n$/, '') : text
  }
}

function parsePolicies(v: ConfigValidator, raw: unknown, registry: GatewayRegistry, baseDir: string): Record<string, PolicyInstanceConfig> {
  const out = Object.create(null) as Record<string, PolicyInstanceConfig>
  if (raw === undefined) return out
  const map = v.map(raw, 'policies')
  for (const name of Object.keys(map)) {
    const at = `policies.${name}`
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) v.fail(at, 'a policy name of letters, digits, _ . -', name)
    const entry = v.object(map[name], at)
    const use = v.string(entry.use, `${at}.use`)
    const definition = registry.policy(use)
    if (!definition) v.fail(`${at}.use`, `a registered policy type (${registry.policyNames().join(', ')})`, use)
    const rest: ConfigObject = {}
    for (const key of Object.keys(entry)) if (key !== 'use') rest[key] = expandDeep(v, entry[key], `${at}.${key}`)
    readOptionFiles(v, rest, at, baseDir)
    let options: unknown
    try {
      options = definition.parse(rest, at)
    } catch (err) {
      if (err instanceof ConfigError) throw ConfigError.inFile(err, v.file)
      v.fail(at, `valid options for ${use} (${(err as Error).message})`, rest)
    }
    out[name] = { name, use, options }
  }
  return out
}

function checkPolicyRefs(
  v: ConfigValidator,
  at: string,
  names: string[],
  policies: Record<string, PolicyInstanceConfig>,
  registry: GatewayRegistry,
  phase: PolicyPhase,
): void {
  names.forEach((name, i) => {
    const instance = Object.hasOwn(policies, name) ? policies[name] : undefined
    if (!instance) v.fail(`${at}[${i}]`, `the name of an entry in policies: (${Object.keys(policies).join(', ') || 'none defined'})`, name)
    const phases = registry.policy(instance.use)?.phases
    if (phases && !phases.includes(phase)) v.fail(`${at}[${i}]`, `a policy that runs in the ${phase} phase (${instance.use} runs in: ${phases.join(', ')})`, name)
  })
}

/** Compiles the route's pattern alone, so a pattern the matcher refuses is reported with its key path. */
function checkRoutePattern(v: ConfigValidator, at: string, route: RouteConfig): void {
  const issues = validateRoute({ name: route.name, priority: route.priority, match: { ...route.match }, data: undefined })
  if (issues.length > 0) {
    const first = issues[0]
    v.fail(`${at}.${first.field}`, `a valid route (${first.message})`, undefined)
  }
}

/** Builds the health checker once without starting it, so its range checks run now. */
function checkHealthOptions(v: ConfigValidator, u: UpstreamConfig): void {
  const at = `upstreams.${u.name}`
  try {
    createHealthChecker({
      endpoints: u.targets.map((t) => createEndpoint({ url: t.url, weight: t.weight, priority: t.priority })),
      active: u.healthCheck && { ...u.healthCheck },
      passive: u.outlierDetection && { ...u.outlierDetection },
      slowStartMs: u.slowStartMs,
    })
  } catch (err) {
    const message = (err as Error).message
    const key = /passive/.test(message) ? 'outlierDetection' : /active/.test(message) ? 'healthCheck' : /endpoints/.test(message) ? 'targets' : 'slowStart'
    v.fail(`${at}.${key}`, `valid settings (${message.replace(/^endpoints/, 'targets')})`, undefined)
  }
}

/** `${ENV}` expansion through a nested value, for options handed to plugin parsers. */
function expandDeep(v: ConfigValidator, value: unknown, at: string): unknown {
  if (typeof value === 'string') return v.expand(value, at)
  if (Array.isArray(value)) return value.map((x, i) => expandDeep(v, x, `${at}[${i}]`))
  if (typeof value === 'object' && value !== null) {
    const out: ConfigObject = {}
    for (const key of Object.keys(value)) out[key] = expandDeep(v, (value as ConfigObject)[key], `${at}.${key}`)
    return out
  }
  return value
}
