import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { JSON_RESPONSE_HEADERS, NoRouteError, toGatewayError } from '@switchboard/core'
import type { AdminConfig } from '../config/types.ts'
import type { GatewayLogger } from '../runtime/runtime.ts'
import { NodeExchange } from '../transport/node-exchange.ts'
import { parseTarget } from '../transport/request-checks.ts'
import { noop } from '../transport/socket.ts'
import { type AdminActions, authorize, handleAdmin, sendMetrics } from './admin.ts'

/** The admin's own listener (`admin.listen`). */
export interface AdminListener {
  readonly server: Server
  listen(host: string, port: number): Promise<AddressInfo>
  close(): Promise<void>
}

/**
 * A second `node:http` server for operators: the dashboard at `/`, the JSON API under
 * `admin.path`, Prometheus text at `/metrics`. Every answer needs the admin token (bearer, or
 * `?token=` on a GET) or, without a token, a loopback client. Strict limits: it is small and
 * never streams.
 */
export function createAdminListener(config: () => AdminConfig, actions: AdminActions, logger: GatewayLogger): AdminListener {
  const server = adminHttpServer(handle, logger)

  async function handle(ex: NodeExchange): Promise<void> {
    const admin = config()
    const path = ex.normalizedPath
    if (path === admin.path || path.startsWith(`${admin.path}/`)) return handleAdmin(ex, path.slice(admin.path.length), admin, actions)
    authorize(ex, admin)
    if (path === '/metrics' && (ex.method === 'GET' || ex.method === 'HEAD')) return sendMetrics(ex, actions)
    if ((ex.method === 'GET' || ex.method === 'HEAD') && (await actions.dashboard(ex, path === '/' ? '' : path))) return
    throw new NoRouteError({ message: 'Unknown admin endpoint' })
  }

  return {
    server,
    listen: (host, port) => listenOn(server, host, port),
    close: () =>
      new Promise((resolve) => {
        if (!server.listening) return resolve()
        server.close(() => resolve())
        server.closeAllConnections?.()
      }),
  }
}

/**
 * The admin listeners' `node:http` server (the gateway's `admin.listen`, and the fleet primary's):
 * small strict limits, a 400 for a target that does not parse, and an error from `handle` turned
 * into its short JSON answer (a 401 with a Bearer challenge), 5xx logged.
 * @example const server = adminHttpServer(async (ex) => ex.respond(200, {}, 'ok'), console.log)
 */
export function adminHttpServer(handle: (ex: NodeExchange) => Promise<void>, logger: GatewayLogger): Server {
  const server = createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 }, (req, res) => {
    req.on('error', noop)
    res.on('error', noop)
    const parsed = parseTarget(req.url ?? '/')
    if (typeof parsed === 'string') {
      res.writeHead(400, { ...JSON_RESPONSE_HEADERS, connection: 'close' })
      res.end(JSON.stringify({ error: { code: 'ERR_BAD_REQUEST', message: parsed } }))
      return
    }
    const ex = new NodeExchange(req, res, parsed.target, parsed.path, parsed.query, parsed.normalized, req.socket.remoteAddress ?? '', false)
    handle(ex).catch(async (error: unknown) => {
      const err = toGatewayError(error)
      if (err.status >= 500) logger('error', 'admin request failed', { error: String((error as Error)?.stack ?? error) })
      if (ex.responded) return void res.destroy()
      const headers: Record<string, string> = { ...JSON_RESPONSE_HEADERS }
      if (err.status === 401) headers['www-authenticate'] = 'Bearer realm="admin"'
      await ex.respond(err.status, headers, err.toBody()).catch(noop)
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  server.on('connection', (socket) => socket.on('error', noop))
  return server
}

/**
 * Starts `server` listening; resolves with its address, rejects with the listen error (a busy port).
 * @example const address = await listenOn(adminHttpServer(async (ex) => ex.respond(204), console.log), '127.0.0.1', 0)
 */
export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server.address() as AddressInfo)
    })
  })
}
