import { readFileSync } from 'node:fs'
import { ConfigError } from '@switchboard/core'
import { createGateway, type Gateway, type GatewayConfig, loadConfigText } from '@switchboard/gateway'

/** Loads and validates a config file; exits with a message naming the file and key path on error. */
export function loadConfigFile(file: string, overrides: { store?: string; port?: string } = {}): GatewayConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('', `a readable config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file })
  }
  const config = loadConfigText(text, { file })
  if (overrides.port !== undefined && overrides.port !== '') {
    const port = Number(overrides.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError('PORT', 'a port number (0-65535) in the PORT environment variable', { got: overrides.port })
    }
    config.server.port = port
  }
  if (overrides.store !== undefined) config.store = parseStoreFlag(overrides.store)
  return config
}

export function parseStoreFlag(value: string): GatewayConfig['store'] {
  if (value === 'memory:' || value === 'memory') return { driver: 'memory' }
  if (value.startsWith('sqlite:')) return { driver: 'sqlite', path: value.slice('sqlite:'.length) || './switchboard.db' }
  if (/^rediss?:\/\//.test(value)) return { driver: 'redis', url: value }
  throw new ConfigError('--store', 'memory:, sqlite:PATH or redis://HOST:PORT/DB', { got: value })
}

/** Runs the gateway until SIGTERM/SIGINT, then drains in-flight requests and exits. */
export async function serve(config: GatewayConfig): Promise<Gateway> {
  const gateway = await createGateway(config)
  const address = await gateway.listen()
  console.log(
    JSON.stringify({
      time: new Date().toISOString(),
      level: 'info',
      message: `switchboard listening on http://${address.address}:${address.port}`,
      routes: config.routes.length,
      upstreams: Object.keys(config.upstreams).length,
    }),
  )
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    console.log(JSON.stringify({ time: new Date().toISOString(), level: 'info', message: `${signal}: draining`, inFlight: gateway.inFlight }))
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

