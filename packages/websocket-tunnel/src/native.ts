import { DEFAULT_VIA, buildUpstreamHeaders, joinPath, parseTarget } from './handshake.ts'
import type { TunnelCloseInfo, TunnelOpenInfo } from './types.ts'

/**
 * Options of the native adapters (`bunWebSocketTunnel`, `denoWebSocketTunnel`).
 * @example bunWebSocketTunnel('http://127.0.0.1:3001', { headers: { 'x-tenant': 'a' } })
 */
export interface NativeTunnelOptions {
  /** Headers set on the upstream handshake, replacing the client's; `undefined` removes one. @default {} */
  headers?: Record<string, string | undefined>
  /** Appended to `X-Forwarded-For`. @default the address the runtime reports for the request */
  clientIp?: string
  /** Sent as `X-Forwarded-Proto`. @default the request URL's scheme */
  proto?: 'http' | 'https'
  /** `Via` entry appended on the upstream handshake; `false` adds none. @default '1.1 switchboard' */
  via?: string | false
  /** The upstream must complete its handshake within this, else the client is closed with 1014. @default 10_000 */
  handshakeTimeoutMs?: number
  /** Called once the upstream is connected. @default undefined */
  onOpen?(info: TunnelOpenInfo): void
  /** Called once both sides are closed. @default undefined */
  onClose?(info: TunnelCloseInfo): void
}

/** The Web-standard `WebSocket` constructor with the `{ protocols, headers }` form Bun, Deno and Node 24 accept. */
interface WebSocketClientConstructor {
  new (url: string, options: { protocols?: string[]; headers?: Record<string, string> }): WebSocket
}

/** A message as the relay passes it on: text, or binary backed by a plain `ArrayBuffer`. */
export type NativeMessage = string | ArrayBuffer | Uint8Array<ArrayBuffer>

/** What the relay needs from the client side, whatever the runtime calls it. */
export interface ClientSide {
  send(data: NativeMessage): void
  close(code?: number, reason?: string): void
}

/** Everything decided before upgrading: where to go and what to offer. */
export interface NativePlan {
  readonly url: string
  readonly protocol: string | undefined
  readonly headers: Record<string, string>
}

/** The client-facing half of a native relay. */
export interface NativeRelay {
  message(data: NativeMessage): void
  closed(code: number, reason: string): void
}

/**
 * Plans a native tunnel from a Web `Request`: upstream URL, the one subprotocol both sides get
 * (the client's first offer: the client's 101 goes out before the upstream answers), and headers.
 * @example planNative(request, 'http://127.0.0.1:3001', '127.0.0.1', {})
 */
export function planNative(
  request: Request,
  target: string | URL,
  clientIp: string | undefined,
  options: NativeTunnelOptions,
): NativePlan {
  const t = parseTarget(target)
  const url = new URL(request.url)
  const raw: string[] = []
  request.headers.forEach((value, name) => raw.push(name, value))
  const proto = options.proto ?? (url.protocol === 'https:' || url.protocol === 'wss:' ? 'https' : 'http')
  const list = buildUpstreamHeaders(raw, t, { clientIp: options.clientIp ?? clientIp, proto, via: options.via ?? DEFAULT_VIA }, options.headers, false)
  const headers: Record<string, string> = {}
  // `Host` comes from the URL: the Web WebSocket client does not let us set it.
  for (const [name, value] of list) if (name.toLowerCase() !== 'host') headers[name] = value
  const offered = (request.headers.get('sec-websocket-protocol') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  return {
    url: `${t.secure ? 'wss' : 'ws'}://${t.host}${joinPath(t.prefix, url.pathname + url.search)}`,
    protocol: offered[0],
    headers,
  }
}

/**
 * Connects the upstream with the runtime's global `WebSocket` and relays both ways; client
 * messages sent before the upstream is open are queued in order.
 * @example const relay = connectNative(plan, client, options)
 */
export function connectNative(plan: NativePlan, client: ClientSide, options: NativeTunnelOptions): NativeRelay {
  const Ctor = (globalThis as unknown as { WebSocket?: WebSocketClientConstructor }).WebSocket
  let bytesIn = 0
  let bytesOut = 0
  let code: number | undefined
  let reason: string | undefined
  let clientDone = false
  let upstreamDone = false
  let opened = false
  const queue: NativeMessage[] = []
  const finish = (): void => {
    if (clientDone && upstreamDone) options.onClose?.({ code, reason, bytesIn, bytesOut })
  }
  if (Ctor === undefined) {
    upstreamDone = true
    client.close(1011, 'No WebSocket client in this runtime')
    return { message() {}, closed: () => ((clientDone = true), finish()) }
  }
  const up = new Ctor(plan.url, { protocols: plan.protocol ? [plan.protocol] : [], headers: plan.headers })
  up.binaryType = 'arraybuffer'
  const timer = setTimeout(() => {
    if (up.readyState === 0) up.close()
  }, options.handshakeTimeoutMs ?? 10_000)
  up.onopen = () => {
    clearTimeout(timer)
    opened = true
    for (const data of queue) up.send(data)
    queue.length = 0
    options.onOpen?.({ mode: 'frame', url: plan.url, protocol: up.protocol })
  }
  up.onmessage = (event: MessageEvent) => {
    const data = event.data as string | ArrayBuffer
    bytesOut += size(data)
    if (!clientDone) client.send(data)
  }
  up.onerror = () => {} // 'close' follows with the details there are
  up.onclose = (event: CloseEvent) => {
    clearTimeout(timer)
    upstreamDone = true
    if (!clientDone) {
      if (!opened) closeSide(client, 1014, 'Bad Gateway') // RFC 6455 §7.4.1 (IANA): 1014 bad gateway
      else {
        code ??= event.code
        reason ??= event.reason
        closeSide(client, event.code, event.reason)
      }
    }
    finish()
  }
  return {
    message(data) {
      bytesIn += size(data)
      if (up.readyState === 1) up.send(data)
      else if (up.readyState === 0) queue.push(data)
    },
    closed(c, r) {
      clientDone = true
      code ??= c
      reason ??= r
      queue.length = 0
      if (up.readyState === 0) {
        clearTimeout(timer)
        up.close()
      } else if (up.readyState === 1) closeSide(up, c, r)
      finish()
    },
  }
}

/** Web `close()` only takes 1000 or 3000–4999; other sides take any sendable code. Fall back gracefully. */
function closeSide(side: ClientSide, code: number, reason: string): void {
  const sendable = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
  try {
    if (sendable) side.close(code, reason)
    else side.close(1000, reason)
  } catch {
    try {
      side.close(1000, reason)
    } catch {
      side.close()
    }
  }
}

function size(data: NativeMessage): number {
  return typeof data === 'string' ? new TextEncoder().encode(data).byteLength : data.byteLength
}
