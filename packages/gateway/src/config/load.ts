import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '@switchboard/core'
import { importLegacyConfig, isLegacyConfig } from '@switchboard/discovery'
import { GatewayRegistry, type GatewayPlugin } from '../registry.ts'
import { loadEnv } from './env-file.ts'
import { parseConfig, parseConfigText } from './index.ts'
import { resolvePackage } from './resolve-package.ts'
import { importSeed004Config, isSeed004Config } from './seed004.ts'
import type { GatewayConfig, StoreConfig } from './types.ts'

/**
 * Config file formats the loader reads: ours, SingleEndpointRouter's (seed 000) and
 * python-api-router's (seed 004: `targets`, `secrets`, `clients`). `auto` tells them apart.
 */
export type ConfigFormat = 'auto' | 'switchboard' | 'single-endpoint-router' | 'api-router'

/** Overrides from the command line and the environment, applied after validation. */
export interface ConfigOverrides {
  /** `--store URL`: replaces `store:` (and the store of remembered routes). */
  store?: string
  /** `--port` or `PORT`: replaces `server.port`. */
  port?: string
  /** `--host`: replaces `server.host`. */
  host?: string
  /** `--format`. @default 'auto' */
  format?: ConfigFormat
  /** `--endpoints a,b`: extra discovery endpoints for a SingleEndpointRouter config. */
  endpoints?: string[]
  /**
   * Variables for `${NAME}` expansion; they win over the `.env` file's (see `envFile`).
   * @default process.env
   */
  env?: Record<string, string | undefined>
  /**
   * `--env-file PATH`: a `.env` file read into the variables (it must exist); `env` wins over it.
   * Without it, the `.env` in the config file's folder is read when there is one.
   * @default the `.env` beside the config file
   */
  envFile?: string
}

/** A validated config and the registry its plugins were loaded into. */
export interface LoadedConfig {
  readonly config: GatewayConfig
  readonly registry: GatewayRegistry
}

/** Reads and parses a YAML/JSON file into a plain object; errors name the file. */
export function readConfigObject(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('', `a readable config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file })
  }
  return parseConfigText(text, file)
}

/**
 * Loads a config file in our format, SingleEndpointRouter's or python-api-router's (detected when
 * `format` is `auto`): reads the variables for `${NAME}` from the environment over the `.env`
 * beside the file (or `overrides.envFile`), loads its `plugins:` (relative paths from the file's
 * folder, or package names) into a fresh registry, validates everything against it, then applies
 * the overrides. Every call re-reads the files, so a reload sees an edited `.env` too. Throws
 * ConfigError naming the file and key path; a plugin that fails to load is a ConfigError at `plugins[i]`.
 * @example const { config, registry } = await loadConfigFile('gw.yaml', { port: process.env.PORT })
 */
export async function loadConfigFile(file: string, overrides: ConfigOverrides = {}): Promise<LoadedConfig> {
  const raw = readConfigObject(file)
  const env = loadEnv({ configFile: file, envFile: overrides.envFile, env: overrides.env })
  const object = importForeign(raw, file, overrides)
  const registry = new GatewayRegistry()
  const plugins = typeof object === 'object' && object !== null ? (object as { plugins?: unknown }).plugins : undefined
  if (Array.isArray(plugins)) {
    for (let i = 0; i < plugins.length; i++) {
      if (typeof plugins[i] === 'string') await loadPlugin(registry, plugins[i] as string, file, `plugins[${i}]`)
    }
  }
  const config = parseConfig(object, { file, registry, env })
  try {
    applyOverrides(config, overrides)
  } catch (err) {
    throw err instanceof ConfigError ? ConfigError.inFile(err, file) : err
  }
  return { config, registry }
}

/** Applies `--port`/`PORT`, `--host` and `--store` to a validated config. */
export function applyOverrides(config: GatewayConfig, overrides: ConfigOverrides): void {
  if (overrides.port !== undefined && overrides.port !== '') {
    const port = Number(overrides.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError('PORT', 'a port number (0-65535) in --port or the PORT environment variable', { got: overrides.port })
    }
    config.server.port = port
  }
  if (overrides.host !== undefined && overrides.host !== '') config.server.host = overrides.host
  if (overrides.store !== undefined) {
    config.store = parseStoreFlag(overrides.store)
    if (config.discovery) config.discovery.store = config.store
  }
}

/** Parses `--store`: `memory:`, `sqlite:PATH`, `redis://…`. */
export function parseStoreFlag(value: string): StoreConfig {
  if (value === 'memory:' || value === 'memory') return { driver: 'memory' }
  if (value.startsWith('sqlite:')) return { driver: 'sqlite', path: value.slice('sqlite:'.length) || './switchboard.db' }
  if (/^rediss?:\/\//.test(value)) return { driver: 'redis', url: value }
  throw new ConfigError('--store', 'memory:, sqlite:PATH or redis://HOST:PORT/DB', { got: value })
}

let generation = 0

/** The object in our format: as read, or imported from a seed's format (`format`, or detected under `auto`). */
function importForeign(raw: unknown, file: string, overrides: ConfigOverrides): unknown {
  const format = overrides.format ?? 'auto'
  if (format === 'single-endpoint-router' || (format === 'auto' && isLegacyConfig(raw))) {
    return importLegacyConfig(raw, { file, fallbackEndpoints: overrides.endpoints })
  }
  if (format === 'api-router' || (format === 'auto' && isSeed004Config(raw))) return importSeed004Config(raw, { file })
  return raw
}

async function loadPlugin(registry: GatewayRegistry, specifier: string, file: string, at: string): Promise<void> {
  const base = dirname(resolve(file))
  let url: string
  try {
    // A package name resolves as `import` would from the config's folder (its `exports` under the
    // import conditions): an ESM-only package has no CommonJS entry for require.resolve to find.
    const path = specifier.startsWith('.') || isAbsolute(specifier) ? resolve(base, specifier) : resolvePackage(specifier, base)
    // A fresh URL per load, so a reload picks up an edited plugin file (ESM caches by URL).
    url = `${pathToFileURL(path).href}?v=${++generation}`
  } catch (err) {
    throw new ConfigError(at, `a plugin module that can be found (${(err as Error).message.split('\n')[0]})`, { file, got: specifier })
  }
  let mod: { default?: unknown }
  try {
    mod = (await import(url)) as { default?: unknown }
  } catch (err) {
    throw new ConfigError(at, `a plugin module that loads (${(err as Error).message.split('\n')[0]})`, { file, got: specifier })
  }
  try {
    await registry.use(mod.default as GatewayPlugin, specifier)
  } catch (err) {
    throw new ConfigError(at, `a plugin whose setup succeeds (${(err as Error).message.split('\n')[0]})`, { file, got: specifier })
  }
}
