import { parseArgs } from 'node:util'
import { ConfigError } from '@switchboard/core'
import { runDemo } from './demo.ts'
import { loadConfigFile, serve } from './run.ts'

const USAGE = `Usage:
  switchboard --config FILE [--store URL]    run the gateway (PORT in the environment overrides server.port)
  switchboard check --config FILE            validate a config and exit
  switchboard demo                           start two demo upstreams and a gateway in front of them

Options:
  -c, --config FILE   YAML or JSON config
      --store URL     memory: | sqlite:PATH | redis://HOST:PORT/DB (overrides the config's store:)
  -h, --help          show this help
`

async function main(argv: string[]): Promise<void> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'run'
  const rest = command === 'run' ? argv : argv.slice(1)
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      store: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
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
  if (command !== 'run' && command !== 'check') throw new UsageError(`unknown command "${command}"`)
  if (!values.config) throw new UsageError('--config FILE is required')
  const config = loadConfigFile(values.config, { store: values.store, port: process.env.PORT })
  if (command === 'check') {
    console.log(`${values.config}: ok (${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams)`)
    return
  }
  await serve(config)
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
