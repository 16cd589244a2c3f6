import { afterEach } from 'vitest'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { createGateway, type Gateway, type GatewayOptions, parseConfig } from '../src/index.ts'

/** A real upstream on 127.0.0.1 that records what it received. */
export interface TestUpstream {
  readonly url: string
  readonly port: number
  readonly server: Server
  /** Requests seen: method, url, headers, and the body when `recordBodies` was set. */
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[]; body?: Buffer }>
  /** TCP connections accepted so far. */
  connections: number
  close(): Promise<void>
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void

/** Starts an upstream; the default handler answers 200 with a JSON description of the request. */
export async function startUpstream(
  handler?: UpstreamHandler,
  options: { recordBodies?: boolean; name?: string } = {},
): Promise<TestUpstream> {
  const requests: TestUpstream['requests'] = []
  const sockets = new Set<Socket>()
  const state = { connections: 0 }
  const server = createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders } as TestUpstream['requests'][number]
    requests.push(entry)
    if (options.recordBodies) {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        entry.body = Buffer.concat(chunks)
        ;(handler ?? defaultHandler(options.name))(req, res)
      })
      return
    }
    ;(handler ?? defaultHandler(options.name))(req, res)
  })
  server.on('connection', (s) => {
    state.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    get connections() {
      return state.connections
    },
    set connections(v) {
      state.connections = v
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

function defaultHandler(name = 'upstream'): UpstreamHandler {
  return (req, res) => {
    const body = JSON.stringify({ upstream: name, method: req.method, url: req.url })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
}

/** A gateway listening on an ephemeral port. */
export interface TestGateway {
  readonly gateway: Gateway
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Builds a config from a plain object (validated like YAML), starts the gateway on port 0. */
export async function startGateway(raw: Record<string, unknown>, options: GatewayOptions = {}): Promise<TestGateway> {
  // SWITCHBOARD_TRANSPORT=node|native runs the suites on that transport (unless a test sets its own).
  const transport = process.env.SWITCHBOARD_TRANSPORT
  const server = raw.server as Record<string, unknown> | undefined
  if (transport && server?.transport === undefined) raw = { ...raw, server: { ...server, transport } }
  const config = parseConfig(raw, { registry: options.registry })
  const gateway = await createGateway(config, { logger: () => {}, ...options })
  const address = await gateway.listen(0, '127.0.0.1')
  return {
    gateway,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () => gateway.close(),
  }
}

/** A config with one upstream `backend` of the given targets and one catch-all route. */
export function simpleConfig(targets: string[], extra: { upstream?: Record<string, unknown>; server?: Record<string, unknown>; route?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    server: { shutdownTimeout: '2s', ...extra.server },
    upstreams: { backend: { balancer: 'round-robin', targets: targets.map((url) => ({ url })), ...extra.upstream } },
    routes: [{ name: 'all', match: { path: '/*' }, upstream: 'backend', ...extra.route }],
  }
}

/**
 * Sends raw bytes on a fresh TCP connection and resolves with everything received until the
 * server closes the connection or `idleMs` of silence passes.
 */
export function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: { idleMs?: number; gapMs?: number } = {},
): Promise<{ text: string; closed: boolean }> {
  const idleMs = options.idleMs ?? 1500
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    let closed = false
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed })
    }
    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(finish, idleMs)
    }
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      arm()
    })
    socket.on('end', () => {
      closed = true
      finish()
    })
    socket.on('close', () => {
      closed = true
      finish()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        closed = true
        finish()
      } else reject(err)
    })
    socket.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data]
      for (const part of parts) {
        if (socket.destroyed) break
        socket.write(part)
        if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs))
      }
      arm()
    })
  })
}

/** Status code of the first response in a raw HTTP reply. */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
  return m ? Number(m[1]) : 0
}

/** Body of the first response in a raw reply (content-length framed). */
export function bodyOf(text: string): string {
  const i = text.indexOf('\r\n\r\n')
  return i === -1 ? '' : text.slice(i + 4)
}

/**
 * Per-test fixtures that close themselves: upstreams and gateways started through these are
 * closed after each test (in reverse order), and `cleanup` takes anything else to undo.
 */
export function useFixtures(): {
  cleanup: Array<() => Promise<unknown>>
  upstream: (...args: Parameters<typeof startUpstream>) => Promise<TestUpstream>
  gateway: (...args: Parameters<typeof startGateway>) => Promise<TestGateway>
} {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!()
  })
  return {
    cleanup,
    async upstream(...args) {
      const u = await startUpstream(...args)
      cleanup.push(() => u.close())
      return u
    },
    async gateway(...args) {
      const g = await startGateway(...args)
      cleanup.push(() => g.close())
      return g
    },
  }
}
