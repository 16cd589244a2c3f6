import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { parseConfig } from '../src/index.ts'
import { bodyOf, rawRequest, simpleConfig, startGateway, startUpstream, statusOf, type TestGateway, type TestUpstream, useFixtures } from './helpers.ts'

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
const { cleanup, upstream, gateway } = useFixtures()
const echoBody = (): Parameters<typeof startUpstream>[0] => (req, res) => {
  const hash = createHash('sha256')
  let n = 0
  req.on('data', (c: Buffer) => {
    n += c.length
    hash.update(c)
  })
  req.on('end', () => res.end(JSON.stringify({ bytes: n, sha: hash.digest('hex'), cl: req.headers['content-length'] ?? null })))
}

describe('hardening: upgrades that are not WebSocket keep their body (item 2)', () => {
  const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'
  it('small, large and chunked POST bodies reach the upstream intact', async () => {
    const up = await upstream(echoBody())
    const gw = await gateway(simpleConfig([up.url]))
    const small = '{"a":1}'
    const r1 = await rawRequest(gw.port, `POST /echo HTTP/1.1\r\nHost: a\r\n${h2c}Content-Type: application/json\r\nContent-Length: ${small.length}\r\n\r\n${small}`)
    expect(statusOf(r1.text)).toBe(200)
    expect(JSON.parse(bodyOf(r1.text))).toMatchObject({ bytes: 7, sha: createHash('sha256').update(small).digest('hex') })
    const large = Buffer.alloc(3 * 1024 * 1024, 'x')
    const r2 = await rawRequest(gw.port, [`POST /echo HTTP/1.1\r\nHost: a\r\n${h2c}Content-Length: ${large.length}\r\n\r\n`, large], { idleMs: 2_000 })
    const r3 = await rawRequest(gw.port, `POST /echo HTTP/1.1\r\nHost: a\r\n${h2c}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`)
    if (IS_DENO) {
      // Deno's node:http stalls an upgrade request's body after ~64 KiB: refused clearly instead.
      expect(statusOf(r2.text)).toBe(501)
      expect(statusOf(r3.text)).toBe(501)
    } else {
      expect(JSON.parse(bodyOf(r2.text))).toMatchObject({ bytes: large.length, sha: createHash('sha256').update(large).digest('hex') })
      expect(r3.text).toContain(createHash('sha256').update('abcde').digest('hex'))
    }
    expect(up.requests.every((r) => r.headers.upgrade === undefined)).toBe(true)
  })
})

describe('hardening: head limits the parser does not enforce for us', () => {
  it('431 past maxHeaderCount, nothing forwarded (item 3)', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url], { server: { limits: { maxHeaderCount: 20, maxHeaderBytes: '64kb' } } }))
    const many = Array.from({ length: 30 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')
    const { text } = await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: a\r\n${many}\r\n`)
    expect(statusOf(text)).toBe(431)
    const fine = Array.from({ length: 10 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')
    expect(statusOf((await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: a\r\n${fine}\r\n`, { idleMs: 300 })).text)).toBe(200)
    expect(up.requests).toHaveLength(1)
  })

  it('400 for Transfer-Encoding on HTTP/1.0 and for HTTP/1.1 without Host (item 15)', async () => {
    const up = await upstream()
    const gw = await gateway(simpleConfig([up.url]))
    const te10 = await rawRequest(gw.port, 'POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    expect(statusOf(te10.text)).toBe(400)
    const noHost = await rawRequest(gw.port, 'GET /x HTTP/1.1\r\n\r\n')
    expect(statusOf(noHost.text)).toBe(400)
    expect(up.requests).toHaveLength(0)
  })
})

describe('hardening: a client that stalls its upload (item 1)', () => {
  it('gets a 408 and the gateway keeps serving', async () => {
    const up = await upstream(echoBody())
    const gw = await gateway(simpleConfig([up.url], { server: { limits: { bodyIdleTimeout: '200ms' } } }))
    const { text, closed } = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789', { idleMs: 2_000 })
    expect(statusOf(text)).toBe(408)
    expect(closed).toBe(true)
    expect((await fetch(`${gw.url}/after`)).status).toBe(200)
  })
})

describe('hardening: clients that never read cannot pin the pool (item 4)', () => {
  it('a saturated pool answers 503 ERR_UPSTREAM_POOL_SATURATED within queueTimeout, health says so, and the send timeout frees it', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 'y')
    const up = await upstream((req, res) => {
      if (req.url === '/big') return void res.end(big)
      res.end('small')
    })
    const gw = await gateway(
      simpleConfig([up.url], {
        upstream: { pool: { connections: 2, queueTimeout: '200ms' }, retries: 0 },
        server: { limits: { sendTimeout: '1s' } },
      }),
    )
    const stalled = [0, 1].map(() => {
      const s = connect(gw.port, '127.0.0.1')
      s.on('error', () => {})
      s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
      s.pause()
      cleanup.push(async () => void s.destroy())
      return s
    })
    // Both pool connections are now held by clients that do not read.
    let status = 0
    let code = ''
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${gw.url}/small`)
      status = res.status
      if (status === 503) {
        code = (await res.json()).error.code
        break
      }
      await res.text()
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(status).toBe(503)
    expect(code).toBe('ERR_UPSTREAM_POOL_SATURATED')
    const health = await (await fetch(`${gw.url}/health`)).json()
    expect(health.upstreams.backend.saturated).toBe(1)
    // The send timeout cuts the stalled clients and the pool recovers.
    let recovered = false
    for (let i = 0; i < 100 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 50))
      const res = await fetch(`${gw.url}/small`)
      recovered = res.status === 200
      await res.text()
    }
    expect(recovered).toBe(true)
    expect(stalled.length).toBe(2)
  })
})

describe('hardening: config maps have no prototype (item 19)', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('a route naming upstream %s is refused at load', (name) => {
    const raw = { upstreams: { real: { targets: ['http://127.0.0.1:1'] } }, routes: [{ name: 'r', match: { path: '/*' }, upstream: name }] }
    expect(() => parseConfig(raw)).toThrow(/routes\[0\]\.upstream: expected the name of an upstream/)
  })
})

describe('hardening: shutdown closes frame-mode tunnels with 1001 (item 17)', () => {
  it('the client sees 1001 going away, not 1006', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((r) => wss.once('listening', () => r()))
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)))
    cleanup.push(() => new Promise<void>((r) => wss.close(() => r())))
    const port = (wss.address() as { port: number }).port
    const gw = await startGateway(simpleConfig([`http://127.0.0.1:${port}`], { route: { websocket: { idleTimeout: '1m' } } }))
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/chat`)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
    await gw.close()
    expect(await closed).toBe(1001)
  })
})
