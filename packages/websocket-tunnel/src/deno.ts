import { BadRequestError } from '@switchboard/core'
import { connectNative, planNative, type NativeTunnelOptions } from './native.ts'

/**
 * `Deno.serve`'s handler info; only the remote address is read (typed locally: no Deno types).
 * @example Deno.serve((req, info: DenoServeInfoLike) => denoWebSocketTunnel(req, target, { info }))
 */
export interface DenoServeInfoLike {
  readonly remoteAddr: { readonly hostname?: string }
}

/**
 * Options of {@link denoWebSocketTunnel}.
 * @example denoWebSocketTunnel(req, 'http://127.0.0.1:3001', { info, via: false })
 */
export interface DenoTunnelOptions extends NativeTunnelOptions {
  /** The handler's second argument; its `remoteAddr` becomes `X-Forwarded-For`. @default undefined */
  info?: DenoServeInfoLike
}

interface DenoLike {
  upgradeWebSocket(request: Request, options?: { protocol?: string }): { socket: WebSocket; response: Response }
}

/**
 * Native Deno adapter: `Deno.upgradeWebSocket` accepts the client, a global `WebSocket` connects
 * upstream, messages are relayed both ways. The client is offered its own first subprotocol, and
 * the upstream is asked for that one only. Returns the response to hand back from `Deno.serve`.
 * @example
 * Deno.serve((req, info) => denoWebSocketTunnel(req, 'http://127.0.0.1:3001', { info }))
 */
export function denoWebSocketTunnel(request: Request, target: string | URL, options: DenoTunnelOptions = {}): Response {
  const deno = (globalThis as { Deno?: DenoLike }).Deno
  if (deno === undefined) throw new TypeError('denoWebSocketTunnel() needs the Deno runtime')
  if ((request.headers.get('upgrade') ?? '').toLowerCase() !== 'websocket') {
    return new BadRequestError({ message: 'Expected a WebSocket upgrade' }).toResponse()
  }
  // Deno: remoteAddr throws "Request closed" once the request is upgraded, so read it first.
  const clientIp = options.info?.remoteAddr.hostname
  const plan = planNative(request, target, clientIp, options)
  let upgraded: { socket: WebSocket; response: Response }
  try {
    upgraded = deno.upgradeWebSocket(request, plan.protocol ? { protocol: plan.protocol } : {})
  } catch {
    // Deno splits the offer on ', ' only, so `a,b` (as `ws` sends it) reads as one token: set the
    // header ourselves on a plain upgrade instead.
    upgraded = deno.upgradeWebSocket(request)
    if (plan.protocol) upgraded.response.headers.set('sec-websocket-protocol', plan.protocol)
  }
  const { socket, response } = upgraded
  socket.binaryType = 'arraybuffer'
  let relay: ReturnType<typeof connectNative> | undefined
  const pending: Array<string | ArrayBuffer> = []
  socket.onopen = () => {
    relay = connectNative(plan, socket, options)
    for (const data of pending) relay.message(data)
    pending.length = 0
  }
  socket.onmessage = (event: MessageEvent) => {
    if (relay) relay.message(event.data as string | ArrayBuffer)
    else pending.push(event.data as string | ArrayBuffer)
  }
  socket.onerror = () => {}
  socket.onclose = (event: CloseEvent) => {
    if (relay) relay.closed(event.code, event.reason)
  }
  return response
}
