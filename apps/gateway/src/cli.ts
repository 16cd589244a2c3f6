import { parseArgs } from 'node:util'
import { ConfigError } from '@switchboard/core'
import { legacyToYaml } from '@switchboard/discovery'
import { type ConfigFormat, type ConfigOverrides, FleetStartError, isSeed004Config, loadConfigFile, readConfigObject, seed004ToYaml } from '@switchboard/gateway'
import { runDemo } from './demo.ts'
import { ListenError, start } from './run.ts'

const USAGE = `Usage:
  switchboard --config FILE [options]       run the gateway (PORT in the environment overrides server.port)
  switchboard check --config FILE           validate a config (plugins loaded) and exit: 0 good, 2 bad
  switchboard import FILE                   print a SingleEndpointRouter or python-api-router config as our YAML
  switchboard demo                          start two demo upstreams and a gateway in front of them

Options:
  -c, --config FILE      YAML or JSON config
      --host HOST        listen address (overrides server.host)
  -p, --port PORT        listen port (overrides server.port and PORT)
  -w, --watch            reload when the config file changes (SIGHUP and POST /admin/reload always do)
      --env-file PATH    read \${NAME} variables from PATH (default: the .env beside the config,
                         if any); variables already set in the environment win (Bun itself
                         loads ./.env into the environment unless run with bun --no-env-file)
      --format FORMAT    auto (default) | switchboard | single-endpoint-router | api-router
      --store URL        memory: | sqlite:PATH | redis://HOST:PORT/DB (overrides the config's store:)
      --endpoints URLS   comma-separated extra discovery endpoints (SingleEndpointRouter configs)
      --clear-routes     forget every remembered discovery route before starting
  -h, --help             show this help
`

const FORMATS = ['auto', 'switchboard', 'single-endpoint-router', 'api-router'] as const

async function main(argv: string[]): Promise<void> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'run'
  const rest = command === 'run' ? argv : argv.slice(1)
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
      watch: { type: 'boolean', short: 'w' },
      format: { type: 'string' },
      'env-file': { type: 'string' },
      store: { type: 'string' },
      endpoints: { type: 'string' },
      'clear-routes': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: command === 'import',
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (command === 'demo') {
    await runDemo()
    return
  }
  const format = (values.format ?? 'auto') as ConfigFormat
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`)
  if (command === 'import') {
    const file = positionals[0] ?? values.config
    if (!file) throw new UsageError('import needs a FILE')
    if (format === 'switchboard') throw new UsageError('import converts single-endpoint-router or api-router configs; a switchboard config needs no import')
    const raw = readConfigObject(file)
    // Seed 004 when asked or recognised; anything else goes to the SingleEndpointRouter importer,
    // which names what it expected.
    if (format === 'api-router' || (format === 'auto' && isSeed004Config(raw))) {
      process.stdout.write(seed004ToYaml(raw, { file }))
      return
    }
    const endpoints = values.endpoints?.split(',').filter(Boolean)
    process.stdout.write(legacyToYaml(raw, { file, fallbackEndpoints: endpoints }))
    return
  }
  if (command !== 'run' && command !== 'check') throw new UsageError(`unknown command "${command}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  const overrides: ConfigOverrides = {
    store: values.store,
    port: values.port ?? process.env.PORT,
    host: values.host,
    format,
    endpoints: values.endpoints?.split(',').filter(Boolean),
    envFile: values['env-file'],
  }
  const { config, registry } = await loadConfigFile(values.config, overrides)
  if (command === 'check') {
    const plugins = config.plugins.length ? `, ${config.plugins.length} plugins` : ''
    console.log(`${values.config}: ok (${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams${plugins})`)
    return
  }
  await start(config, { clearRoutes: values['clear-routes'], file: values.config, overrides, watch: values.watch, registry })
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`switchboard: invalid config: ${err.message}`)
    process.exit(2)
  }
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`switchboard: ${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if ((err as Error)?.name === 'StoreOpenError') {
    console.error(`switchboard: ${(err as Error).message}`)
    process.exit(2)
  }
  if (err instanceof FleetStartError) {
    console.error(`switchboard: ${err.message}`)
    process.exit(err.exitCode)
  }
  if (err instanceof ListenError) {
    console.error(`switchboard: ${err.message}`)
    process.exit(1)
  }
  // Anything else that stops the start is a bug or an environment problem: one line, the stack in
  // SWITCHBOARD_DEBUG=1 only.
  const message = (err as Error)?.message ?? String(err)
  console.error(`switchboard: failed to start: ${message.split('\n')[0]}`)
  if (process.env.SWITCHBOARD_DEBUG) console.error(err)
  process.exit(1)
})
