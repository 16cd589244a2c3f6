import { parseArgs } from 'node:util'
import { ConfigError } from '@switchboard/core'
import { runDemo } from './demo.ts'
import { legacyToYaml } from '@switchboard/discovery'
import { type ConfigFormat, loadConfigFile, readConfigObject, serve } from './run.ts'

const USAGE = `Usage:
  switchboard --config FILE [options]       run the gateway (PORT in the environment overrides server.port)
  switchboard check --config FILE           validate a config and exit
  switchboard import FILE                   print a SingleEndpointRouter config converted to our YAML
  switchboard demo                          start two demo upstreams and a gateway in front of them

Options:
  -c, --config FILE      YAML or JSON config
      --format FORMAT    auto (default) | switchboard | single-endpoint-router
      --store URL        memory: | sqlite:PATH | redis://HOST:PORT/DB (overrides the config's store:)
      --endpoints URLS   comma-separated extra discovery endpoints (SingleEndpointRouter configs)
      --clear-routes     forget every remembered discovery route before starting
  -h, --help             show this help
`

const FORMATS = ['auto', 'switchboard', 'single-endpoint-router'] as const

async function main(argv: string[]): Promise<void> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'run'
  const rest = command === 'run' ? argv : argv.slice(1)
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      format: { type: 'string' },
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
  if (command === 'import') {
    const file = positionals[0] ?? values.config
    if (!file) throw new UsageError('import needs a FILE')
    const endpoints = values.endpoints?.split(',').filter(Boolean)
    process.stdout.write(legacyToYaml(readConfigObject(file), { file, fallbackEndpoints: endpoints }))
    return
  }
  if (command !== 'run' && command !== 'check') throw new UsageError(`unknown command "${command}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  const format = (values.format ?? 'auto') as ConfigFormat
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`)
  const config = loadConfigFile(values.config, {
    store: values.store,
    port: process.env.PORT,
    format,
    endpoints: values.endpoints?.split(',').filter(Boolean),
  })
  if (command === 'check') {
    console.log(`${values.config}: ok (${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams)`)
    return
  }
  await serve(config, { clearRoutes: values['clear-routes'] })
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
  console.error('switchboard: failed to start:', err)
  process.exit(1)
})
