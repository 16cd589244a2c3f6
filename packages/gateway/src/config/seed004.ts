import { ConfigError } from '@switchboard/core'
import { stringify } from 'yaml'

/**
 * Options of {@link importSeed004Config} and {@link seed004ToYaml}.
 * @example seed004ToYaml(raw, { file: 'config.yaml' })
 */
export interface ImportSeed004Options {
  /** File name for error messages and the YAML header. @default none */
  file?: string
}

/**
 * A python-api-router config in the gateway's format: its `targets`, `secrets` and `clients`
 * unchanged, plus the server address the seed documents and its `/docs` page.
 * @example const { server } = importSeed004Config(raw) // { host: '127.0.0.1', port: 8787 }
 */
export interface ImportedSeed004Config {
  server: { host: string; port: number }
  targets: Record<string, Record<string, unknown>>
  secrets?: Record<string, unknown>
  /** A client with nothing under its name stays `null` (the gateway's parser reads it as `{}`). */
  clients: Record<string, Record<string, unknown> | null>
  docs: true
}

/**
 * The seed's documented address (`uv run fastapi dev … --port 8787`; README: http://127.0.0.1:8787/health).
 * @example `http://${SEED004_SERVER.host}:${SEED004_SERVER.port}/health`
 */
export const SEED004_SERVER: { readonly host: string; readonly port: number } = { host: '127.0.0.1', port: 8787 }

const ROOT_KEYS = ['targets', 'secrets', 'clients']
// Every key the seed's README shows, then the ones our own `targets:` / `clients:` add (kept as written).
const TARGET_KEYS = ['baseUrl', 'defaultHeaders']
const NATIVE_TARGET_KEYS = ['host', 'timeouts']
const CLIENT_KEYS = ['target', 'authHeaderRef', 'allowedMethods', 'allowedPaths', 'timeoutMs']
const NATIVE_CLIENT_KEYS = ['key', 'keyHash', 'timeout', 'identityHeaders']

/**
 * True when `raw` looks like a python-api-router (seed 004) config: a mapping with `targets` and
 * `clients` and no key but `targets`, `secrets` and `clients` (so no `server`, `upstreams` or `routes`).
 * @example isSeed004Config({ targets: { openrouter: { baseUrl: 'https://openrouter.ai/api/v1' } }, clients: {} }) // true
 */
export function isSeed004Config(raw: unknown): boolean {
  if (!isMapping(raw)) return false
  const keys = Object.keys(raw)
  // Every key in ROOT_KEYS, so never `server`, `upstreams` or `routes` (our format's own).
  return keys.includes('targets') && keys.includes('clients') && keys.every((k) => ROOT_KEYS.includes(k))
}

/**
 * Converts a parsed python-api-router config into the gateway's format: `targets`, `secrets` and
 * `clients` as they are (`${ENV}` references stay text, expanded when the result is parsed, from
 * the environment and the `.env` beside the config), plus `server: { host: 127.0.0.1, port: 8787 }`
 * (the seed's documented port) and `docs: true` (the seed serves `/docs`). A client with neither
 * `key` nor `keyHash` keeps the seed's rule: its name is its bearer key. A key the seed does not
 * document and our format does not know is a {@link ConfigError} naming its key path; values are
 * checked by the gateway's own parser afterwards.
 * @example
 * const native = importSeed004Config(YAML.parse(readFileSync('config.yaml', 'utf8')), { file: 'config.yaml' })
 * const config = parseConfig(native, { file: 'config.yaml', env })
 */
export function importSeed004Config(raw: unknown, options: ImportSeed004Options = {}): ImportedSeed004Config {
  const file = options.file
  const fail = (path: string, expected: string, got: unknown): never => {
    throw new ConfigError(path, expected, { file, got })
  }
  if (!isMapping(raw)) return fail('', 'a python-api-router config: a mapping with targets, secrets and clients', raw)
  for (const key of Object.keys(raw)) {
    if (!ROOT_KEYS.includes(key)) fail(key, `one of the keys of a python-api-router config (${ROOT_KEYS.join(', ')})`, key)
  }
  const targets = section(raw.targets, 'targets', true, fail)
  for (const name of Object.keys(targets)) {
    const t = targets[name]
    if (!isMapping(t)) fail(`targets.${name}`, 'a mapping with baseUrl and defaultHeaders', t)
    checkKeys(t as Record<string, unknown>, `targets.${name}`, TARGET_KEYS, NATIVE_TARGET_KEYS, fail)
  }
  const clients = section(raw.clients, 'clients', true, fail)
  for (const name of Object.keys(clients)) {
    const c = clients[name]
    // `rk-robot-1:` with nothing under it is a client with no settings (the parser then asks for target).
    if (c === null) continue
    if (!isMapping(c)) fail(`clients.${name}`, 'a mapping with target, authHeaderRef, allowedMethods, allowedPaths and timeoutMs', c)
    checkKeys(c as Record<string, unknown>, `clients.${name}`, CLIENT_KEYS, NATIVE_CLIENT_KEYS, fail)
  }
  const out: ImportedSeed004Config = { server: { ...SEED004_SERVER }, targets: targets as ImportedSeed004Config['targets'], clients: clients as ImportedSeed004Config['clients'], docs: true }
  if (raw.secrets !== undefined && raw.secrets !== null) out.secrets = section(raw.secrets, 'secrets', false, fail)
  return out
}

/**
 * {@link importSeed004Config} rendered as YAML in the gateway's format (for `switchboard import`),
 * under a comment naming where it came from.
 * @example writeFileSync('switchboard.yaml', seed004ToYaml(YAML.parse(readFileSync('config.yaml', 'utf8')), { file: 'config.yaml' }))
 */
export function seed004ToYaml(raw: unknown, options: ImportSeed004Options = {}): string {
  const config = importSeed004Config(raw, options)
  const source = options.file ? ` from ${options.file}` : ''
  const nameKeys = Object.keys(config.clients).filter((name) => {
    const c = config.clients[name]
    return c === null || (c.key === undefined && c.keyHash === undefined)
  })
  const header = [
    `# Imported${source} (python-api-router format) by @switchboard/gateway.`,
    '# ${NAME} references are expanded at load from the environment and the .env beside this file.',
  ]
  if (nameKeys.length > 0) {
    header.push(`# Clients without key/keyHash authenticate with their own name as the bearer key, as before: ${nameKeys.join(', ')}.`)
    header.push('# Give each one a keyHash: sha256:<hex> (or key: ${ENV_VAR}) to use a real secret instead.')
  }
  return `${header.join('\n')}\n${stringify(config, { lineWidth: 0 })}`
}

type Fail = (path: string, expected: string, got: unknown) => never

function section(value: unknown, at: string, required: boolean, fail: Fail): Record<string, unknown> {
  if (value === undefined || value === null) {
    if (required) fail(at, `a ${at}: mapping`, value)
    return {}
  }
  if (!isMapping(value)) fail(at, 'a mapping of names', value)
  return value as Record<string, unknown>
}

function checkKeys(obj: Record<string, unknown>, at: string, seedKeys: string[], nativeKeys: string[], fail: Fail): void {
  for (const key of Object.keys(obj)) {
    if (!seedKeys.includes(key) && !nativeKeys.includes(key)) {
      fail(`${at}.${key}`, `one of the keys python-api-router documents (${seedKeys.join(', ')}) or Switchboard adds (${nativeKeys.join(', ')})`, key)
    }
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
