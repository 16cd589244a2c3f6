import { watch } from 'node:fs'
import { ConfigError } from '@switchboard/core'
import { createGateway, type Gateway, type GatewayConfig, type GatewayRegistry, loadConfigFile, type ConfigOverrides } from '@switchboard/gateway'

/** How `serve` was asked to run. */
export interface ServeOptions {
  /** `--clear-routes`: forget every remembered discovery route before starting. */
  clearRoutes?: boolean
  /** The file the config came from: SIGHUP, `POST /admin/reload` and `--watch` re-read it. */
  file?: string
  /** Overrides re-applied on every reload (PORT, --host, --store, …). */
  overrides?: ConfigOverrides
  /** `--watch`: reload when the config file changes. */
  watch?: boolean
  /** The registry the config's plugins were loaded into. */
  registry?: GatewayRegistry
}

/** Thrown when the listening address cannot be had: one line, no stack. */
export class ListenError extends Error {}

/** Runs the gateway until SIGTERM/SIGINT, then drains in-flight requests and exits. SIGHUP reloads. */
export async function serve(config: GatewayConfig, options: ServeOptions = {}): Promise<Gateway> {
  const file = options.file
  const gateway = await createGateway(config, {
    registry: options.registry,
    source: file ? () => loadConfigFile(file, options.overrides) : undefined,
  })
  if (options.clearRoutes) {
    const n = await gateway.forgetRoutes('')
    log('info', `cleared ${n} remembered routes`)
  }
  let address
  try {
    address = await gateway.listen()
  } catch (err) {
    await gateway.close().catch(() => undefined)
    const code = (err as NodeJS.ErrnoException).code
    const where = `${config.server.host}:${config.server.port}`
    if (code === 'EADDRINUSE') throw new ListenError(`cannot listen on ${where}: the address is in use (choose another with --port, PORT or server.port)`)
    if (code === 'EACCES') throw new ListenError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges; use --port)`)
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ListenError(`cannot listen on ${where}: no such local address (change --host or server.host)`)
    throw err
  }
  log('info', `switchboard listening on http://${address.address}:${address.port}`, {
    routes: config.routes.length,
    upstreams: Object.keys(config.upstreams).length,
    discovery: config.discovery ? config.discovery.endpoints.length : undefined,
    plugins: config.plugins.length || undefined,
  })
  if (config.admin && !config.admin.listen && config.admin.token === undefined) log('info', `admin API at ${config.admin.path} answers loopback clients only (no admin.token set)`)
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
  const reload = (why: string): void => {
    if (!file || stopping) return
    gateway.reload().then(
      (summary) => log('info', `${why}: config reloaded`, { summary: summary.line }),
      (err: unknown) =>
        console.error(
          JSON.stringify({
            time: new Date().toISOString(),
            level: 'error',
            message: `${why}: reload refused, the previous config keeps serving`,
            error: err instanceof ConfigError ? err.message : String((err as Error)?.message ?? err),
          }),
        ),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // Deno has no SIGHUP listener on some platforms; where it throws, reload stays on the admin API.
  try {
    process.on('SIGHUP', () => reload('SIGHUP'))
  } catch {
    log('info', 'SIGHUP is not available on this runtime: reload with POST /admin/reload or --watch')
  }
  if (options.watch && file) {
    let timer: ReturnType<typeof setTimeout> | undefined
    // Editors write in several steps: reload once the file has been quiet for a moment.
    watch(file, () => {
      clearTimeout(timer)
      timer = setTimeout(() => reload('watch'), 150)
    }).on('error', () => undefined)
  }
  return gateway
}

function log(level: 'info', message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }))
}
