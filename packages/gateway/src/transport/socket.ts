import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { GatewayError } from '@switchboard/core'

/**
 * A response written straight onto an upgrade socket (no parser owns it any more); once it is
 * finished, the socket closes when `closeAfter()` says so.
 */
export function responseOnSocket(req: IncomingMessage, socket: Duplex, closeAfter: () => boolean): ServerResponse {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as Socket)
  res.on('error', noop)
  res.once('finish', () => {
    if (!closeAfter()) return
    res.detachSocket(socket as Socket)
    socket.end()
  })
  return res
}

/** Writes a minimal error response on a socket no parser owns, then closes it. */
export function writeRawError(socket: Duplex, err: GatewayError): void {
  if (socket.writable) {
    const text = err.toBody()
    socket.end(
      `HTTP/1.1 ${err.status} ${err.message.replace(/[^\x20-\x7e]/g, '')}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    )
    // Give the answer a moment to leave before the socket goes, but never wait on a stalled reader.
    setTimeout(() => socket.destroy(), 1_000).unref?.()
  } else socket.destroy()
}

/** For error listeners that only exist so an 'error' event can never go unhandled. */
export function noop(): void {}
