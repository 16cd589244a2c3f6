// TLS on the listener (`server.tls`: one certificate, SNI lists, ALPN, minVersion, mutual TLS,
// reload, handshake timeout) and to upstreams (`upstreams.NAME.tls`: ca, servername, health probes).
// Real keys: a CA and leaf certificates made with Debian's openssl at setup, real https servers and
// clients on 127.0.0.1.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { type IncomingMessage, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '@switchboard/core'
import { createGateway, type Gateway, loadConfigFile, loadConfigText, parseConfig } from '../src/index.ts'
import { startUpstream, type TestUpstream } from './helpers.ts'
import { makeTestCa } from '../../../scripts/test-certs.mjs'

const IS_BUN = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'

let dir = ''
const pem = (name: string): string => readFileSync(join(dir, name), 'utf8')

beforeAll(() => {
  const ca = makeTestCa('sb-tls-', 'Switchboard Test CA')
  dir = ca.dir
  const { run, leaf } = ca
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2', '-subj', '/CN=client.test', '-addext', 'subjectAltName=DNS:client.test')
  leaf('a', 'a.test', 'DNS:a.test')
  leaf('b', 'b.test', 'DNS:b.test')
  leaf('wild', 'wild.test', 'DNS:*.wild.test')
  leaf('default', 'default.test', 'DNS:default.test,IP:127.0.0.1')
  leaf('renewed', 'renewed.test', 'DNS:default.test,IP:127.0.0.1')
  leaf('upstream-ip', 'upstream-ip', 'IP:127.0.0.1')
  leaf('upstream-name', 'upstream.test', 'DNS:upstream.test')
  leaf('client', 'client.test', 'DNS:client.test')
  writeFileSync(join(dir, 'not-pem.pem'), 'hello\n')
  // The files the listener config names; tests overwrite `live.*` to renew the certificate.
  copyFileSync(join(dir, 'default.pem'), join(dir, 'live.pem'))
  copyFileSync(join(dir, 'default.key'), join(dir, 'live.key'))
}, 60_000)

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** Parses `raw` as if it were `gateway.yaml` in the certificates folder (relative paths resolve there). */
const parse = (raw: Record<string, unknown>) => parseConfig(raw, { file: join(dir, 'gateway.yaml') })

function baseConfig(target: string, server: Record<string, unknown> = {}, upstream: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { shutdownTimeout: '1s', ...server },
    upstreams: { backend: { targets: [target], ...upstream } },
    routes: [{ name: 'all', match: { path: '/*' }, upstream: 'backend' }],
  }
}

async function start(raw: Record<string, unknown>, options: Parameters<typeof createGateway>[1] = {}): Promise<{ gateway: Gateway; port: number; logs: string[] }> {
  const logs: string[] = []
  const gateway = await createGateway(parse(raw), { logger: (level, message) => logs.push(`${level} ${message}`), ...options })
  cleanups.push(() => gateway.close())
  const { port } = await gateway.listen(0, '127.0.0.1')
  return { gateway, port, logs }
}

async function upstream(): Promise<TestUpstream> {
  const u = await startUpstream()
  cleanups.push(() => u.close())
  return u
}

/** An HTTPS upstream with the given leaf certificate; records the SNI name of every request. */
async function httpsUpstream(leaf: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; server: HttpsServer; seen: Array<{ url: string; servername: string | false | null }> }> {
  const seen: Array<{ url: string; servername: string | false | null }> = []
  const server = createHttpsServer({ cert: pem(`${leaf}.pem`), key: pem(`${leaf}.key`) }, (req, res) => {
    seen.push({ url: req.url ?? '', servername: (req.socket as TLSSocket).servername })
    if (handler) return handler(req, res)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ secure: true, url: req.url }))
  })
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, server, seen }
}

interface Peer {
  cn: string | undefined
  san: string | undefined
  alpn: string | false | null
  protocol: string | null
}

/** A TLS handshake with the listener (trusting the test CA); resolves with what the server presented. */
function handshake(port: number, options: ConnectionOptions = {}): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pem('ca.pem'), ALPNProtocols: ['h2', 'http/1.1'], ...options })
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate()
      resolve({ cn: cert.subject?.CN as string | undefined, san: cert.subjectaltname, alpn: socket.alpnProtocol, protocol: socket.getProtocol() })
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

interface Answer {
  status: number
  body: string
  cn: string | undefined
  socket: TLSSocket
}

/** An HTTPS request to the listener with the test CA. */
function get(port: number, path: string, options: { servername?: string; agent?: HttpsAgent; cert?: string; key?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: pem('ca.pem'),
        servername: options.servername ?? 'default.test',
        agent: options.agent ?? false,
        cert: options.cert,
        key: options.key,
        headers: options.headers,
      },
      (res) => {
        // Read now: a keep-alive agent takes the socket back once the body ended.
        const socket = res.socket as TLSSocket
        const cn = socket.getPeerCertificate().subject?.CN as string | undefined
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cn, socket }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Resolves once `cond()` holds (checked every 20 ms); the test timeout bounds the wait. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20))
}

describe('config', () => {
  it('refuses a missing file, a file that is not PEM and two default certificates, naming the key path', () => {
    const up = 'http://127.0.0.1:9'
    expect(() => parse(baseConfig(up, { tls: { cert: 'nope.pem', key: 'default.key' } }))).toThrow(ConfigError)
    expect(() => parse(baseConfig(up, { tls: { cert: 'nope.pem', key: 'default.key' } }))).toThrow(/server\.tls\.cert.*readable certificate file.*ENOENT/)
    expect(() => parse(baseConfig(up, { tls: [{ cert: 'default.pem', key: 'not-pem.pem' }] }))).toThrow(/server\.tls\[0\]\.key.*PEM/)
    expect(() => parse(baseConfig(up, { tls: [{ cert: 'a.pem', key: 'a.key' }, { cert: 'b.pem', key: 'b.key' }] }))).toThrow(/server\.tls\[1\]\.serverName/)
    expect(() => parse(baseConfig('https://127.0.0.1:9', {}, { tls: { ca: 'missing-ca.pem' } }))).toThrow(/upstreams\.backend\.tls\.ca/)
    // The well-formed version of the same is accepted.
    expect(parse(baseConfig(up, { tls: [{ cert: 'a.pem', key: 'a.key', serverName: 'a.test' }, { cert: 'b.pem', key: 'b.key' }] })).server.tls?.certificates).toHaveLength(2)
  })

  it('the README example parses (with its certificate files in place)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('## TLS'))
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
    expect(yaml, 'the TLS section has a yaml block').toBeDefined()
    const files = [...yaml!.matchAll(/(?:cert|key|ca): (\S+\.(?:pem|key))/g)].map((m) => m[1])
    expect(files.length).toBeGreaterThan(3)
    const exampleDir = mkdtempSync(join(tmpdir(), 'sb-tls-readme-'))
    cleanups.push(() => rmSync(exampleDir, { recursive: true, force: true }))
    execFileSync('mkdir', ['-p', ...new Set(files.map((f) => join(exampleDir, f, '..')))])
    for (const f of files) copyFileSync(join(dir, f.endsWith('.key') ? 'default.key' : 'default.pem'), join(exampleDir, f))
    const config = loadConfigText(yaml!, { file: join(exampleDir, 'gateway.yaml') })
    expect(config.server.tls?.certificates.map((c) => c.serverName)).toContain(undefined)
    expect(Object.values(config.upstreams).some((u) => u.tls?.ca !== undefined)).toBe(true)
  })
})

describe.skipIf(IS_BUN)('HTTPS listener', () => {
  it('serves a proxied request over TLS with ALPN http/1.1', async () => {
    const u = await upstream()
    const { port } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' } }))
    const res = await get(port, '/hello')
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ upstream: 'upstream', url: '/hello' })
    expect(res.cn).toBe('default.test')
    // A client offering h2 first still gets HTTP/1.1: the only protocol the listener speaks.
    expect((await handshake(port, { servername: 'default.test' })).alpn).toBe('http/1.1')
  })

  it('SNI picks by exact name, then *.suffix, then the default certificate', async () => {
    const u = await upstream()
    const { port } = await start(
      baseConfig(u.url, {
        tls: [
          { cert: 'a.pem', key: 'a.key', serverName: 'a.test' },
          { cert: 'default.pem', key: 'default.key' },
          { cert: 'b.pem', key: 'b.key', serverName: 'B.test' },
          { cert: 'wild.pem', key: 'wild.key', serverName: '*.wild.test' },
        ],
      }),
    )
    expect(await handshake(port, { servername: 'a.test' })).toMatchObject({ cn: 'a.test', san: 'DNS:a.test', alpn: 'http/1.1' })
    expect(await handshake(port, { servername: 'b.test' })).toMatchObject({ cn: 'b.test', san: 'DNS:b.test' })
    expect(await handshake(port, { servername: 'api.wild.test' })).toMatchObject({ cn: 'wild.test', san: 'DNS:*.wild.test' })
    // A wildcard covers one label only; unknown names and clients without SNI get the default.
    const fallback = { cn: 'default.test', san: 'DNS:default.test, IP Address:127.0.0.1' }
    expect(await handshake(port, { servername: 'x.api.wild.test', checkServerIdentity: () => undefined })).toMatchObject(fallback)
    expect(await handshake(port, { servername: 'unknown.test', checkServerIdentity: () => undefined })).toMatchObject(fallback)
    expect(await handshake(port, {})).toMatchObject(fallback)
    expect((await get(port, '/x', { servername: 'b.test' })).status).toBe(200)
  })

  it('minVersion TLSv1.3 refuses a TLSv1.2-only client and serves a TLSv1.3 one', async () => {
    const u = await upstream()
    const { port, gateway } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key', minVersion: 'TLSv1.3' } }))
    await expect(handshake(port, { servername: 'default.test', maxVersion: 'TLSv1.2' })).rejects.toThrow(/version|protocol/i)
    expect((await handshake(port, { servername: 'default.test' })).protocol).toBe('TLSv1.3')
    expect((await get(port, '/ok')).status).toBe(200)
    expect(gateway.server.listening).toBe(true)
  })

  it('a TLSv1.2 client is served by default', async () => {
    const u = await upstream()
    const { port } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' } }))
    expect((await handshake(port, { servername: 'default.test', maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2')
  })

  it('closes a connection whose TLS handshake never starts (head timeout), and keeps serving', async () => {
    const u = await upstream()
    const { port } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' }, limits: { headersTimeout: '300ms' } }))
    const closed = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.once('close', () => resolve(true))
    })
    expect(closed).toBe(true)
    expect((await get(port, '/after')).status).toBe(200)
  })

  it('plain HTTP sent to the TLS port is dropped without a crash or a log line', async () => {
    const u = await upstream()
    const { port, logs, gateway } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' } }))
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const socket: Socket = netConnect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
        socket.on('error', () => {})
        socket.resume()
        socket.once('close', () => resolve())
      })
    }
    expect((await get(port, '/still')).status).toBe(200)
    expect(logs.filter((l) => /tls|handshake|ssl/i.test(l))).toEqual([])
    expect(gateway.server.listening).toBe(true)
  })

  it('a non-WebSocket upgrade over TLS is served as plain HTTP/1.1', async () => {
    const u = await upstream()
    const { port } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' } }))
    const res = await get(port, '/h2c', { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' } })
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ url: '/h2c' })
  })

  it('with ca, requires and verifies client certificates (mutual TLS)', async () => {
    const u = await upstream()
    const { port } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key', ca: 'ca.pem' } }))
    const ok = await get(port, '/m', { cert: pem('client.pem'), key: pem('client.key') })
    expect(ok.status).toBe(200)
    await expect(get(port, '/m')).rejects.toThrow()
    // A certificate from another CA (self-signed) is refused too.
    await expect(get(port, '/m', { cert: pem('rogue.pem'), key: pem('rogue.key') })).rejects.toThrow()
  })

  it('reload: new handshakes get the renewed certificate, an open connection keeps working; a missing file is refused', async () => {
    const u = await upstream()
    const file = join(dir, 'reload.yaml')
    writeFileSync(file, JSON.stringify(baseConfig(u.url, { tls: [{ cert: 'live.pem', key: 'live.key' }, { cert: 'a.pem', key: 'a.key', serverName: 'a.test' }] })))
    cleanups.push(() => {
      copyFileSync(join(dir, 'default.pem'), join(dir, 'live.pem'))
      copyFileSync(join(dir, 'default.key'), join(dir, 'live.key'))
    })
    const { port, gateway } = await start(JSON.parse(readFileSync(file, 'utf8')), { source: () => loadConfigFile(file) })
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1 })
    cleanups.push(() => agent.destroy())
    const first = await get(port, '/1', { agent })
    expect(first.cn).toBe('default.test')

    copyFileSync(join(dir, 'renewed.pem'), join(dir, 'live.pem'))
    copyFileSync(join(dir, 'renewed.key'), join(dir, 'live.key'))
    await gateway.reload()
    expect((await handshake(port, { servername: 'default.test' })).cn).toBe('renewed.test')
    expect((await handshake(port, { servername: 'a.test' })).cn).toBe('a.test')
    const again = await get(port, '/2', { agent })
    expect(again.status).toBe(200)
    expect(again.socket).toBe(first.socket) // the same connection, still on the old certificate
    expect(again.cn).toBe('default.test')

    // A config naming a missing file is refused; the renewed certificate keeps serving.
    writeFileSync(file, JSON.stringify(baseConfig(u.url, { tls: { cert: 'gone.pem', key: 'live.key' } })))
    await expect(gateway.reload()).rejects.toThrow(/server\.tls\.cert/)
    expect((await handshake(port, { servername: 'default.test' })).cn).toBe('renewed.test')
    expect((await get(port, '/3')).status).toBe(200)

    // A key that does not belong to the certificate is refused by the reload too, before anything changes.
    writeFileSync(file, JSON.stringify(baseConfig(u.url, { tls: { cert: 'a.pem', key: 'b.key' } })))
    await expect(gateway.reload()).rejects.toThrow(/server\.tls.*cannot be used together/)
    expect((await handshake(port, { servername: 'default.test' })).cn).toBe('renewed.test')
  })

  it('reload cannot turn TLS off (or mutual TLS on): refused with a message, TLS keeps serving', async () => {
    const u = await upstream()
    const { port, gateway } = await start(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key' } }))
    await expect(gateway.reload(parse(baseConfig(u.url)))).rejects.toThrow(/server\.tls off needs a restart/)
    await expect(gateway.reload(parse(baseConfig(u.url, { tls: { cert: 'default.pem', key: 'default.key', ca: 'ca.pem' } })))).rejects.toThrow(/mutual TLS.*restart/)
    expect((await get(port, '/x')).status).toBe(200)
  })

  it('the admin config view shows certificate files and server names, never PEM text', async () => {
    const u = await upstream()
    const { port } = await start({
      ...baseConfig(u.url, { tls: [{ cert: 'default.pem', key: 'default.key' }, { cert: 'a.pem', key: 'a.key', serverName: 'a.test' }] }),
      admin: true,
    })
    const res = await get(port, '/admin/config')
    expect(res.status).toBe(200)
    expect(res.body).not.toContain('BEGIN')
    const tls = (JSON.parse(res.body) as { config: { server: { tls: { certificates: Array<Record<string, unknown>> } } } }).config.server.tls
    expect(tls.certificates).toEqual([
      { certFile: 'default.pem', keyFile: 'default.key' },
      { serverName: 'a.test', certFile: 'a.pem', keyFile: 'a.key' },
    ])
  })
})

describe.runIf(IS_BUN)('HTTPS listener on Bun', () => {
  it('is refused at start with an error naming server.tls (Bun 1.4 node:https has no SNI, setSecureContext or handshake timeout)', async () => {
    await expect(createGateway(parse(baseConfig('http://127.0.0.1:9', { tls: { cert: 'default.pem', key: 'default.key' } })), { logger: () => {} })).rejects.toThrow(
      /server\.tls is not supported on this runtime/,
    )
  })
})

describe('HTTPS upstreams', () => {
  const plainGateway = (target: string, tls?: Record<string, unknown>, extra: Record<string, unknown> = {}) => start(baseConfig(target, {}, { ...(tls && { tls }), ...extra }))
  const fetchGw = async (port: number, path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: res.status, body: await res.text() }
  }

  it('tls.ca makes a private CA trusted; without it the upstream is a 502 with a JSON error', async () => {
    const up = await httpsUpstream('upstream-ip')
    const withCa = await plainGateway(`https://127.0.0.1:${up.port}`, { ca: 'ca.pem' })
    const ok = await fetchGw(withCa.port, '/secure')
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toEqual({ secure: true, url: '/secure' })

    const without = await plainGateway(`https://127.0.0.1:${up.port}`)
    const refused = await fetchGw(without.port, '/secure')
    expect(refused.status).toBe(502)
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: expect.stringMatching(/^ERR_/) } })
    expect(up.seen).toHaveLength(1) // the unverified connection never carried a request
  })

  it('tls.servername is sent as SNI and checked against the certificate (target URL by IP)', async () => {
    const up = await httpsUpstream('upstream-name')
    const named = await plainGateway(`https://127.0.0.1:${up.port}`, { ca: 'ca.pem', servername: 'upstream.test' })
    expect((await fetchGw(named.port, '/n')).status).toBe(200)
    expect(up.seen).toEqual([{ url: '/n', servername: 'upstream.test' }])
    // Without the override the certificate (upstream.test) does not match 127.0.0.1.
    const byIp = await plainGateway(`https://127.0.0.1:${up.port}`, { ca: 'ca.pem' })
    expect((await fetchGw(byIp.port, '/n')).status).toBe(502)
    expect(up.seen).toHaveLength(1)
  })

  it('health probes to https targets use the same ca and servername', async () => {
    const up = await httpsUpstream('upstream-name')
    const hc = { path: '/healthz', interval: '50ms', timeout: '2s', unhealthyThreshold: 1, healthyThreshold: 1 }
    const good = await plainGateway(`https://127.0.0.1:${up.port}`, { ca: 'ca.pem', servername: 'upstream.test' }, { healthCheck: hc })
    await until(() => up.seen.filter((s) => s.url === '/healthz').length >= 2)
    expect(up.seen.find((s) => s.url === '/healthz')?.servername).toBe('upstream.test')
    expect(good.gateway.upstreamStats().backend[0]).toMatchObject({ healthy: true })

    // The same upstream without the CA: the probe's handshake fails and the endpoint goes down.
    const bad = await plainGateway(`https://127.0.0.1:${up.port}`, { servername: 'upstream.test' }, { healthCheck: hc })
    await until(() => bad.gateway.upstreamStats().backend[0].healthy === false)
    expect((await fetchGw(bad.port, '/x')).status).toBe(503)
  })
})

