// Tunnels to wss:// (https:) targets verified with `tls: { ca, servername, rejectUnauthorized }`:
// a private CA and a certificate for `upstream.test` made with openssl, the target given by IP.
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { TunnelOptions } from '../src/index.ts'
import { nextMessage, openClient, Resources, startProxy } from './helpers.ts'
import { makeTestCa } from '../../../scripts/test-certs.mjs'

let dir = ''
const pem = (name: string): string => readFileSync(join(dir, name), 'utf8')

beforeAll(() => {
  const ca = makeTestCa('sb-wss-', 'Tunnel Test CA')
  dir = ca.dir
  ca.leaf('up', 'upstream.test', 'DNS:upstream.test', 'serverAuth')
}, 60_000)

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const res = new Resources()
afterEach(() => res.close())

/** A wss echo server with the `upstream.test` certificate; records each handshake's SNI name. */
async function startSecureEcho(): Promise<{ port: number; servernames: Array<string | false | null> }> {
  const server = createHttpsServer({ cert: pem('up.pem'), key: pem('up.key') }, (_req, r) => r.writeHead(426).end())
  server.on('tlsClientError', () => {})
  const wss = new WebSocketServer({ server })
  const servernames: Array<string | false | null> = []
  wss.on('connection', (ws, req) => {
    servernames.push((req.socket as TLSSocket).servername)
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  res.add(async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, servernames }
}

/** The status a refused client upgrade got. */
async function refusedStatus(url: string): Promise<number> {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  res.add(() => ws.terminate())
  const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }]
  return response.statusCode
}

for (const mode of ['transparent', 'frame'] as const) {
  describe(`${mode} mode to a wss:// target`, () => {
    const extra: Partial<TunnelOptions> = mode === 'frame' ? { maxMessageBytes: 1 << 20 } : {}

    it('tls.ca and tls.servername verify the upstream (target by IP)', async () => {
      const up = await startSecureEcho()
      const proxy = await startProxy(res, () => ({ target: `wss://127.0.0.1:${up.port}`, tls: { ca: pem('ca.pem'), servername: 'upstream.test' }, ...extra }))
      const ws = await openClient(res, `${proxy.wsUrl}/chat`)
      ws.send('hello')
      expect((await nextMessage(ws)).data.toString()).toBe('hello')
      expect(up.servernames).toEqual(['upstream.test'])
      expect((await proxy.results[0]).outcome).toBe('open')
    })

    it('without the CA (or with the wrong name) the client gets a 502 and the upstream no handshake', async () => {
      const up = await startSecureEcho()
      const noCa = await startProxy(res, () => ({ target: `https://127.0.0.1:${up.port}`, tls: { servername: 'upstream.test' }, ...extra }))
      expect(await refusedStatus(`${noCa.wsUrl}/x`)).toBe(502)
      expect((await noCa.results[0]).outcome).toBe('failed')
      const wrongName = await startProxy(res, () => ({ target: `https://127.0.0.1:${up.port}`, tls: { ca: pem('ca.pem') }, ...extra }))
      expect(await refusedStatus(`${wrongName.wsUrl}/x`)).toBe(502)
      expect(up.servernames).toEqual([])
    })
  })
}
