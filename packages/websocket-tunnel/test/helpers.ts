import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws'
import { attachWebSocketTunnel, tunnelUpgrade, type TunnelOptions, type TunnelResult } from '../src/index.ts'

type Cleanup = () => Promise<void> | void

/** Collects everything a test opens; `close()` in afterEach tears it all down. */
export class Resources {
  #cleanups: Cleanup[] = []
  add(cleanup: Cleanup): void {
    this.#cleanups.push(cleanup)
  }
  async close(): Promise<void> {
    const all = this.#cleanups.splice(0).reverse()
    for (const c of all) await c()
  }
}

export interface Upstream {
  server: Server
  wss: WebSocketServer
  url: string
  port: number
  /** Handshake requests the upstream accepted, newest last. */
  requests: IncomingMessage[]
  /** Server-side sockets, newest last. */
  sockets: WebSocket[]
}

/** A real `ws` echo server on 127.0.0.1:0 (echoes messages with their type). */
export async function startEcho(res: Resources, options: ServerOptions = {}, echo = true): Promise<Upstream> {
  const server = createServer((_req, r) => r.writeHead(426).end())
  const wss = new WebSocketServer({ server, ...options })
  const requests: IncomingMessage[] = []
  const sockets: WebSocket[] = []
  wss.on('connection', (ws, req) => {
    requests.push(req)
    sockets.push(ws)
    ws.on('error', () => {})
    if (echo) ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  const port = await listen(server)
  res.add(async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
    await closeServer(server)
  })
  return { server, wss, url: `http://127.0.0.1:${port}`, port, requests, sockets }
}

export interface Proxy {
  server: Server
  port: number
  wsUrl: string
  results: Promise<TunnelResult>[]
  /** The client sockets handed to tunnelUpgrade(), newest last. */
  upgraded: Socket[]
}

/** A node:http server that tunnels every WebSocket upgrade with `options()`. */
export async function startProxy(
  res: Resources,
  options: (req: IncomingMessage) => TunnelOptions,
  attach = false,
): Promise<Proxy> {
  const server = createServer((_req, r) => r.writeHead(404).end())
  const results: Promise<TunnelResult>[] = []
  const upgraded: Socket[] = []
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  if (attach) attachWebSocketTunnel(server, options)
  else {
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      upgraded.push(socket)
      results.push(tunnelUpgrade(req, socket, head, options(req)))
    })
  }
  const port = await listen(server)
  res.add(async () => {
    for (const s of sockets) s.destroy()
    await closeServer(server)
  })
  return { server, port, wsUrl: `ws://127.0.0.1:${port}`, results, upgraded }
}

const tracked = new WeakMap<Server, Set<Socket>>()

export async function listen(server: Server): Promise<number> {
  const sockets = new Set<Socket>()
  tracked.set(server, sockets)
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return
  // Upgraded sockets are no longer tracked by node:http, so closeAllConnections() misses them.
  for (const s of tracked.get(server) ?? []) s.destroy()
  server.closeAllConnections?.()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** Opens a `ws` client and waits for it to open; closed by `res`. */
export async function openClient(
  res: Resources,
  url: string,
  protocols?: string | string[],
  options: ConstructorParameters<typeof WebSocket>[2] = {},
): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options)
  ws.on('error', () => {})
  res.add(() => {
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate()
  })
  await once(ws, 'open')
  return ws
}

/** Next message on `ws`, with its binary flag. */
export async function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean]
  return { data, isBinary }
}

/** Waits for `ws` to close and returns its code and reason. */
export async function closedWith(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return { code: -1, reason: '' }
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  return { code, reason: reason.toString() }
}

/** Sends raw bytes to host:port and returns everything received until the peer closes. */
export async function rawExchange(port: number, request: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(request)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await closeServer(server)
  return port
}

export function upgradeRequest(path: string, extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
  )
}

export interface RawClient {
  socket: Socket
  /** Everything received after the response head so far. */
  received(): Buffer
  /** The response head (status line and headers). */
  head: string
  /** Settles once the socket is closed. */
  closed: Promise<void>
}

/** Opens a raw TCP connection, sends an upgrade request and waits for the response head. */
export async function rawUpgrade(res: Resources, port: number, path = '/'): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  res.add(() => void socket.destroy())
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let buffered = Buffer.alloc(0)
  const head = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      const text = buffered.subarray(0, end).toString('latin1')
      buffered = buffered.subarray(end + 4)
      socket.on('data', (c: Buffer) => (buffered = Buffer.concat([buffered, c])))
      resolve(text)
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed before a response head: ${buffered.toString('latin1')}`)))
    socket.write(upgradeRequest(path))
  })
  return { socket, head, received: () => buffered, closed }
}

/** A client-to-server frame header (masked, RFC 6455 §5.2) declaring `length` payload bytes. */
export function maskedFrameHeader(opcode: number, length: number, fin = true): Buffer {
  const first = (fin ? 0x80 : 0) | opcode
  if (length < 126) return Buffer.from([first, 0x80 | length, 0, 0, 0, 0])
  if (length < 65536) return Buffer.from([first, 0x80 | 126, length >> 8, length & 255, 0, 0, 0, 0])
  const header = Buffer.alloc(14)
  header[0] = first
  header[1] = 0x80 | 127
  header.writeBigUInt64BE(BigInt(length), 2)
  return header // zero mask: the payload goes out as sent
}

/** The code of the first close frame in a server-to-client byte stream, `undefined` for none. */
export function closeCodeIn(bytes: Buffer): number | undefined {
  let at = 0
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at] & 0x0f
    let length = bytes[at + 1] & 0x7f
    let offset = at + 2
    if (length === 126) {
      length = bytes.readUInt16BE(offset)
      offset += 2
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset))
      offset += 8
    }
    if (bytes[at + 1] & 0x80) offset += 4
    if (opcode === 8) return length >= 2 ? bytes.readUInt16BE(offset) : 1005
    at = offset + length
  }
  return undefined
}

/** Polls `condition` every 5 ms, failing with `what` after 5 s. */
export async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (condition()) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}
