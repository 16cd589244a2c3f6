// The primary of a `server.workers` fleet: forks the workers (node:cluster; every worker runs the
// gateway), replaces the ones that die, rolls reloads through them one at a time, serves
// `admin.listen` itself and answers every admin request with the merge of all workers' answers.
import cluster, { type Worker } from 'node:cluster'
import { request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { JSON_RESPONSE_HEADERS, NoRouteError, toGatewayError } from '@switchboard/core'
import { authorize } from '../admin/admin.ts'
import { adminHttpServer, listenOn } from '../admin/listener.ts'
import type { LoadedConfig } from '../config/load.ts'
import type { AdminConfig, GatewayConfig } from '../config/types.ts'
import type { GatewayLogger } from '../runtime/runtime.ts'
import { NodeExchange } from '../transport/node-exchange.ts'
import { mergeAdminJson, mergeExpositions, type WorkerAnswer } from './merge.ts'
import { forwardHeaders, WORKER_ID_ENV } from './worker.ts'

/** An admin request the primary answers for the fleet (from its own listener or a worker's). */
export interface FleetRequest {
  /** `admin`: `path` is below `admin.path`; `metrics`: the Prometheus text; `raw`: a dashboard path of `admin.listen`. */
  readonly scope: 'admin' | 'metrics' | 'raw'
  readonly method: string
  readonly path: string
  /** The query string, without `?`. */
  readonly query: string
  readonly headers: Record<string, string>
  /** The request body, base64. */
  readonly body: string
}

/** The fleet's answer to a {@link FleetRequest}. */
export interface FleetAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  /** The response body, base64. */
  readonly body: string
}

/** Messages a worker sends its primary (IPC). */
export type WorkerMessage =
  | { t: 'ready'; address: string; port: number; adminPort: number }
  | { t: 'admin'; id: number; request: FleetRequest }
  | { t: 'reloaded'; id: number; ok: boolean; summary?: string; error?: string }
  | { t: 'info'; id: number; requests: number; inFlight: number }
  | { t: 'reload-request'; why: string }

/** Messages the primary sends a worker (IPC). */
export type PrimaryMessage = { t: 'answer'; id: number; answer: FleetAnswer } | { t: 'reload'; id: number } | { t: 'info'; id: number } | { t: 'stop' }

/** How {@link startPrimary} runs the fleet. */
export interface PrimaryOptions {
  /** Reads and validates the config again (SIGHUP, `--watch`, `POST /admin/reload`); without it reloads are refused. */
  load?: () => Promise<LoadedConfig>
  /** Log sink. @default JSON lines on stderr for warn/error, stdout for info */
  logger?: GatewayLogger
  /** Called when the fleet gives up (workers keep crashing at start). @default process.exit */
  exit?: (code: number) => void
}

/** One worker as `GET /admin/workers` lists it. */
export interface FleetWorkerInfo {
  readonly id: number
  readonly pid: number | undefined
  readonly state: 'starting' | 'ready' | 'retiring'
  /** When this process started (ISO time). */
  readonly started: string
  /** How many times a worker with this id died and was replaced. */
  readonly restarts: number
  /** Requests this process has served (undefined when it did not answer). */
  readonly requests: number | undefined
  readonly inFlight: number | undefined
  /** The fleet's config version this worker runs: 1 at start, +1 on every reload it took. */
  readonly configVersion: number
}

/** The outcome of a rolling reload. */
export interface RollOutcome {
  readonly ok: boolean
  /** The change summary of the last worker that reloaded. */
  readonly summary?: string
  /** Why the roll stopped. */
  readonly error?: string
  /** Ids of the workers that run the new config. */
  readonly reloaded: number[]
}

/** A running fleet. */
export interface FleetPrimary {
  /** Where the workers listen. */
  readonly address: { address: string; port: number }
  /** Where `admin.listen` listens (in the primary). */
  readonly adminAddress: AddressInfo | undefined
  /** Every worker, for `GET /admin/workers`. */
  workers(): Promise<FleetWorkerInfo[]>
  /** Reloads every worker, one after the other; the first refusal stops the roll. */
  reload(why: string): Promise<RollOutcome>
  /** Drains every worker and resolves with the exit code (0 when every worker exited by itself). */
  stop(why: string): Promise<number>
}

/** The fleet could not start: a worker exited before it was ready. */
export class FleetStartError extends Error {
  /** The exit code the CLI should use (the worker's). */
  readonly exitCode: number
  constructor(message: string, exitCode: number) {
    super(message)
    this.name = 'FleetStartError'
    this.exitCode = exitCode
  }
}

/** A worker that dies before it serves, or sooner than this after it started serving, crashed at start. */
export const QUICK_DEATH_MS = 2_000
/** Crashes at start in a row after which the primary gives up. */
export const MAX_QUICK_DEATHS = 5

/**
 * Forks `config.server.workers` workers (this process must be the cluster primary and run the CLI:
 * every worker re-runs it) and resolves once all of them listen. Dead workers are replaced; five
 * crashes at start in a row stop the fleet with exit code 1.
 * @example
 * const fleet = await startPrimary(config, { load: () => loadConfigFile(file) })
 * process.on('SIGHUP', () => void fleet.reload('SIGHUP'))
 * process.on('SIGTERM', () => fleet.stop('SIGTERM').then((code) => process.exit(code)))
 */
export async function startPrimary(config: GatewayConfig, options: PrimaryOptions = {}): Promise<FleetPrimary> {
  const log = options.logger ?? defaultLogger
  const exit = options.exit ?? ((code: number) => process.exit(code))
  let current = config
  let configVersion = 1
  let stopping: Promise<number> | undefined
  let started = false
  let rolling: Promise<RollOutcome> | undefined
  let nextCall = 1
  const calls = new Map<number, (m: WorkerMessage) => void>()
  const slots: Slot[] = []
  let startFailed: ((err: FleetStartError) => void) | undefined
  let allReady: (() => void) | undefined
  let adminServer: Server | undefined
  let adminAddress: AddressInfo | undefined
  let address = { address: config.server.host, port: config.server.port }

  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
    // Deno's node:cluster forks and shares the port, but its workers neither drain on the primary's
    // stop nor survive the supervision tests reliably (Deno 2.9.6): refuse rather than half-work.
    throw new FleetStartError(`server.workers: ${config.server.workers} is not supported on Deno; set server.workers: 1 (the default), or run the fleet on Node or Bun`, 2)
  }
  warnAboutMemoryStore(config, log)

  const fork = (slot: Slot): void => {
    const worker = cluster.fork({ [WORKER_ID_ENV]: String(slot.id) })
    slot.worker = worker
    slot.pid = worker.process.pid
    slot.started = Date.now()
    slot.ready = false
    slot.version = configVersion
    worker.on('message', (m: WorkerMessage) => onMessage(slot, worker, m))
    worker.on('exit', (code: number | null, signal: string | null) => onExit(slot, worker, code, signal))
    // An IPC write to a dying worker fails: the exit handler deals with the worker.
    worker.on('error', () => undefined)
  }

  const onMessage = (slot: Slot, worker: Worker, m: WorkerMessage): void => {
    if (!m || typeof m !== 'object') return
    if (m.t === 'ready') {
      slot.ready = true
      slot.readyAt = Date.now()
      slot.adminPort = m.adminPort
      address = { address: m.address, port: m.port }
      if (started && !stopping) log('info', `worker ${slot.id} (pid ${slot.pid}) is serving`, {})
      if (!started && slots.every((s) => s.ready)) allReady?.()
    } else if (m.t === 'admin') {
      answer(m.request).then(
        (a) => send(worker, { t: 'answer', id: m.id, answer: a }),
        (err: unknown) => send(worker, { t: 'answer', id: m.id, answer: errorAnswer(err) }),
      )
    } else if (m.t === 'reloaded' || m.t === 'info') {
      calls.get(m.id)?.(m)
      calls.delete(m.id)
    } else if (m.t === 'reload-request') void reload(m.why)
  }

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return
    // Never serving, or serving for less than QUICK_DEATH_MS: a crash at start.
    const quick = !slot.ready || Date.now() - slot.readyAt < QUICK_DEATH_MS
    slot.worker = undefined
    slot.ready = false
    const how = signal ? `signal ${signal}` : `code ${code}`
    if (stopping) return checkAllGone()
    if (slot.retiring) {
      slots.splice(slots.indexOf(slot), 1)
      log('info', `worker ${slot.id} (pid ${slot.pid}) retired`, { exit: how })
      return
    }
    if (!started) {
      startFailed?.(new FleetStartError(`worker ${slot.id} exited with ${how} before it was serving; stopping the other workers`, code || 1))
      return
    }
    slot.quickDeaths = quick ? slot.quickDeaths + 1 : 0
    if (slot.quickDeaths >= MAX_QUICK_DEATHS) {
      log('error', `worker ${slot.id} died within ${QUICK_DEATH_MS / 1000} s of starting, ${MAX_QUICK_DEATHS} times in a row (last: ${how}): stopping every worker`, {})
      void stop('crash loop').then(() => exit(1))
      return
    }
    slot.restarts++
    log('warn', `worker ${slot.id} (pid ${slot.pid}) exited with ${how}: replacing it`, { restarts: slot.restarts })
    // A worker that crashes at start waits a little longer each time before it is forked again.
    setTimeout(() => {
      if (!stopping) fork(slot)
    }, quick ? 100 * slot.quickDeaths : 0)
  }

  let allGone: (() => void) | undefined
  const checkAllGone = (): void => {
    if (slots.every((s) => !s.worker)) allGone?.()
  }

  const call = (slot: Slot, message: { t: 'reload' | 'info' }, timeoutMs: number): Promise<WorkerMessage | undefined> =>
    new Promise((resolve) => {
      const worker = slot.worker
      if (!worker) return resolve(undefined)
      const id = nextCall++
      const timer = setTimeout(() => {
        calls.delete(id)
        resolve(undefined)
      }, timeoutMs)
      calls.set(id, (m) => {
        clearTimeout(timer)
        resolve(m)
      })
      if (!send(worker, { ...message, id })) {
        clearTimeout(timer)
        calls.delete(id)
        resolve(undefined)
      }
    })

  const live = (): Slot[] => slots.filter((s) => s.ready && !s.retiring && s.worker)

  async function roll(why: string): Promise<RollOutcome> {
    if (!options.load) return { ok: false, error: 'no config source to reload from', reloaded: [] }
    let loaded: LoadedConfig
    try {
      loaded = await options.load()
    } catch (err) {
      const error = (err as Error)?.message ?? String(err)
      log('error', `${why}: reload refused, the previous config keeps serving`, { error })
      return { ok: false, error, reloaded: [] }
    }
    const version = configVersion + 1
    const reloaded: number[] = []
    let summary: string | undefined
    const order = live()
    for (const slot of order) {
      const reply = (await call(slot, { t: 'reload' }, 60_000)) as Extract<WorkerMessage, { t: 'reloaded' }> | undefined
      if (!reply?.ok) {
        const error = `worker ${slot.id}: ${reply ? reply.error : 'no answer'}`
        const kept = order.filter((s) => !reloaded.includes(s.id)).map((s) => s.id)
        log('error', `${why}: reload refused by worker ${slot.id}; the roll stops`, { error, reloaded, kept })
        return { ok: false, error, reloaded }
      }
      slot.version = version
      summary = reply.summary
      reloaded.push(slot.id)
    }
    configVersion = version
    // admin.listen stays where it is (a restart moves it), as in a single process.
    current = { ...loaded.config, admin: loaded.config.admin ? { ...loaded.config.admin, listen: current.admin?.listen } : current.admin }
    log('info', `${why}: config reloaded in ${reloaded.length} workers, one after the other`, { summary, configVersion })
    resize(loaded.config.server.workers)
    return { ok: true, summary, reloaded }
  }

  function reload(why: string): Promise<RollOutcome> {
    if (stopping) return Promise.resolve({ ok: false, error: 'the gateway is shutting down', reloaded: [] })
    // One roll at a time: a second caller waits for the first one's outcome.
    rolling ??= roll(why).finally(() => (rolling = undefined))
    return rolling
  }

  function resize(wanted: number): void {
    const serving = slots.filter((s) => !s.retiring)
    const n = Math.max(1, wanted)
    if (n === serving.length) return
    log('info', `server.workers: ${serving.length} → ${n}`, {})
    for (let i = serving.length; i < n; i++) {
      const slot = newSlot(Math.max(0, ...slots.map((s) => s.id)) + 1)
      slots.push(slot)
      fork(slot)
    }
    // The newest workers go first; each drains its connections (server.shutdownTimeout) and exits.
    for (const slot of serving.slice(n).reverse()) {
      slot.retiring = true
      if (slot.worker) send(slot.worker, { t: 'stop' })
      else slots.splice(slots.indexOf(slot), 1)
    }
  }

  function stop(why: string): Promise<number> {
    stopping ??= (async () => {
      log('info', `${why}: draining ${slots.filter((s) => s.worker).length} workers`, {})
      await new Promise<void>((resolve) => {
        adminServer ? adminServer.close(() => resolve()) : resolve()
        adminServer?.closeAllConnections?.()
      })
      const gone = new Promise<void>((resolve) => (allGone = resolve))
      for (const s of slots) if (s.worker) send(s.worker, { t: 'stop' })
      checkAllGone()
      const graceMs = current.server.shutdownTimeoutMs + 5_000
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))])
      clearTimeout(timer)
      if (!late) return 0
      for (const s of slots) if (s.worker) s.worker.process.kill('SIGKILL')
      log('error', `workers did not exit within ${graceMs} ms: killed`, {})
      return 1
    })()
    return stopping
  }

  async function workers(): Promise<FleetWorkerInfo[]> {
    return Promise.all(
      slots.map(async (s) => {
        const info = s.ready ? ((await call(s, { t: 'info' }, 2_000)) as Extract<WorkerMessage, { t: 'info' }> | undefined) : undefined
        return {
          id: s.id,
          pid: s.pid,
          state: s.retiring ? 'retiring' : s.ready ? 'ready' : 'starting',
          started: new Date(s.started).toISOString(),
          restarts: s.restarts,
          requests: info?.requests,
          inFlight: info?.inFlight,
          configVersion: s.version,
        } satisfies FleetWorkerInfo
      }),
    )
  }

  /**
   * The headers of a request to a worker's private admin listener: the client was authorized where
   * it came in, so the primary speaks with the token of the config in force.
   */
  const internal = (headers: Record<string, string>): Record<string, string> => {
    const out: Record<string, string> = {}
    if (headers['content-type']) out['content-type'] = headers['content-type']
    const token = current.admin?.token
    if (token !== undefined) out.authorization = `Bearer ${token}`
    return out
  }

  /** Asks every serving worker's private admin listener, in parallel. */
  async function fanOut(method: string, path: string, query: string, headers: Record<string, string>, body: Buffer): Promise<Array<HttpAnswer & { slot: Slot }>> {
    const answers = await Promise.all(
      live().map((slot) =>
        ask(slot.adminPort!, method, path, query, internal(headers), body).then(
          (a) => ({ ...a, slot }),
          () => undefined,
        ),
      ),
    )
    return answers.filter((a): a is HttpAnswer & { slot: Slot } => a !== undefined)
  }

  async function answer(req: FleetRequest): Promise<FleetAnswer> {
    const body = Buffer.from(req.body, 'base64')
    const adminPath = current.admin?.path ?? '/admin'
    if (req.scope === 'metrics') {
      const answers = (await fanOut('GET', '/metrics', '', req.headers, Buffer.alloc(0))).filter((a) => a.status === 200)
      const restarts = slots.reduce((n, s) => n + s.restarts, 0)
      const own = `# HELP switchboard_workers Worker processes serving (server.workers).\n# TYPE switchboard_workers gauge\nswitchboard_workers ${live().length}\n# HELP switchboard_worker_restarts_total Workers that died and were replaced.\n# TYPE switchboard_worker_restarts_total counter\nswitchboard_worker_restarts_total ${restarts}\n`
      const text = mergeExpositions([...answers.map((a) => a.body.toString('utf8')), own])
      const contentType = answers[0]?.headers['content-type'] ?? 'text/plain; version=0.0.4; charset=utf-8'
      return { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body: Buffer.from(text).toString('base64') }
    }
    if (req.scope === 'raw') return relay(req.method, req.path, req.query, req.headers, body)
    const sub = req.path
    if (req.method === 'GET' && sub === '/workers') return json(200, { workers: await workers(), configVersion, primaryPid: process.pid })
    if (req.method === 'POST' && sub === '/reload') {
      if (!options.load) return json(501, { error: { code: 'ERR_NOT_IMPLEMENTED', message: 'This gateway has no config source to reload from' } })
      const r = await reload('POST /admin/reload')
      return r.ok
        ? json(200, { reloaded: true, summary: r.summary, workers: r.reloaded })
        : json(422, { reloaded: false, error: { code: 'ERR_RELOAD_REFUSED', message: r.error }, workers: r.reloaded })
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (sub === '/dashboard' || sub.startsWith('/dashboard/'))) return relay(req.method, adminPath + sub, req.query, req.headers, body)
    const answers = await fanOut(req.method, adminPath + sub, req.query, req.headers, body)
    if (answers.length === 0) return json(503, { error: { code: 'ERR_NO_WORKER', message: 'No worker is serving right now' } })
    const refused = answers.find((a) => a.status < 200 || a.status >= 300)
    if (refused) return toFleetAnswer(refused)
    const parsed: WorkerAnswer[] = []
    for (const a of answers) {
      try {
        parsed.push({ id: a.slot.id, pid: a.slot.pid ?? 0, body: JSON.parse(a.body.toString('utf8')) as unknown })
      } catch {
        return toFleetAnswer(answers[0])
      }
    }
    return { status: 200, headers: answers[0].headers, body: Buffer.from(JSON.stringify(mergeAdminJson(sub, parsed))).toString('base64') }
  }

  async function relay(method: string, path: string, query: string, headers: Record<string, string>, body: Buffer): Promise<FleetAnswer> {
    const slot = live()[0]
    if (!slot) return json(503, { error: { code: 'ERR_NO_WORKER', message: 'No worker is serving right now' } })
    return toFleetAnswer(await ask(slot.adminPort!, method, path, query, internal(headers), body))
  }

  function listenAdmin(admin: AdminConfig & { listen: { host: string; port: number } }): Promise<AddressInfo> {
    const server = adminHttpServer(serveAdmin, log)
    adminServer = server
    return listenOn(server, admin.listen.host, admin.listen.port)
  }

  async function serveAdmin(ex: NodeExchange): Promise<void> {
    const admin = current.admin ?? config.admin!
    // The client is checked here, where its address is known; workers see the primary's loopback.
    authorize(ex, admin)
    const path = ex.normalizedPath
    const query = stripQuery(ex.request.query)
    const headers = forwardHeaders(ex.request.headers)
    const read = ex.method === 'GET' || ex.method === 'HEAD'
    const body = ex.hasBody ? Buffer.from(await ex.readBody(16 * 1024)).toString('base64') : ''
    let a: FleetAnswer
    if (path === admin.path || path.startsWith(`${admin.path}/`)) a = await answer({ scope: 'admin', method: ex.method, path: path.slice(admin.path.length), query, headers, body })
    else if (path === '/metrics' && read) a = await answer({ scope: 'metrics', method: 'GET', path, query: '', headers, body: '' })
    else if (read) a = await answer({ scope: 'raw', method: ex.method, path, query, headers, body: '' })
    else throw new NoRouteError({ message: 'Unknown admin endpoint' })
    await ex.respond(a.status, a.headers, ex.method === 'HEAD' ? undefined : Buffer.from(a.body, 'base64'))
  }

  // Start: fork, wait until every worker listens (or one exits: then stop the rest and fail).
  for (let i = 1; i <= Math.max(1, config.server.workers); i++) slots.push(newSlot(i))
  try {
    await new Promise<void>((resolve, reject) => {
      allReady = resolve
      startFailed = reject
      for (const s of slots) fork(s)
    })
  } catch (err) {
    started = true
    await stop('start failed')
    throw err
  }
  started = true
  const admin = config.admin
  if (admin?.listen) {
    try {
      adminAddress = await listenAdmin(admin as AdminConfig & { listen: { host: string; port: number } })
    } catch (err) {
      await stop('start failed')
      const code = (err as NodeJS.ErrnoException).code
      throw new FleetStartError(`cannot listen on ${admin.listen.host}:${admin.listen.port} (admin.listen): ${code ?? (err as Error).message}`, 1)
    }
    if (admin.token === undefined) log('warn', `admin listener on ${adminAddress.address}:${adminAddress.port} has no admin.token: it answers loopback clients only`, {})
    else log('info', `admin listener on ${adminAddress.address}:${adminAddress.port}: dashboard at /, JSON under ${admin.path} (every worker's, merged), Prometheus at /metrics`, {})
  }

  return {
    get address() {
      return address
    },
    get adminAddress() {
      return adminAddress
    },
    workers,
    reload,
    stop,
  }
}

interface Slot {
  readonly id: number
  worker: Worker | undefined
  pid: number | undefined
  started: number
  ready: boolean
  readyAt: number
  adminPort: number | undefined
  restarts: number
  quickDeaths: number
  retiring: boolean
  version: number
}

function newSlot(id: number): Slot {
  return { id, worker: undefined, pid: undefined, started: Date.now(), ready: false, readyAt: 0, adminPort: undefined, restarts: 0, quickDeaths: 0, retiring: false, version: 1 }
}

interface HttpAnswer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Sends `m` to a worker; false when its channel is closed. */
function send(worker: Worker, m: PrimaryMessage): boolean {
  try {
    if (!worker.isConnected()) return false
    worker.send(m)
    return true
  } catch {
    return false
  }
}

/** One request to a worker's private admin listener. */
function ask(port: number, method: string, path: string, query: string, headers: Record<string, string>, body: Buffer): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path: query ? `${path}?${query}` : path, headers: { ...headers, 'content-length': String(body.byteLength), connection: 'close' }, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const out: Record<string, string> = {}
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('worker admin timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date'])

function toFleetAnswer(a: HttpAnswer): FleetAnswer {
  return { status: a.status, headers: a.headers, body: a.body.toString('base64') }
}

function json(status: number, body: unknown): FleetAnswer {
  return { status, headers: { ...JSON_RESPONSE_HEADERS }, body: Buffer.from(JSON.stringify(body)).toString('base64') }
}

function errorAnswer(err: unknown): FleetAnswer {
  const e = toGatewayError(err)
  return { status: e.status, headers: { ...JSON_RESPONSE_HEADERS }, body: Buffer.from(e.toBody()).toString('base64') }
}

function stripQuery(q: string): string {
  return q.startsWith('?') ? q.slice(1) : q
}

const STATEFUL_POLICY = /rate-limit|quota|budget|concurrency/

/** Memory stores live in each worker: say so when something counts in them. */
function warnAboutMemoryStore(config: GatewayConfig, log: GatewayLogger): void {
  if (config.store.driver !== 'memory') return
  const limits = Object.values(config.policies)
    .filter((p) => STATEFUL_POLICY.test(p.use))
    .map((p) => p.name)
  const caches = config.routes.filter((r) => r.cache).map((r) => r.name)
  if (limits.length === 0 && caches.length === 0) return
  const n = config.server.workers
  log('warn', `server.workers: ${n} with store: memory: each worker keeps its own counters and cache, so rate limits and budgets allow up to ${n}× their limit and caches fill ${n} times; use store: { driver: redis, url: … } to share them`, { policies: limits.length ? limits : undefined, cachedRoutes: caches.length ? caches : undefined })
}

function defaultLogger(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })
  if (level === 'info') console.log(line)
  else console.error(line)
}
