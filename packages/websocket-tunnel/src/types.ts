import type { TunnelGroup } from './group.ts'

/**
 * How a tunnel relays: raw bytes, or whole messages through `ws` on both sides.
 * @example if (result.mode === 'frame') console.log('message-aware')
 */
export type TunnelMode = 'transparent' | 'frame'

/**
 * What {@link TunnelOptions.onOpen} receives once both sides are connected.
 * @example onOpen: (info) => log.info('tunnel open', info.url, info.protocol)
 */
export interface TunnelOpenInfo {
  /** The relay mode in use. */
  readonly mode: TunnelMode
  /** The upstream URL the tunnel connected to (path included). */
  readonly url: string
  /** The subprotocol the upstream chose, `''` for none (frame mode only; `undefined` in transparent mode). */
  readonly protocol: string | undefined
}

/**
 * What {@link TunnelOptions.onClose} receives once both sides are closed.
 * @example onClose: ({ code, bytesIn, bytesOut }) => metrics.record(code, bytesIn + bytesOut)
 */
export interface TunnelCloseInfo {
  /** The first close code seen (frame mode); `undefined` in transparent mode or after an abort. */
  readonly code?: number
  /** The reason that came with {@link code}. */
  readonly reason?: string
  /** Bytes received from the client (raw bytes in transparent mode, message payload bytes in frame mode). */
  readonly bytesIn: number
  /** Bytes sent to the client, counted the same way. */
  readonly bytesOut: number
}

/**
 * Options of {@link tunnelUpgrade}; see the README for the two relay modes.
 * @example const options: TunnelOptions = { target: 'http://127.0.0.1:3001', maxMessageBytes: 1 << 20 }
 */
export interface TunnelOptions {
  /** Endpoint base URL: `http(s)://host:port[/prefix]` (`ws(s)://` also accepted). */
  target: string | URL
  /** Path and query sent upstream, appended to the target prefix byte for byte. @default req.url */
  path?: string
  /** Headers set on the upstream handshake, replacing the client's; `undefined` removes one. @default {} */
  headers?: Record<string, string | undefined>
  /** Appended to `X-Forwarded-For`. @default req.socket.remoteAddress */
  clientIp?: string
  /** Sent as `X-Forwarded-Proto`. @default 'https' on a TLS socket, else 'http' */
  proto?: 'http' | 'https'
  /** `Via` entry appended on the upstream handshake; `false` adds none. @default '1.1 switchboard' */
  via?: string | false
  /** The client gets a 504 JSON when the upstream does not accept the connection in time. @default 2_000 */
  connectTimeoutMs?: number
  /**
   * How an `https:`/`wss:` target is verified: `ca` (PEM) trusted instead of the runtime's store,
   * `servername` sent as SNI and checked against the certificate instead of the target's host,
   * `rejectUnauthorized: false` accepts any certificate (tests only). Ignored for `http:`/`ws:`.
   * @default undefined (the runtime's CA store, SNI from the target, certificates verified)
   */
  tls?: { ca?: string; servername?: string; rejectUnauthorized?: boolean }
  /** The upstream must answer the upgrade within this, else the client gets a 504 JSON. @default 10_000 */
  handshakeTimeoutMs?: number
  /** No message either way for this long closes both sides with 1001 (turns on frame mode). @default 0 (off) */
  idleTimeoutMs?: number
  /**
   * A bigger message (one frame, or the sum of a fragmented message's frames) closes both sides with
   * 1009, checked against each frame header's declared length before its payload is read. Setting
   * it turns on frame mode; frame mode always has a limit, so raise it with a number (`Infinity` and
   * `0` throw a `RangeError`). Transparent mode relays bytes and does not look at messages.
   * @default DEFAULT_MAX_MESSAGE_BYTES (1 MiB) in frame mode
   */
  maxMessageBytes?: number
  /** Pings both sides this often and drops a side that did not answer the last ping (turns on frame mode). @default 0 (off) */
  pingIntervalMs?: number
  /**
   * Group to join for graceful shutdown (`group.closeAll()`); the tunnel leaves it once both sides
   * are closed. Must come from `createTunnelGroup()`.
   * @default undefined
   */
  group?: TunnelGroup
  /** Called once both sides are connected. @default undefined */
  onOpen?(info: TunnelOpenInfo): void
  /** Called once both sides of an opened tunnel are closed. @default undefined */
  onClose?(info: TunnelCloseInfo): void
}

/**
 * How the upgrade went: resolved once the handshake is settled, not when the tunnel closes.
 * @example
 * const result = await tunnelUpgrade(req, socket, head, options)
 * if (result.outcome === 'open') await result.closed
 */
export interface TunnelResult {
  /**
   * `open`: relaying; `rejected`: the upstream answered something other than 101 and the client got
   * it as sent; `failed`: the client got a 502/504 JSON; `aborted`: the client left first.
   */
  readonly outcome: 'open' | 'rejected' | 'failed' | 'aborted'
  /** 101, the upstream's status when rejected, the gateway's status when failed, 0 when aborted. */
  readonly status: number
  /** The relay mode chosen from the options. */
  readonly mode: TunnelMode
  /** The failure behind `failed` (a `GatewayError` with `status` and `code`). */
  readonly error?: Error
  /** Settles once both sockets are closed, whatever the outcome. */
  readonly closed: Promise<TunnelCloseInfo>
}
