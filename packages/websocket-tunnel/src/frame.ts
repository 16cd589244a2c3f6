import type { IncomingMessage, ClientRequest } from 'node:http'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { BadGatewayError, UpstreamTimeoutError, type GatewayError } from '@switchboard/core'
import { writeErrorResponse, type UpstreamTarget } from './handshake.ts'
import type { JoinGroup } from './group.ts'
import { tlsVerifyOptions } from './transparent.ts'
import type { TunnelCloseInfo, TunnelOptions, TunnelResult } from './types.ts'

/** Everything the frame-aware relay needs, resolved by `tunnelUpgrade()`. */
export interface FramePlan {
  /** Parsed target. */
  readonly target: UpstreamTarget
  /** Upstream request target (prefix + path). */
  readonly path: string
  /** Handshake headers without `Sec-WebSocket-*` (the `ws` client makes its own). */
  readonly headers: ReadonlyArray<[string, string]>
  /** Subprotocols the client offered, in its order. */
  readonly protocols: readonly string[]
  /** Connect timeout in ms. */
  readonly connectTimeoutMs: number
  /** Handshake timeout in ms. */
  readonly handshakeTimeoutMs: number
  /** Idle timeout in ms, 0 = off. */
  readonly idleTimeoutMs: number
  /** Largest message in bytes (always a positive integer: frame mode has no unlimited). */
  readonly maxMessageBytes: number
  /** Heartbeat interval in ms, 0 = off. */
  readonly pingIntervalMs: number
  /** Joins the tunnel's group, when it has one. */
  readonly join?: JoinGroup
}

/** Above this many queued bytes towards one side, reading from the other side pauses. */
const HIGH_WATER_BYTES = 1024 * 1024

/**
 * Relays one upgrade message by message: a `ws` client upstream first, then the client accepted
 * with the subprotocol the upstream chose.
 * @example await relayFrames(req, socket, head, plan, options)
 */
export function relayFrames(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  plan: FramePlan,
  options: TunnelOptions,
): Promise<TunnelResult> {
  const { target } = plan
  const url = `${target.secure ? 'wss' : 'ws'}://${target.host}${plan.path}`
  let timeout: GatewayError | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (phase: 'connect' | 'response', ms: number): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      timeout = new UpstreamTimeoutError({ phase, details: { timeoutMs: ms } })
      up.terminate()
    }, ms)
  }
  const disarm = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
  }

  let connecting = false
  let upSocket: Socket | undefined
  const up = new WebSocket(url, plan.protocols as string[], {
    headers: toHeaderObject(plan.headers),
    perMessageDeflate: false,
    autoPong: false,
    // ws checks each frame header's declared length (and a fragmented message's running total)
    // against this before it reads the payload, and fails the connection with 1009.
    maxPayload: plan.maxMessageBytes,
    // ws hands these to tls.connect (ours below, or its own where createConnection is ignored).
    ...(target.secure && tlsVerifyOptions(options)),
    ...(target.secure && options.tls?.servername !== undefined && { servername: options.tls.servername }),
    // Own socket factory so the connect phase gets its own timeout (ws only has one for the whole handshake).
    createConnection: ((opts: Record<string, unknown>) => {
      connecting = true
      const socket: Socket = target.secure
        ? tlsConnect({ ...opts, path: undefined, servername: options.tls?.servername ?? (isIP(target.hostname) === 0 ? target.hostname : '') } as never)
        : netConnect({ ...opts, path: undefined } as never)
      socket.setNoDelay(true)
      // ws swaps its own socket listeners around during and after the handshake; this one stays for
      // the socket's whole life so a late reset can never be an unhandled 'error'.
      socket.on('error', noop)
      upSocket = socket
      socket.once(target.secure ? 'secureConnect' : 'connect', () => arm('response', plan.handshakeTimeoutMs))
      return socket
    }) as never,
  })
  // Runtimes whose `ws` ignores createConnection (Bun's built-in) get one timer for both phases.
  if (connecting) arm('connect', plan.connectTimeoutMs)
  else arm('response', plan.connectTimeoutMs + plan.handshakeTimeoutMs)

  let bytesIn = 0
  let bytesOut = 0
  let down: WebSocket | undefined
  let opened = false
  let clientClosed = client.destroyed
  let upClosed = false
  let closeCode: number | undefined
  let closeReason: string | undefined
  let finish!: (info: TunnelCloseInfo) => void
  const closed = new Promise<TunnelCloseInfo>((resolve) => (finish = resolve))
  let settle!: (r: Omit<TunnelResult, 'closed' | 'mode'>) => void
  const result = new Promise<TunnelResult>((resolve) => {
    let done = false
    settle = (r) => {
      if (done) return
      done = true
      resolve({ ...r, mode: 'frame', closed })
    }
  })
  let rejectedResponse: IncomingMessage | undefined
  let pendingClose: [code: number, reason: string] | undefined
  const leave = plan.join?.({
    close: (code, reason) => {
      if (opened) closeBoth(code, reason)
      else pendingClose = [code, reason] // sent as soon as both sides are connected
    },
    destroy: () => {
      disarm()
      stopTimers()
      rejectedResponse?.destroy()
      if (up.readyState !== WebSocket.CLOSED) up.terminate()
      if (down !== undefined && down.readyState !== WebSocket.CLOSED) down.terminate()
      client.destroy()
    },
  })
  let ended = false
  const onBothClosed = (): void => {
    if (!clientClosed || !upClosed || ended) return
    ended = true
    leave?.()
    disarm()
    stopTimers()
    const info: TunnelCloseInfo = { code: closeCode, reason: closeReason, bytesIn, bytesOut }
    if (opened) options.onClose?.(info)
    finish(info)
  }
  const fail = (error: GatewayError): void => {
    disarm()
    writeErrorResponse(client, error)
    settle({ outcome: 'failed', status: error.status, error })
    lingerThenDestroy(client)
  }

  client.on('error', () => {}) // surfaced through 'close'
  const onClientGone = (): void => {
    clientClosed = true
    if (!opened) {
      disarm()
      settle({ outcome: 'aborted', status: 0 })
      if (up.readyState !== WebSocket.CLOSED) up.terminate()
    }
    onBothClosed()
  }
  if (clientClosed) queueMicrotask(onClientGone)
  else client.once('close', onClientGone)

  up.on('error', (cause: Error) => {
    if (opened || timer === undefined && timeout === undefined) return
    fail(timeout ?? new BadGatewayError({ cause, message: 'Upstream connection failed' }))
  })
  up.once('close', () => {
    upClosed = true
    if (!opened && timeout !== undefined) fail(timeout)
    onBothClosed()
  })
  up.once('unexpected-response', (request: ClientRequest, res: IncomingMessage) => {
    // ws hands both over to us here: they need listeners of their own until they are gone.
    request.on('error', noop)
    res.on('error', noop)
    rejectedResponse = res
    disarm()
    settle({ outcome: 'rejected', status: res.statusCode ?? 502 })
    relayResponse(res, client, (n) => (bytesOut += n))
    res.once('close', () => {
      request.destroy()
      upClosed = true
      onBothClosed()
    })
  })
  up.once('open', () => {
    disarm()
    if (client.destroyed) {
      up.terminate()
      return
    }
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      autoPong: false,
      maxPayload: plan.maxMessageBytes, // checked against the frame header, before the payload is read
      handleProtocols: () => up.protocol || false,
    } as ConstructorParameters<typeof WebSocketServer>[0])
    wss.handleUpgrade(req, client, head, (ws) => {
      down = ws
    })
    if (down === undefined) {
      // ws already answered the client (400 for a malformed handshake); drop the upstream too.
      up.close(1001, 'Client handshake failed')
      settle({ outcome: 'failed', status: 400, error: new Error('Client handshake rejected') })
      return
    }
    opened = true
    wire(down)
    settle({ outcome: 'open', status: 101 })
    options.onOpen?.({ mode: 'frame', url, protocol: up.protocol })
    if (pendingClose !== undefined) closeBoth(...pendingClose)
  })

  let idleTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  const stopTimers = (): void => {
    if (idleTimer !== undefined) clearTimeout(idleTimer)
    if (pingTimer !== undefined) clearInterval(pingTimer)
    idleTimer = pingTimer = undefined
  }
  const closeBoth = (code: number, reason: string): void => {
    closeCode ??= code
    closeReason ??= reason
    stopTimers()
    for (const ws of [down, up]) if (ws && ws.readyState === WebSocket.OPEN) ws.close(code, reason)
  }
  const touch = (): void => {
    idleTimer?.refresh()
  }

  const wire = (d: WebSocket): void => {
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(8)))
    const alive = new Map<WebSocket, boolean>([
      [d, true],
      [up, true],
    ])
    const pipe = (from: WebSocket, to: WebSocket, count: (n: number) => void): void => {
      const fromSocket = (): Duplex | undefined => (from === d ? client : upSocket)
      from.on('message', (data: RawData, isBinary: boolean) => {
        const size = rawLength(data)
        if (size > plan.maxMessageBytes) {
          // Only reached where the runtime's ws ignores maxPayload (it would have failed the frame).
          closeBoth(1009, 'Message too big')
          return
        }
        count(size)
        touch()
        alive.set(from, true)
        if (to.readyState !== WebSocket.OPEN) return
        to.send(data, { binary: isBinary }, () => {
          if (from.isPaused && to.bufferedAmount < HIGH_WATER_BYTES) from.resume()
        })
        if (to.bufferedAmount >= HIGH_WATER_BYTES && typeof from.pause === 'function') from.pause()
      })
      from.on('ping', (data: Buffer) => {
        touch()
        alive.set(from, true)
        if (to.readyState === WebSocket.OPEN) to.ping(data)
      })
      from.on('pong', (data: Buffer) => {
        alive.set(from, true)
        if (data.equals(token)) return // our heartbeat, not the peer's business
        touch()
        if (to.readyState === WebSocket.OPEN) to.pong(data)
      })
      from.on('error', (err: Error & { code?: string }) => {
        // ws already closed `from` with 1009; say the same to the other side.
        if (err.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return
        closeBoth(1009, 'Message too big')
        // ws keeps reading (and discarding) from the offender until its close handshake times out;
        // once our close frame is out, stop reading altogether (RFC 6455 §7.1.7).
        dropAfterFlush(fromSocket())
      })
      from.once('close', (code: number, reason: Buffer) => {
        if (closeCode === undefined) {
          closeCode = code
          closeReason = reason.toString()
        }
        stopTimers()
        forwardClose(to, code, reason)
      })
    }
    pipe(d, up, (n) => (bytesIn += n))
    pipe(up, d, (n) => (bytesOut += n))
    d.once('close', () => {
      clientClosed = true
      onBothClosed()
    })
    if (plan.idleTimeoutMs > 0) idleTimer = setTimeout(() => closeBoth(1001, 'Idle timeout'), plan.idleTimeoutMs)
    if (plan.pingIntervalMs > 0) {
      pingTimer = setInterval(() => {
        for (const ws of [d, up]) {
          if (ws.readyState !== WebSocket.OPEN) continue
          if (!alive.get(ws)) {
            ws.terminate() // dead peer: its 'close' (1006) closes the other side with 1001
            continue
          }
          alive.set(ws, false)
          ws.ping(token)
        }
      }, plan.pingIntervalMs)
    }
  }

  return result
}

/** Sends `code`/`reason` on to the other side when they may be sent (RFC 6455 §7.4.1). */
function forwardClose(to: WebSocket, code: number, reason: Buffer): void {
  if (to.readyState === WebSocket.CLOSED || to.readyState === WebSocket.CLOSING) return
  if (to.readyState === WebSocket.CONNECTING) {
    to.terminate()
    return
  }
  if (code === 1005) to.close()
  else if (isSendableCode(code)) to.close(code, reason)
  else to.close(1001, 'Peer went away') // 1006 and friends only describe what happened locally
}

function noop(): void {}

/** Destroys `socket` once everything written to it (the close frame) has been flushed and ended. */
function dropAfterFlush(socket: Duplex | undefined): void {
  if (socket === undefined || socket.destroyed) return
  if (socket.writableFinished) socket.destroy()
  else socket.once('finish', () => socket.destroy())
}

function isSendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, b) => sum + b.length, 0)
  return data.byteLength
}

function toHeaderObject(headers: ReadonlyArray<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {}
  const names = new Map<string, string>()
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    const existing = names.get(lower)
    if (existing === undefined) {
      names.set(lower, name)
      out[name] = value
    } else out[existing] = `${out[existing]}${lower === 'cookie' ? '; ' : ', '}${value}`
  }
  return out
}

/** Writes a parsed upstream response back as raw HTTP/1.1, delimited by close. */
function relayResponse(res: IncomingMessage, client: Duplex, count: (n: number) => void): void {
  if (client.destroyed) {
    res.destroy()
    return
  }
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`
  const raw = res.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    // The body arrives de-chunked; close delimits it instead (RFC 9112 §6.3).
    if (lower === 'transfer-encoding' || lower === 'connection' || lower === 'keep-alive') continue
    text += `${raw[i]}: ${raw[i + 1]}\r\n`
  }
  text += 'connection: close\r\n\r\n'
  client.write(text, 'latin1')
  res.on('data', (chunk: Buffer) => {
    count(chunk.length)
    client.write(chunk)
  })
  res.once('end', () => {
    client.end()
    lingerThenDestroy(client)
  })
  res.on('error', () => client.destroy())
  res.once('close', () => {
    if (!res.complete) client.destroy()
  })
}

function lingerThenDestroy(socket: Duplex): void {
  if (socket.destroyed) return
  if (socket.writableFinished) socket.destroy()
  else socket.once('finish', () => socket.destroy())
  ;(socket as Partial<Socket>).setTimeout?.(5_000, () => socket.destroy())
}
