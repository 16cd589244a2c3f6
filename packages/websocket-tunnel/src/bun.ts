import { BadRequestError } from '@switchboard/core'
import {
  connectNative,
  planNative,
  type NativeMessage,
  type NativePlan,
  type NativeRelay,
  type NativeTunnelOptions,
} from './native.ts'

/**
 * The part of Bun's `Server` the adapter uses (typed locally: no `@types/bun`).
 * @example fetch: (req, server: BunServerLike) => tunnel.upgrade(req, server)
 */
export interface BunServerLike {
  upgrade(request: Request, options?: { headers?: Record<string, string>; data?: unknown }): boolean
  requestIP?(request: Request): { address: string } | null
}

/**
 * The part of Bun's `ServerWebSocket` the adapter uses.
 * @example tunnel.websocket.message(ws as BunSocketLike, 'hi')
 */
export interface BunSocketLike {
  readonly data: unknown
  send(data: NativeMessage): unknown
  close(code?: number, reason?: string): void
}

/**
 * What {@link bunWebSocketTunnel} returns: plug `upgrade` into `fetch` and `websocket` into `Bun.serve`.
 * @example Bun.serve({ fetch: (req, server) => tunnel.upgrade(req, server), websocket: tunnel.websocket })
 */
export interface BunWebSocketTunnel {
  /** Upgrades `request` (returns `undefined`), or answers a JSON 400 for a non-WebSocket request. */
  upgrade(request: Request, server: BunServerLike): Response | undefined
  /** The `websocket` handler object for `Bun.serve`. */
  websocket: {
    open(ws: BunSocketLike): void
    message(ws: BunSocketLike, message: string | Uint8Array): void
    close(ws: BunSocketLike, code: number, reason: string): void
  }
}

interface BunTunnelData {
  plan: NativePlan
  relay?: NativeRelay
}

/**
 * Native Bun adapter: `Bun.serve` accepts the client, a global `WebSocket` connects upstream,
 * messages are relayed both ways. The client is offered its own first subprotocol (Bun sends the
 * 101 before the upstream answers), and the upstream is asked for that one only.
 * @example
 * const tunnel = bunWebSocketTunnel('http://127.0.0.1:3001')
 * Bun.serve({ fetch: (req, server) => tunnel.upgrade(req, server), websocket: tunnel.websocket })
 */
export function bunWebSocketTunnel(target: string | URL, options: NativeTunnelOptions = {}): BunWebSocketTunnel {
  return {
    upgrade(request, server) {
      if ((request.headers.get('upgrade') ?? '').toLowerCase() !== 'websocket') {
        return new BadRequestError({ message: 'Expected a WebSocket upgrade' }).toResponse()
      }
      const plan = planNative(request, target, server.requestIP?.(request)?.address, options)
      const data: BunTunnelData = { plan }
      const headers = plan.protocol ? { 'Sec-WebSocket-Protocol': plan.protocol } : undefined
      if (server.upgrade(request, { headers, data })) return undefined
      return new BadRequestError({ message: 'WebSocket upgrade failed' }).toResponse()
    },
    websocket: {
      open(ws) {
        const data = ws.data as BunTunnelData
        data.relay = connectNative(data.plan, ws, options)
      },
      message(ws, message) {
        // Bun hands over a Buffer over its own ArrayBuffer: safe to pass on as is.
        ;(ws.data as BunTunnelData).relay?.message(message as NativeMessage)
      },
      close(ws, code, reason) {
        ;(ws.data as BunTunnelData).relay?.closed(code, reason)
      },
    },
  }
}
