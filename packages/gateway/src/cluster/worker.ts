// The worker side of a `server.workers` fleet: its IPC link to the primary, its private loopback
// admin listener (the primary asks every worker there and merges), and the fleet hook that makes
// the admin API of the main listener answer for the whole fleet.
import cluster from 'node:cluster'
import type { AddressInfo } from 'node:net'
import { type AdminActions, authorize, handleAdmin } from '../admin/admin.ts'
import { type AdminListener, createAdminListener } from '../admin/listener.ts'
import type { AdminConfig } from '../config/types.ts'
import type { GatewayLogger } from '../runtime/runtime.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'
import type { FleetAnswer, FleetRequest, PrimaryMessage, WorkerMessage } from './primary.ts'

/** The environment variable that tells a forked process which worker it is. */
export const WORKER_ID_ENV = 'SWITCHBOARD_WORKER_ID'

/**
 * How a fleet worker serves the admin API (`GatewayOptions.fleet`): its admin actions are served on
 * a private loopback port for the primary, and admin requests of the main listener are answered
 * with the fleet's merged answer.
 * @example
 * const link = joinFleet()
 * const gw = await createGateway(config, { fleet: link.fleet, logger: link.logger() })
 */
export interface FleetAdmin {
  /** Called once by `createGateway` with the gateway's admin actions. */
  attach(actions: AdminActions, config: () => AdminConfig | undefined): Promise<void>
  /** Answers an admin request of the main listener (`sub` below `admin.path`) for the fleet. */
  admin(ex: NodeExchange, sub: string, config: AdminConfig, actions: AdminActions): Promise<void>
  /** Answers `metrics.path` of the main listener with the fleet's merged exposition. */
  metrics(ex: NodeExchange): Promise<void>
}

/** What a worker process needs to take part in a fleet. */
export interface WorkerLink {
  /** This worker's id (1…N; a replacement keeps the id of the worker it replaces). */
  readonly id: number
  /** The hook for `createGateway({ fleet })`. */
  readonly fleet: FleetAdmin
  /** A logger whose every line carries `worker: <id>`. */
  logger(): GatewayLogger
  /** Tells the primary this worker listens; `requests()` is polled for `GET /admin/workers`. */
  ready(address: AddressInfo, stats: () => { requests: number; inFlight: number }): void
  /** Runs `fn` when the primary asks for a reload (one step of a rolling reload). */
  onReload(fn: () => Promise<string>): void
  /** Runs `fn` when the primary asks this worker to drain and exit (or when the primary is gone). */
  onStop(fn: (why: string) => void): void
  /** Asks the primary for a rolling reload of every worker (SIGHUP sent to this worker). */
  requestReload(why: string): void
}

/**
 * True in a process the primary forked as a fleet worker.
 * @example const link = isFleetWorker() ? joinFleet() : undefined
 */
export function isFleetWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ID_ENV] !== undefined
}

/**
 * Connects this worker to its primary (IPC). Call once, in a process {@link isFleetWorker} says is one.
 * @example
 * const link = joinFleet()
 * const gw = await createGateway(config, { fleet: link.fleet, logger: link.logger() })
 * link.ready(await gw.listen(), () => ({ requests: gw.observer.totals().requests, inFlight: gw.inFlight }))
 */
export function joinFleet(): WorkerLink {
  const id = Number(process.env[WORKER_ID_ENV])
  const pending = new Map<number, (answer: FleetAnswer) => void>()
  let nextId = 1
  let reloadFn: (() => Promise<string>) | undefined
  let stopFn: ((why: string) => void) | undefined
  let stats: (() => { requests: number; inFlight: number }) | undefined
  let adminListener: AdminListener | undefined
  let adminPort: number | undefined
  const send = (m: WorkerMessage): void => {
    if (process.connected) process.send?.(m)
  }
  const logger: GatewayLogger = (level, message, fields) => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, message, worker: id, ...fields })
    if (level === 'info') console.log(line)
    else console.error(line)
  }

  process.on('message', (raw: unknown) => {
    const m = raw as PrimaryMessage
    if (!m || typeof m !== 'object') return
    if (m.t === 'answer') {
      pending.get(m.id)?.(m.answer)
      pending.delete(m.id)
    } else if (m.t === 'reload') {
      const run = reloadFn ? reloadFn() : Promise.reject(new Error('this worker has no config source to reload from'))
      run.then(
        (summary) => send({ t: 'reloaded', id: m.id, ok: true, summary }),
        (err: unknown) => send({ t: 'reloaded', id: m.id, ok: false, error: (err as Error)?.message ?? String(err) }),
      )
    } else if (m.t === 'info') {
      const s = stats?.() ?? { requests: 0, inFlight: 0 }
      send({ t: 'info', id: m.id, requests: s.requests, inFlight: s.inFlight })
    } else if (m.t === 'stop') {
      stopFn?.('primary: stop')
    }
  })
  // The primary is gone (killed): a worker does not outlive it.
  process.on('disconnect', () => stopFn?.('primary gone'))

  const ask = (request: FleetRequest): Promise<FleetAnswer> =>
    new Promise((resolve) => {
      const rid = nextId++
      const timer = setTimeout(() => {
        pending.delete(rid)
        resolve({ status: 504, headers: { 'content-type': 'application/json' }, body: b64(JSON.stringify({ error: { code: 'ERR_FLEET_TIMEOUT', message: 'The primary did not answer in time' } })) })
      }, 30_000)
      pending.set(rid, (answer) => {
        clearTimeout(timer)
        resolve(answer)
      })
      send({ t: 'admin', id: rid, request })
    })

  const respond = async (ex: NodeExchange, answer: FleetAnswer): Promise<void> => {
    const body = Buffer.from(answer.body, 'base64')
    await ex.respond(answer.status, answer.headers, ex.method === 'HEAD' ? undefined : body)
  }

  const fleet: FleetAdmin = {
    async attach(actions, config) {
      if (adminListener) return
      // Without an admin section the primary never asks; the fallback keeps the listener loopback-only.
      adminListener = createAdminListener(() => config() ?? FALLBACK_ADMIN, actions, logger)
      const server = adminListener.server
      adminPort = await new Promise<number>((resolve, reject) => {
        server.once('error', reject)
        // exclusive: in a cluster worker port 0 would otherwise be one port shared by every worker.
        server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
          server.off('error', reject)
          resolve((server.address() as AddressInfo).port)
        })
      })
      server.unref()
    },
    async admin(ex, sub, config, actions) {
      authorize(ex, config)
      // The dashboard's page and assets are the same in every worker: this one serves them.
      if ((ex.method === 'GET' || ex.method === 'HEAD') && (sub === '/dashboard' || sub.startsWith('/dashboard/'))) return handleAdmin(ex, sub, config, actions)
      const body = ex.hasBody ? await ex.readBody(MAX_ADMIN_BODY) : new Uint8Array(0)
      const answer = await ask({ scope: 'admin', method: ex.method, path: sub, query: ex.request.query, headers: forwardHeaders(ex.request.headers), body: Buffer.from(body).toString('base64') })
      await respond(ex, answer)
    },
    async metrics(ex) {
      await respond(ex, await ask({ scope: 'metrics', method: 'GET', path: '/metrics', query: '', headers: {}, body: '' }))
    },
  }

  return {
    id,
    fleet,
    logger: () => logger,
    ready(address, s) {
      stats = s
      send({ t: 'ready', address: address.address, port: address.port, adminPort: adminPort ?? 0 })
    },
    onReload(fn) {
      reloadFn = fn
    },
    onStop(fn) {
      stopFn = fn
    },
    requestReload(why) {
      send({ t: 'reload-request', why })
    },
  }
}

const MAX_ADMIN_BODY = 16 * 1024
const FALLBACK_ADMIN: AdminConfig = { path: '/admin', token: undefined, listen: undefined }
/** The request headers an admin answer depends on (credentials, body type). */
const FORWARDED = ['authorization', 'cookie', 'content-type']

/** The request headers the primary passes on to every worker's admin listener. */
export function forwardHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of FORWARDED) {
    const v = headers[k]
    if (typeof v === 'string') out[k] = v
  }
  return out
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64')
}
