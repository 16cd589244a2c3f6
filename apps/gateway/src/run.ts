import { watch } from 'node:fs'
import { ConfigError } from '@switchboard/core'
import {
  createGateway,
  type Gateway,
  type GatewayConfig,
  type GatewayRegistry,
  isFleetWorker,
  joinFleet,
  loadConfigFile,
  startPrimary,
  type ConfigOverrides,
  type FleetPrimary,
  type WorkerLink,
} from '@switchboard/gateway'

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
  /** Set in a worker of a `server.workers` fleet: its link to the primary. */
  worker?: WorkerLink
}

/**
 * Runs the config: one gateway in this process, or with `server.workers` above 1 a primary that
 * forks that many workers (each one re-runs the CLI and lands in `serve` with its `worker` link).
 */
export async function start(config: GatewayConfig, options: ServeOptions = {}): Promise<void> {
  if (isFleetWorker()) await serve(config, { ...options, worker: joinFleet() })
  else if (config.server.workers > 1) await servePrimary(config, options)
  else await serve(config, options)
}

/** Thrown when the listening address cannot be had: one line, no stack. */
export class ListenError extends Error {}

/** Runs the gateway until SIGTERM/SIGINT, then drains in-flight requests and exits. SIGHUP reloads. */
export async function serve(config: GatewayConfig, options: ServeOptions = {}): Promise<Gateway> {
  const file = options.file
  const worker = options.worker
  const log = worker ? (level: 'info', message: string, fields: Record<string, unknown> = {}) => worker.logger()(level, message, fields) : logLine
  const gateway = await createGateway(config, {
    registry: options.registry,
    source: file ? () => loadConfigFile(file, options.overrides) : undefined,
    logger: worker?.logger(),
    fleet: worker?.fleet,
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
  if (worker) {
    // The primary says "listening" once every worker is up.
    log('info', `worker ${worker.id} serving on http://${address.address}:${address.port}`, { pid: process.pid })
    worker.ready(address, () => ({ requests: gateway.observer.totals().requests, inFlight: gateway.inFlight }))
  } else log('info', `switchboard listening on http://${address.address}:${address.port}`, {
    routes: config.routes.length,
    upstreams: Object.keys(config.upstreams).length,
    discovery: config.discovery ? config.discovery.endpoints.length : undefined,
    plugins: config.plugins.length || undefined,
  })
  if (!worker && config.admin && !config.admin.listen && config.admin.token === undefined) log('info', `admin API at ${config.admin.path} answers loopback clients only (no admin.token set)`)
  let stopping = false
  const stop = (signal: string): void => {
    // A fleet worker hears a terminal's Ctrl-C and the primary's stop: one drain is enough.
    if (stopping && worker) return
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
  if (worker) {
    // Reloads roll through the fleet from the primary: a SIGHUP sent to one worker asks for one.
    worker.onStop((why) => stop(why))
    worker.onReload(async () => (await gateway.reload()).line)
    try {
      process.on('SIGHUP', () => worker.requestReload('SIGHUP'))
    } catch {
      // no SIGHUP on this runtime: the primary's SIGHUP or POST /admin/reload still roll
    }
    return gateway
  }
  onReloadRequests(reload, options.watch ? file : undefined, (message) => log('info', message))
  return gateway
}

/**
 * Runs the primary of a `server.workers` fleet until SIGTERM/SIGINT (every worker drains, then exit
 * 0). SIGHUP, `--watch` and `POST /admin/reload` roll the reload through the workers.
 */
export async function servePrimary(config: GatewayConfig, options: ServeOptions = {}): Promise<FleetPrimary> {
  const file = options.file
  const fleet = await startPrimary(config, { load: file ? () => loadConfigFile(file, options.overrides) : undefined })
  const { address, port } = fleet.address
  logLine('info', `switchboard listening on http://${address}:${port}`, {
    workers: config.server.workers,
    routes: config.routes.length,
    upstreams: Object.keys(config.upstreams).length,
  })
  if (config.admin && !config.admin.listen && config.admin.token === undefined) logLine('info', `admin API at ${config.admin.path} answers loopback clients only (no admin.token set)`)
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    fleet.stop(signal).then((code) => process.exit(code))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  const reload = (why: string): void => {
    if (file && !stopping) void fleet.reload(why)
  }
  onReloadRequests(reload, options.watch ? file : undefined, (message) => logLine('info', message))
  return fleet
}

/** SIGHUP, and with `--watch` changes to `file`, call `reload` (a single gateway's or the fleet's). */
function onReloadRequests(reload: (why: string) => void, file: string | undefined, info: (message: string) => void): void {
  // Deno has no SIGHUP listener on some platforms; where it throws, reload stays on the admin API.
  try {
    process.on('SIGHUP', () => reload('SIGHUP'))
  } catch {
    info('SIGHUP is not available on this runtime: reload with POST /admin/reload or --watch')
  }
  if (file) {
    let timer: ReturnType<typeof setTimeout> | undefined
    // Editors write in several steps: reload once the file has been quiet for a moment.
    watch(file, () => {
      clearTimeout(timer)
      timer = setTimeout(() => reload('watch'), 150)
    }).on('error', () => undefined)
  }
}

function logLine(level: 'info', message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }))
}
