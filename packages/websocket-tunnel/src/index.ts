export {
  tunnelUpgrade,
  attachWebSocketTunnel,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
} from './tunnel.ts'
export { createTunnelGroup, DEFAULT_GROUP_CLOSE_TIMEOUT_MS, type TunnelGroup, type TunnelGroupCloseOptions } from './group.ts'
export { isWebSocketUpgrade } from './handshake.ts'
export { bunWebSocketTunnel, type BunWebSocketTunnel, type BunServerLike, type BunSocketLike } from './bun.ts'
export { denoWebSocketTunnel, type DenoTunnelOptions, type DenoServeInfoLike } from './deno.ts'
export type { NativeTunnelOptions } from './native.ts'
export type { TunnelOptions, TunnelResult, TunnelOpenInfo, TunnelCloseInfo, TunnelMode } from './types.ts'
