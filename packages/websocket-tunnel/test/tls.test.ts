// Tunnels to wss:// (https:) targets verified with `tls: { ca, servername, rejectUnauthorized }`:
// a private CA and a certificate for `upstream.test` made with openssl, the target given by IP.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { TunnelOptions } from '../src/index.ts'
import { nextMessage, openClient, Resources, startProxy } from './helpers.ts'

let dir = ''
const pem = (name: string): string => readFileSync(join(dir, name), 'utf8')

beforeAll(() => {
  let openssl = ''
  try {
    openssl = execFileSync('which', ['openssl'], { encoding: 'utf8' }).trim()
  } catch {
    // handled below
  }
  if (!openssl) throw new Error('tls.test.ts needs the openssl command (Debian: apt-get install openssl) to make its test certificates')
  dir = mkdtempSync(join(tmpdir(), 'sb-wss-'))
  const run = (...args: string[]): void => void execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' })
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Tunnel Test CA')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'up.key', '-out', 'up.csr', '-subj', '/CN=upstream.test')
  writeFileSync(join(dir, 'up.ext'), 'subjectAltName=DNS:upstream.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  run('x509', '-req', '-in', 'up.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'up.pem', '-days', '2', '-extfile', 'up.ext')
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
