import type { IncomingMessage, ServerResponse } from 'node:http'
import { forward, type ForwardOptions, type ForwardResult } from './forward.ts'
import { mapUpstreamError } from './errors.ts'
import { sharedPool, splitTarget } from './pools.ts'
import type { UpstreamPoolOptions } from './upstream-pool.ts'

/**
 * Options of {@link proxyPass}: those of `forward()` without `pool`, plus pool settings.
 * @example proxyPass(req, res, 'http://127.0.0.1:3000', { pool: { connections: 32 }, proto: 'https' })
 */
export interface ProxyPassOptions extends Omit<ForwardOptions, 'pool'> {
  /**
   * Settings for the shared pool of the target's origin; used when that pool is first created.
   * @default {}
   */
  pool?: UpstreamPoolOptions
}

/**
 * Proxies one request from your own `node:http` server to `target`, keeping a keep-alive pool per
 * origin. A path in `target` is prefixed to `req.url` (`http://h/api` + `/users` → `/api/users`).
 * Upstream failures before the response head are answered with the error's status and a short
 * JSON body (`{"error":{"code":"ERR_BAD_GATEWAY",…}}`).
 * @example
 * http.createServer((req, res) => proxyPass(req, res, 'http://127.0.0.1:3000')).listen(8080)
 */
export async function proxyPass(
  req: IncomingMessage,
  res: ServerResponse,
  target: string | URL,
  options: ProxyPassOptions = {},
): Promise<ForwardResult> {
  const { origin, prefix } = splitTarget(target)
  const forwardOptions: ForwardOptions = { ...options, pool: sharedPool(origin, options.pool) }
  if (prefix !== '' || options.target === undefined) forwardOptions.target = prefix + (options.target ?? req.url ?? '/')
  try {
    return await forward(req, res, forwardOptions)
  } catch (error) {
    const gatewayError = mapUpstreamError(error)
    if (!res.headersSent && !res.destroyed) {
      const body = gatewayError.toBody()
      res.writeHead(gatewayError.status, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      })
      res.end(body)
    }
    return { status: res.headersSent ? gatewayError.status : 0, bytesSent: 0, aborted: false }
  }
}
