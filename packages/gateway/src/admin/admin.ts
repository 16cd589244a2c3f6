import type { IncomingMessage, ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { ForbiddenError, GatewayError, NoRouteError, PayloadTooLargeError, UnauthorizedError } from '@switchboard/core'
import type { AdminConfig } from './config.ts'

/** What the admin API can see and do. */
export interface AdminActions {
  upstreams(): Record<string, unknown>
  cache(): Record<string, number>
  purgeCache(prefix: string): Promise<number>
  /** Forgets remembered routes (discovery); undefined when discovery is not configured. */
  forgetRoutes?: (prefix: string) => Promise<number>
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
const MAX_ADMIN_BODY = 16 * 1024

/**
 * Serves `/admin/*` (or the configured prefix): JSON only, bearer token or loopback-only.
 * Routes: `GET upstreams`, `GET cache`, `POST cache/purge {prefix}`, `POST routes/forget {prefix}`.
 */
export async function handleAdmin(
  req: IncomingMessage,
  res: ServerResponse,
  sub: string,
  config: AdminConfig,
  actions: AdminActions,
): Promise<void> {
  try {
    authorize(req, config)
    const method = req.method ?? 'GET'
    if (method === 'GET' && sub === '/upstreams') return send(res, 200, { upstreams: actions.upstreams() })
    if (method === 'GET' && sub === '/cache') return send(res, 200, { cache: actions.cache() })
    if (method === 'POST' && sub === '/cache/purge') {
      const prefix = await readPrefix(req)
      return send(res, 200, { purged: await actions.purgeCache(prefix) })
    }
    if (method === 'POST' && sub === '/routes/forget' && actions.forgetRoutes) {
      const prefix = await readPrefix(req)
      return send(res, 200, { forgotten: await actions.forgetRoutes(prefix) })
    }
    throw new NoRouteError({ message: 'Unknown admin endpoint' })
  } catch (err) {
    const e = err instanceof GatewayError ? err : new GatewayError(500, 'ERR_INTERNAL', 'Internal error', { cause: err })
    send(res, e.status, e.toJSON())
  }
}

function authorize(req: IncomingMessage, config: AdminConfig): void {
  if (config.token === undefined) {
    // Without a token only the machine itself may call the admin API.
    const ip = req.socket.remoteAddress ?? ''
    if (ip !== '127.0.0.1' && ip !== '::1' && ip !== '::ffff:127.0.0.1') {
      throw new ForbiddenError({ message: 'Admin API is loopback-only without admin.token' })
    }
    return
  }
  const header = req.headers.authorization ?? ''
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '')
  const expected = Buffer.from(config.token)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new UnauthorizedError()
}

async function readPrefix(req: IncomingMessage): Promise<string> {
  const q = req.url?.indexOf('?') ?? -1
  const fromQuery = q === -1 ? null : new URLSearchParams(req.url!.slice(q)).get('prefix')
  let total = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > MAX_ADMIN_BODY) throw new PayloadTooLargeError()
    chunks.push(chunk)
  }
  if (fromQuery !== null) return fromQuery
  if (total === 0) return ''
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { prefix?: unknown }
    return typeof body.prefix === 'string' ? body.prefix : ''
  } catch {
    throw new GatewayError(400, 'ERR_BAD_REQUEST', 'Expected a JSON body like {"prefix": "..."}')
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
