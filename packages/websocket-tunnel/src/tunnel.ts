import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { BadGatewayError, BadRequestError, NoRouteError } from '@switchboard/core'
import { DEFAULT_VIA, buildUpstreamHeaders, isWebSocketUpgrade, joinPath, parseTarget, writeErrorResponse } from './handshake.ts'
import { relayTransparent } from './transparent.ts'
import { relayFrames } from './frame.ts'
import { groupJoiner } from './group.ts'
import type { TunnelOptions, TunnelResult } from './types.ts'

/**
 * Default for {@link TunnelOptions.connectTimeoutMs}.
 * @example tunnelUpgrade(req, socket, head, { target, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS * 2 })
 */
export const DEFAULT_CONNECT_TIMEOUT_MS: number = 2_000
/**
 * Default for {@link TunnelOptions.handshakeTimeoutMs}.
 * @example tunnelUpgrade(req, socket, head, { target, handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS / 2 })
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS: number = 10_000
/**
 * Default for {@link TunnelOptions.maxMessageBytes} in frame mode: 1 MiB.
 * @example tunnelUpgrade(req, socket, head, { target, idleTimeoutMs: 60_000, maxMessageBytes: 8 * DEFAULT_MAX_MESSAGE_BYTES })
 */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 1024 * 1024

/**
 * Relays one WebSocket upgrade to one endpoint until both sides are closed. Call it from a
 * `node:http` server's `upgrade` event once the route and endpoint are known. Transparent (byte
 * relay) by default; frame-aware when `maxMessageBytes`, `pingIntervalMs` or `idleTimeoutMs` is set.
 * Resolves once the handshake is settled; `result.closed` settles when both sides are closed.
 * Never rejects for network failures: the client gets a 502/504 JSON and `outcome` is `failed`.
 * @example
 * server.on('upgrade', (req, socket, head) => {
 *   void tunnelUpgrade(req, socket, head, { target: 'http://127.0.0.1:3001' })
 * })
 */
export function tunnelUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: TunnelOptions,
): Promise<TunnelResult> {
  const target = parseTarget(options.target)
  const connectTimeoutMs = positive(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs')
  const handshakeTimeoutMs = positive(options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 'handshakeTimeoutMs')
  const idleTimeoutMs = nonNegative(options.idleTimeoutMs, 'idleTimeoutMs')
  const maxMessageBytes = maxBytes(options.maxMessageBytes)
  const pingIntervalMs = nonNegative(options.pingIntervalMs, 'pingIntervalMs')
  const path = joinPath(target.prefix, options.path ?? req.url ?? '/')
  const tlsSocket = (req.socket as { encrypted?: boolean } | null)?.encrypted === true
  const ctx = {
    clientIp: options.clientIp ?? req.socket?.remoteAddress,
    proto: options.proto ?? (tlsSocket ? 'https' : 'http'),
    via: options.via ?? DEFAULT_VIA,
  } as const
  const frameMode = idleTimeoutMs > 0 || options.maxMessageBytes !== undefined || pingIntervalMs > 0
  const join = options.group === undefined ? undefined : groupJoiner(options.group)
  // The handshake request can still emit 'error' (a reset client) after ws or the relay let go of it.
  req.on?.('error', noop)
  const headers = buildUpstreamHeaders(req.rawHeaders, target, ctx, options.headers, !frameMode)
  if (!frameMode) return relayTransparent(socket, head, { target, path, headers, connectTimeoutMs, handshakeTimeoutMs, join }, options)
  const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  return relayFrames(
    req,
    socket,
    head,
    { target, path, headers, protocols, connectTimeoutMs, handshakeTimeoutMs, idleTimeoutMs, maxMessageBytes, pingIntervalMs, join },
    options,
  )
}

/**
 * Standalone use: tunnels every WebSocket upgrade on `server` to the target `pick` returns.
 * Non-WebSocket upgrades (`h2c`, …) get a 400 JSON, `pick` returning `undefined` a 404 JSON.
 * Returns a function that removes the listener (open tunnels stay up).
 * @example
 * const detach = attachWebSocketTunnel(server, (req) => ({ target: 'http://127.0.0.1:3001' }))
 */
export function attachWebSocketTunnel(
  server: Server,
  pick: (req: IncomingMessage) => TunnelOptions | undefined,
): () => void {
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {}) // a reset before the tunnel takes over must not crash the server
    if (!isWebSocketUpgrade(req)) {
      writeErrorResponse(socket, new BadRequestError({ message: 'Only WebSocket upgrades are supported' }))
      return
    }
    let options: TunnelOptions | undefined
    try {
      options = pick(req)
    } catch {
      options = undefined
    }
    if (options === undefined) {
      writeErrorResponse(socket, new NoRouteError())
      return
    }
    try {
      tunnelUpgrade(req, socket, head, options).catch(() => socket.destroy())
    } catch (cause) {
      writeErrorResponse(socket, new BadGatewayError({ cause, message: 'Bad tunnel options' }))
    }
  }
  server.on('upgrade', onUpgrade)
  return () => {
    server.off('upgrade', onUpgrade)
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number`)
  return value
}

function maxBytes(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_MESSAGE_BYTES
  // Every size has a limit: raise it with a number, there is no "unlimited" (Infinity, 0).
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`maxMessageBytes must be a positive integer (default ${DEFAULT_MAX_MESSAGE_BYTES}); there is no unlimited`)
  }
  return value
}

function noop(): void {}

function nonNegative(value: number | undefined, name: string): number {
  if (value === undefined) return 0
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number`)
  return value
}
