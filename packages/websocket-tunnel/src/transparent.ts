import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { Duplex } from 'node:stream'
import { BadGatewayError, UpstreamTimeoutError, type GatewayError } from '@switchboard/core'
import { writeErrorResponse, type UpstreamTarget } from './handshake.ts'
import type { JoinGroup } from './group.ts'
import type { TunnelCloseInfo, TunnelOptions, TunnelResult } from './types.ts'

/** Everything the transparent relay needs, resolved by `tunnelUpgrade()`. */
export interface TransparentPlan {
  /** Parsed target. */
  readonly target: UpstreamTarget
  /** Upstream request target (prefix + path). */
  readonly path: string
  /** Handshake headers in send order. */
  readonly headers: ReadonlyArray<[string, string]>
  /** Connect timeout in ms. */
  readonly connectTimeoutMs: number
  /** Handshake timeout in ms. */
  readonly handshakeTimeoutMs: number
  /** Joins the tunnel's group, when it has one. */
  readonly join?: JoinGroup
}

/** Largest upstream response head accepted before answering 502. */
const MAX_HEAD_BYTES = 64 * 1024
/** A side that already got its FIN is destroyed after this long without traffic. */
const LINGER_MS = 5_000
const HEAD_END = Buffer.from('\r\n\r\n')

/**
 * Relays one upgrade byte for byte over a fresh TCP/TLS connection (transparent mode).
 * @example await relayTransparent(socket, head, plan, options)
 */
export function relayTransparent(
  client: Duplex,
  head: Buffer,
  plan: TransparentPlan,
  options: TunnelOptions,
): Promise<TunnelResult> {
  const { target } = plan
  const upstream: Socket = target.secure
    ? tlsConnect({
        host: target.hostname,
        port: target.port,
        servername: options.tls?.servername ?? (isIP(target.hostname) === 0 ? target.hostname : undefined),
        ALPNProtocols: ['http/1.1'],
        ...tlsVerifyOptions(options),
      })
    : netConnect({ host: target.hostname, port: target.port })
  upstream.setNoDelay(true)
  ;(client as Partial<Socket>).setNoDelay?.(true)

  let bytesIn = 0
  let bytesOut = 0
  let opened = false
  let clientClosed = client.destroyed
  let upstreamClosed = false
  let settle!: (result: Omit<TunnelResult, 'closed' | 'mode'>) => void
  let finish!: (info: TunnelCloseInfo) => void
  const closed = new Promise<TunnelCloseInfo>((resolve) => (finish = resolve))
  const result = new Promise<TunnelResult>((resolve) => {
    let done = false
    settle = (r) => {
      if (done) return
      done = true
      resolve({ ...r, mode: 'transparent', closed })
    }
  })

  // Transparent tunnels cannot be sent a close frame (we do not parse the byte stream): a group's
  // closeAll() lets them finish on their own until its deadline, then destroys them.
  const leave = plan.join?.({
    close: () => {},
    destroy: () => {
      clearTimer()
      client.destroy()
      upstream.destroy()
    },
  })
  let ended = false
  const onBothClosed = (): void => {
    if (!clientClosed || !upstreamClosed || ended) return
    ended = true
    leave?.()
    const info: TunnelCloseInfo = { bytesIn, bytesOut }
    if (opened) options.onClose?.(info)
    finish(info)
  }

  let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(
    () => fail(new UpstreamTimeoutError({ phase: 'connect', details: { timeoutMs: plan.connectTimeoutMs } })),
    plan.connectTimeoutMs,
  )
  const clearTimer = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
  }
  const fail = (error: GatewayError): void => {
    clearTimer()
    upstream.destroy()
    writeErrorResponse(client, error)
    settle({ outcome: 'failed', status: error.status, error })
    lingerThenDestroy(client)
  }

  const chunks: Buffer[] = []
  let received = 0
  const onHandshakeData = (chunk: Buffer): void => {
    chunks.push(chunk)
    received += chunk.length
    const buffered = chunks.length === 1 ? chunk : Buffer.concat(chunks)
    const end = buffered.indexOf(HEAD_END)
    if (end === -1) {
      if (received > MAX_HEAD_BYTES) fail(new BadGatewayError({ message: 'Upstream response head too large' }))
      return
    }
    clearTimer()
    upstream.off('data', onHandshakeData)
    const headEnd = end + HEAD_END.length
    const status = parseStatus(buffered.subarray(0, headEnd))
    if (status === undefined) {
      fail(new BadGatewayError({ message: 'Upstream sent an unparseable response' }))
      return
    }
    if (client.destroyed) {
      upstream.destroy()
      return
    }
    bytesOut += buffered.length
    client.write(buffered)
    if (status === 101) openTunnel()
    else relayRejection(buffered, headEnd, status)
  }

  const openTunnel = (): void => {
    opened = true
    if (head.length > 0) {
      bytesIn += head.length
      upstream.write(head)
    }
    client.on('data', (chunk: Buffer) => (bytesIn += chunk.length))
    upstream.on('data', (chunk: Buffer) => (bytesOut += chunk.length))
    client.pipe(upstream)
    upstream.pipe(client)
    settle({ outcome: 'open', status: 101 })
    options.onOpen?.({ mode: 'transparent', url: upstreamUrl(plan), protocol: undefined })
  }

  // Anything but 101: relay the response as sent, then close both (the client asked to upgrade this
  // connection; it cannot be reused for plain HTTP through us).
  const relayRejection = (buffered: Buffer, headEnd: number, status: number): void => {
    settle({ outcome: 'rejected', status })
    const bodyEnd = createBodyEnd(buffered.subarray(0, headEnd), status)
    const done = (): void => {
      upstream.off('data', onBody)
      upstream.destroy()
      endThenDestroy(client)
    }
    const onBody = (chunk: Buffer): void => {
      const end = bodyEnd(chunk)
      const part = end === -1 ? chunk : chunk.subarray(0, end)
      bytesOut += part.length
      client.write(part)
      if (end !== -1) done()
    }
    if (bodyEnd(buffered.subarray(headEnd)) !== -1) done()
    else upstream.on('data', onBody)
  }

  const onConnect = (): void => {
    clearTimer()
    timer = setTimeout(
      () => fail(new UpstreamTimeoutError({ phase: 'response', details: { timeoutMs: plan.handshakeTimeoutMs } })),
      plan.handshakeTimeoutMs,
    )
    let text = `GET ${plan.path} HTTP/1.1\r\n`
    for (const [name, value] of plan.headers) text += `${name}: ${value}\r\n`
    // RFC 6455 §4.1: the upgrade request must carry both tokens; everything else was passed through.
    text += 'Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
    upstream.write(text, 'latin1')
  }

  upstream.once(target.secure ? 'secureConnect' : 'connect', onConnect)
  upstream.on('data', onHandshakeData)
  upstream.on('error', (cause: Error) => {
    // Only while connecting or waiting for the head; afterwards 'close' tears the tunnel down.
    if (timer !== undefined) fail(new BadGatewayError({ cause, message: 'Upstream connection failed' }))
  })
  upstream.once('close', () => {
    upstreamClosed = true
    if (!opened) {
      if (timer !== undefined) fail(new BadGatewayError({ message: 'Upstream closed during the handshake' }))
      else endThenDestroy(client) // a rejection delimited by close, or one cut short
    } else if (!client.destroyed) {
      closeAfter(upstream, client)
    }
    onBothClosed()
  })
  client.on('error', () => {}) // surfaced through 'close'; an unhandled 'error' would crash the process
  const onClientClose = (): void => {
    clientClosed = true
    clearTimer()
    settle({ outcome: 'aborted', status: 0 })
    if (!upstream.destroyed) {
      if (opened) closeAfter(client, upstream)
      else upstream.destroy()
    }
    onBothClosed()
  }
  if (clientClosed) queueMicrotask(onClientClose)
  else client.once('close', onClientClose)
  return result
}

function upstreamUrl(plan: TransparentPlan): string {
  return `${plan.target.secure ? 'wss' : 'ws'}://${plan.target.host}${plan.path}`
}

/** `from` closed: a clean end lets `to` flush and go; anything abrupt tears `to` down now. */
function closeAfter(from: Duplex, to: Duplex): void {
  if (from.errored || !from.readableEnded) {
    to.destroy()
    return
  }
  endThenDestroy(to)
}

function endThenDestroy(socket: Duplex): void {
  if (socket.destroyed) return
  if (!socket.writableEnded) socket.end()
  lingerThenDestroy(socket)
}

const lingering = new WeakSet<Duplex>()

function lingerThenDestroy(socket: Duplex): void {
  if (socket.destroyed || lingering.has(socket)) return
  lingering.add(socket)
  if (socket.writableFinished) {
    socket.destroy()
    return
  }
  socket.once('finish', () => socket.destroy())
  ;(socket as Partial<Socket>).setTimeout?.(LINGER_MS, () => socket.destroy())
}

function parseStatus(head: Buffer): number | undefined {
  const line = head.toString('latin1', 0, Math.min(head.indexOf(13), 200))
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(line)
  return m ? Number(m[1]) : undefined
}

/** Returns a scanner that reports where the body of a non-101 response ends (-1: not yet). */
function createBodyEnd(head: Buffer, status: number): (chunk: Buffer) => number {
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return () => 0
  const text = head.toString('latin1')
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(text)) return createChunkedScanner()
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text)
  if (length) {
    let remaining = Number(length[1])
    if (remaining === 0) return () => 0
    return (chunk) => {
      remaining -= chunk.length
      return remaining <= 0 ? chunk.length + remaining : -1
    }
  }
  return () => -1 // delimited by close
}

// RFC 9112 §7.1: chunk-size line, data, CRLF ... last-chunk, trailer section, CRLF.
function createChunkedScanner(): (chunk: Buffer) => number {
  let state: 'size' | 'data' | 'trailer' = 'size'
  let line = ''
  let remaining = 0
  return (chunk) => {
    for (let i = 0; i < chunk.length; i++) {
      if (state === 'data') {
        const take = Math.min(remaining, chunk.length - i)
        remaining -= take
        i += take - 1
        if (remaining === 0) state = 'size'
        continue
      }
      const byte = chunk[i]
      if (byte !== 10) {
        if (line.length < 8192) line += String.fromCharCode(byte)
        continue
      }
      const trimmed = line.trim()
      line = ''
      if (state === 'trailer') {
        if (trimmed === '') return i + 1
        continue
      }
      if (trimmed === '') continue // the CRLF after a chunk's data
      const size = Number.parseInt(trimmed.split(';')[0], 16)
      if (!Number.isFinite(size)) return i + 1 // garbled: stop relaying here
      if (size === 0) state = 'trailer'
      else {
        state = 'data'
        remaining = size
      }
    }
    return -1
  }
}

/**
 * `ca` / `rejectUnauthorized` of {@link TunnelOptions.tls} for `tls.connect`: `ca` only when set, and
 * `rejectUnauthorized` always a boolean (an undefined one would make `tls.connect` accept anything).
 * @example const verify = tlsVerifyOptions({ target: 'wss://10.0.0.7', tls: { ca: caPem } }) // { ca, rejectUnauthorized: true }
 */
export function tlsVerifyOptions(options: TunnelOptions): { ca?: string; rejectUnauthorized: boolean } {
  const tls = options.tls
  return tls?.ca === undefined ? { rejectUnauthorized: tls?.rejectUnauthorized !== false } : { ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized !== false }
}
