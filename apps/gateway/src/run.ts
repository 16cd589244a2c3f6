import { readFileSync } from 'node:fs'
import { ConfigError } from '@switchboard/core'
import { importLegacyConfig, isLegacyConfig } from '@switchboard/discovery'
import { createGateway, type Gateway, type GatewayConfig, parseConfig } from '@switchboard/gateway'
import { parse as parseYaml } from 'yaml'

/** Config file formats the CLI reads. */
export type ConfigFormat = 'auto' | 'switchboard' | 'single-endpoint-router'

/** Overrides from the command line and the environment. */
export interface ConfigOverrides {
  /** `--store URL`: replaces `store:` (and the store of remembered routes). */
  store?: string
  /** `PORT`: replaces `server.port`. */
  port?: string
  /** `--format`. @default 'auto' */
  format?: ConfigFormat
  /** `--endpoints a,b`: extra discovery endpoints for a SingleEndpointRouter config. */
  endpoints?: string[]
}

/** Reads and parses a YAML/JSON file into a plain object; errors name the file. */
export function readConfigObject(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('', `a readable config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file })
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    throw new ConfigError('', `valid YAML (${(err as Error).message.split('\n')[0]})`, { file, cause: err })
  }
}

/**
 * Loads and validates a config file in our format or SingleEndpointRouter's (detected when
 * `format` is `auto`), then applies the overrides. Throws ConfigError naming the file and key path.
 */
export function loadConfigFile(file: string, overrides: ConfigOverrides = {}): GatewayConfig {
  const raw = readConfigObject(file)
  const format = overrides.format ?? 'auto'
  const legacy = format === 'single-endpoint-router' || (format === 'auto' && isLegacyConfig(raw))
  const config = legacy
    ? parseConfig(importLegacyConfig(raw, { file, fallbackEndpoints: overrides.endpoints }), { file })
    : parseConfig(raw, { file })
  if (overrides.port !== undefined && overrides.port !== '') {
    const port = Number(overrides.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError('PORT', 'a port number (0-65535) in the PORT environment variable', { got: overrides.port })
    }
    config.server.port = port
  }
  if (overrides.store !== undefined) {
    config.store = parseStoreFlag(overrides.store)
    if (config.discovery) config.discovery.store = config.store
  }
  return config
}

/** Parses `--store`: `memory:`, `sqlite:PATH`, `redis://…`. */
export function parseStoreFlag(value: string): GatewayConfig['store'] {
  if (value === 'memory:' || value === 'memory') return { driver: 'memory' }
  if (value.startsWith('sqlite:')) return { driver: 'sqlite', path: value.slice('sqlite:'.length) || './switchboard.db' }
  if (/^rediss?:\/\//.test(value)) return { driver: 'redis', url: value }
  throw new ConfigError('--store', 'memory:, sqlite:PATH or redis://HOST:PORT/DB', { got: value })
}

/** Runs the gateway until SIGTERM/SIGINT, then drains in-flight requests and exits. */
export async function serve(config: GatewayConfig, options: { clearRoutes?: boolean } = {}): Promise<Gateway> {
  const gateway = await createGateway(config)
  if (options.clearRoutes) {
    const n = await gateway.forgetRoutes('')
    log('info', `cleared ${n} remembered routes`)
  }
  const address = await gateway.listen()
  log('info', `switchboard listening on http://${address.address}:${address.port}`, {
    routes: config.routes.length,
    upstreams: Object.keys(config.upstreams).length,
    discovery: config.discovery ? config.discovery.endpoints.length : undefined,
  })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    log('info', `${signal}: draining`, { inFlight: gateway.inFlight })
    gateway.close().then(
      () => process.exit(0),
      (err) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  return gateway
}

function log(level: 'info', message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }))
}
