import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { request as httpRequest } from 'node:http'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { parseConfig, resolveTransport } from '../src/index.ts'
import { nativeCaveats, RUNTIME } from '../src/transport/select.ts'
import { bodyOf, rawRequest, simpleConfig, statusOf, useFixtures } from './helpers.ts'

const { cleanup, upstream, gateway } = useFixtures()
const native = (targets: string[], extra: Parameters<typeof simpleConfig>[1] = {}) =>
  simpleConfig(targets, { ...extra, server: { transport: 'native', ...extra.server } })

/** A one-shot signal: `fire()` resolves `promise` (what the upstream saw, told to the test). */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void
  const promise = new Promise<void>((resolve) => (fire = resolve))
  return { promise, fire }
}

/** A raw GET on its own connection: what arrived so far, once the first byte came, and the close. */
function rawGet(port: number, path: string): { bytes: () => Buffer; firstByte: Promise<void>; closed: Promise<void> } {
  const s = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  const first = signal()
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()))
  s.on('error', () => {})
  s.on('data', (d: Buffer) => {
    chunks.push(d)
    first.fire()
  })
  cleanup.push(async () => void s.destroy())
  s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)
  return { bytes: () => Buffer.concat(chunks), firstByte: first.promise, closed }
}

/** Answers with `count` copies of `chunk`, one every `everyMs`, under a Content-Length for all of them. */
function paced(res: import('node:http').ServerResponse, chunk: Buffer, count: number, everyMs: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(count * chunk.length) })
  let sent = 0
  const tick = setInterval(() => {
    res.write(chunk)
    if (++sent === count) {
      clearInterval(tick)
      res.end()
    }
  }, everyMs)
  res.on('close', () => clearInterval(tick))
}

describe('server.transport: choosing a transport', () => {
  it('auto is node:http; native refuses a config it cannot serve, naming the key', () => {
    const ws = parseConfig({ ...simpleConfig(['http://127.0.0.1:1'], { route: { websocket: { maxMessageSize: '1kb' } } }) })
    expect(resolveTransport('auto', ws, undefined).transport).toBe('node')
    expect(resolveTransport('node', ws, 'native').transport).toBe('node')
    if (RUNTIME === 'node') expect(() => resolveTransport('native', ws, undefined)).toThrow(/native needs Bun \(Node has no native server/)
    else expect(() => resolveTransport('native', ws, undefined)).toThrow(/routes\[0\]\.websocket/)
    const plain = parseConfig(simpleConfig(['http://127.0.0.1:1']))
    // SWITCHBOARD_TRANSPORT replaces auto only.
    if (RUNTIME === 'bun') expect(resolveTransport('auto', plain, 'native').transport).toBe('native')
    if (RUNTIME === 'deno') expect(() => resolveTransport('native', plain, undefined)).toThrow(/server\.transport: native is not available on Deno yet/)
    expect(resolveTransport('auto', plain, 'node').transport).toBe('node')
  })

  it.skipIf(RUNTIME !== 'bun')('warns about the settings Bun.serve decides itself, and only those', () => {
    expect(nativeCaveats(parseConfig(simpleConfig(['http://127.0.0.1:1'])))).toEqual([])
    const strict = parseConfig(simpleConfig(['http://127.0.0.1:1'], { server: { limits: { headersTimeout: '2s', maxHeaderBytes: '64kb' } } }))
    const caveats = nativeCaveats(strict)
    expect(caveats).toHaveLength(2)
    expect(caveats[0]).toMatch(/^server\.limits\.maxHeaderBytes: /)
    expect(caveats[1]).toMatch(/^server\.limits\.headersTimeout: .*~10 s/)
  })
})

// Bun.serve only exists on Bun; Node has no native transport, and on Deno it is refused until it passes (see select.ts).
describe.skipIf(RUNTIME !== 'bun')('native transport (Bun.serve / Deno.serve)', () => {
  it('runs on the native transport and proxies with the same header rules', async () => {
    const up = await upstream()
    const gw = await gateway(native([up.url]))
    expect(gw.gateway.transport).toBe('native')
    const res = await fetch(`${gw.url}/a?b=1`, { headers: { 'x-forwarded-for': '6.6.6.6', connection: 'x-drop', 'x-drop': '1', te: 'trailers' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('via')).toContain('switchboard')
    const seen = up.requests[0]
    expect(seen.url).toBe('/a?b=1')
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen.headers['x-drop']).toBeUndefined()
    expect(seen.headers.te).toBeUndefined()
    expect(() => gw.gateway.server).toThrow(/native transport/)
  })

  it('client abort before the response: the upstream request is aborted (upstream sees close)', async () => {
    const upstreamClosed = signal()
    const upstreamGot = signal()
    const up = await upstream((req, res) => {
      res.on('close', upstreamClosed.fire)
      upstreamGot.fire()
      // Never answers: only the client's abort can end this.
    })
    const gw = await gateway(native([up.url], { upstream: { timeouts: { response: '60s' } } }))
    const s = connect(gw.port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n')
    await upstreamGot.promise
    s.destroy()
    await upstreamClosed.promise
    expect(up.requests).toHaveLength(1)
  })

  it('client abort while a small body is read whole: the upstream response is abandoned (upstream sees close)', async () => {
    const upstreamClosed = signal()
    const bodyStarted = signal()
    const up = await upstream((_req, res) => {
      res.on('close', upstreamClosed.fire)
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' })
      res.write('0123456789', bodyStarted.fire)
      // The other 990 bytes never come: only the client's abort can end this.
    })
    const gw = await gateway(native([up.url], { upstream: { timeouts: { idle: '60s' } } }))
    const s = connect(gw.port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET /partial HTTP/1.1\r\nHost: a\r\n\r\n')
    await bodyStarted.promise
    await new Promise((r) => setTimeout(r, 50))
    s.destroy()
    await upstreamClosed.promise
    expect(up.requests).toHaveLength(1)
  })

  it('client abort mid-body: the upstream response is abandoned (upstream sees close)', async () => {
    const upstreamClosed = signal()
    const up = await upstream((_req, res) => {
      res.on('close', upstreamClosed.fire)
      res.writeHead(200, { 'content-type': 'text/plain' })
      const tick = setInterval(() => res.write('x'.repeat(1024)), 10)
      res.on('close', () => clearInterval(tick))
    })
    const gw = await gateway(native([up.url]))
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/stream`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
      req.end()
      setTimeout(() => reject(new Error('no first chunk')), 10_000).unref()
    })
    await upstreamClosed.promise
  })

  it('a client that never reads is cut after sendTimeout and frees its slot', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024, 'y')
    const upstreamClosed = signal()
    const up = await upstream((req, res) => {
      if (req.url !== '/big') return void res.end('small')
      res.on('close', upstreamClosed.fire)
      res.end(big)
    })
    const gw = await gateway(native([up.url], { upstream: { pool: { connections: 1, queueTimeout: '5s' }, retries: 0 }, server: { limits: { sendTimeout: '300ms' } } }))
    const s = connect(gw.port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
    s.pause()
    cleanup.push(async () => void s.destroy())
    await upstreamClosed.promise
    // The only slot was given back: the next request is served.
    const res = await fetch(`${gw.url}/small`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('small')
  })

  it('pool saturation: 503 ERR_UPSTREAM_POOL_SATURATED after queueTimeout, and health says so', async () => {
    const held = signal()
    const up = await upstream((req, res) => {
      if (req.url === '/hold') void held.promise.then(() => res.end('held'))
      else res.end('ok')
    })
    const gw = await gateway(native([up.url], { upstream: { pool: { connections: 1, queueTimeout: '200ms' }, retries: 0 } }))
    const first = fetch(`${gw.url}/hold`)
    while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 10))
    const second = await fetch(`${gw.url}/other`)
    expect(second.status).toBe(503)
    expect((await second.json()).error.code).toBe('ERR_UPSTREAM_POOL_SATURATED')
    expect(up.requests).toHaveLength(1)
    const health = await (await fetch(`${gw.url}/health`)).json()
    expect(health.upstreams.backend.saturated).toBe(1)
    held.fire()
    expect(await (await first).text()).toBe('held')
  })

  it.each([
    ['Content-Length with Transfer-Encoding', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['repeated identical Content-Length', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400],
    ['Transfer-Encoding not ending in chunked', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
    ['a missing Host', 'GET /x HTTP/1.1\r\n\r\n', 400],
    ['duplicate Host', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
    ['an unknown expectation', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: fancy\r\n\r\nhi', 417],
    ['more header fields than maxHeaderCount', `GET /x HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 30 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')}\r\n`, 431],
  ])('refuses %s itself (or the runtime does), nothing reaches the upstream', async (_label, bytes, status) => {
    const up = await upstream()
    const gw = await gateway(native([up.url], { server: { limits: { maxHeaderCount: 20 } } }))
    const { text, closed } = await rawRequest(gw.port, bytes)
    expect(statusOf(text)).toBe(status)
    expect(closed).toBe(true)
    // When the gateway refuses (not the runtime's parser), the answer is its JSON error.
    const body = bodyOf(text)
    if (body !== '') expect(JSON.parse(body).error.code).toMatch(/^ERR_/)
    expect(up.requests).toHaveLength(0)
  })

  it('keeps the upstream\'s encoding: gzip bytes reach the client untouched', async () => {
    const plain = Buffer.from('hello '.repeat(1000))
    const zipped = gzipSync(plain)
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': zipped.length })
      res.end(zipped)
    })
    const gw = await gateway(native([up.url]))
    const got = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      httpRequest(`${gw.url}/z`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }))
      })
        .on('error', reject)
        .end()
    })
    expect(got.encoding).toBe('gzip')
    expect(got.body.equals(zipped)).toBe(true)
  })

  it('a streamed upload past maxRequestBodySize is cut: 413, never forwarded whole', async () => {
    const up = await upstream(undefined, { recordBodies: true })
    const gw = await gateway(native([up.url], { server: { limits: { maxRequestBodySize: '100kb' } } }))
    const chunk = Buffer.alloc(64 * 1024, 'z')
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/up`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', () => resolve(0))
      req.write(chunk)
      req.write(chunk)
      req.end(chunk)
      setTimeout(() => reject(new Error('no answer')), 10_000).unref()
    })
    // 413 when the gateway answered first; a cut connection (0) when the runtime dropped it first.
    expect([413, 0]).toContain(status)
    expect(up.requests.every((r) => r.body === undefined || r.body.length <= 100 * 1024)).toBe(true)
  })

  it('a request body that goes silent gets 408 and the gateway keeps serving', async () => {
    const up = await upstream(undefined, { recordBodies: true })
    const gw = await gateway(native([up.url], { server: { limits: { bodyIdleTimeout: '200ms' } } }))
    const { text, closed } = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789', { idleMs: 3_000 })
    expect([408, 0]).toContain(statusOf(text))
    expect(closed).toBe(true)
    expect((await fetch(`${gw.url}/after`)).status).toBe(200)
  })

  // A body past 64 KiB streams: the head goes out first, so an upstream that stalls after it can
  // only be answered by cutting the client's connection (RFC 9112 §8), after the idle timeout.
  it('a large body streams intact; one the upstream stalls in is cut after the idle timeout and frees its slot', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = i % 251
    const upstreamClosed = signal()
    const up = await upstream((req, res) => {
      if (req.url === '/big') return void res.end(big)
      res.on('close', upstreamClosed.fire)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(big.length) })
      res.write(big.subarray(0, 256 * 1024))
      // Then nothing, ever.
    })
    const gw = await gateway(native([up.url], { upstream: { timeouts: { idle: '300ms' }, retries: 0, pool: { connections: 1, queueTimeout: '5s' } } }))
    const whole = await fetch(`${gw.url}/big`)
    expect(whole.status).toBe(200)
    expect(Buffer.from(await whole.arrayBuffer()).equals(big)).toBe(true)
    const stalled = await fetch(`${gw.url}/stall`)
    expect(stalled.status).toBe(200)
    await expect(stalled.arrayBuffer()).rejects.toThrow()
    await upstreamClosed.promise
    // The only pool slot was given back.
    const again = await fetch(`${gw.url}/big`)
    expect(Buffer.from(await again.arrayBuffer()).equals(big)).toBe(true)
  })

  // Bun's fetch relays any three-digit status, which no Response can carry.
  it('an upstream status outside 200–599 is a 502, and its pool slot comes back', async () => {
    const weird = createNetServer((s) => {
      s.on('error', () => {})
      s.once('data', () => s.end('HTTP/1.1 600 Weird\r\ncontent-length: 2\r\n\r\nno'))
    })
    await new Promise<void>((r) => weird.listen(0, '127.0.0.1', r))
    cleanup.push(() => new Promise<void>((r) => weird.close(() => r())))
    const url = `http://127.0.0.1:${(weird.address() as AddressInfo).port}`
    const gw = await gateway(native([url], { upstream: { retries: 0, pool: { connections: 1, queueTimeout: '200ms' } } }))
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}/weird`)
      expect(res.status).toBe(502)
      expect((await res.json()).error.code).toBe('ERR_BAD_GATEWAY')
    }
  })

  // server.pipeBodies: Bun moves a large declared body itself. The exchange ends at the head (the
  // slot is back at once); Bun's per-request deadline, on a 4 s tick, cuts a body that stalls:
  // max(idle, send) plus the body at PIPE_MIN_RATE, here 1 s + 192 KiB / 64 KiB/s = 4 s.
  it('server.pipeBodies: a large body is piped intact, its slot is back at the head, and one that stalls is cut by the runtime', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 253
    const upstreamClosed = signal()
    const stallSent = signal()
    const up = await upstream((req, res) => {
      if (req.url === '/big') return void res.end(big)
      if (req.url === '/small') return void res.end('small')
      res.on('close', upstreamClosed.fire)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(192 * 1024) })
      res.write(big.subarray(0, 64 * 1024), stallSent.fire)
      // Then nothing, ever.
    })
    const gw = await gateway(
      native([up.url], {
        server: { pipeBodies: true, limits: { sendTimeout: '1s' } },
        upstream: { timeouts: { idle: '1s' }, retries: 0, pool: { connections: 1, queueTimeout: '200ms' } },
      }),
    )
    // (Bun frames a streamed body chunked whatever Content-Length says: oven-sh/bun#10507.)
    const whole = await fetch(`${gw.url}/big`)
    expect(Buffer.from(await whole.arrayBuffer()).equals(big)).toBe(true)
    const stalled = rawGet(gw.port, '/stall')
    await stallSent.promise
    await stalled.firstByte
    // With the body still in flight the only pool slot is free: on the gateway's own body path this would be 503 (saturated).
    const other = await fetch(`${gw.url}/small`)
    expect(other.status).toBe(200)
    expect(await other.text()).toBe('small')
    // Nothing moves for longer than the 1 s timeout: Bun cuts the client and cancels the upstream body.
    await upstreamClosed.promise
    await stalled.closed
    expect(stalled.bytes().length).toBeLessThan(192 * 1024)
    expect((await fetch(`${gw.url}/small`)).status).toBe(200)
  }, 20_000)

  // Bun's per-request timer is a deadline, not an inactivity timer: bytes going out do not reset it.
  it('server.pipeBodies: a body that keeps moving is not cut after the idle or send wait', async () => {
    const chunk = Buffer.alloc(32 * 1024, 'm')
    const up = await upstream((_req, res) => paced(res, chunk, 20, 250))
    // 640 KiB over 5 s (128 KiB/s): past the 1 s waits, within 1 s + 640 KiB at 64 KiB/s.
    const gw = await gateway(native([up.url], { server: { pipeBodies: true, limits: { sendTimeout: '1s' } }, upstream: { timeouts: { idle: '1s' } } }))
    const res = await fetch(`${gw.url}/slow`)
    expect(Buffer.from(await res.arrayBuffer()).length).toBe(20 * chunk.length)
  }, 20_000)

  it('server.pipeBodies: a body too long for Bun\'s timer at the minimum rate streams through the gateway (its slot held)', async () => {
    const stallSent = signal()
    const up = await upstream((req, res) => {
      if (req.url === '/small') return void res.end('small')
      // 64 MiB at 64 KiB/s is 1,024 s, past the 255 s Bun's timer takes.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024) })
      res.write(Buffer.alloc(64 * 1024, 'h'), stallSent.fire)
    })
    const gw = await gateway(native([up.url], { server: { pipeBodies: true }, upstream: { retries: 0, pool: { connections: 1, queueTimeout: '200ms' } } }))
    const huge = rawGet(gw.port, '/huge')
    await stallSent.promise
    await huge.firstByte
    const other = await fetch(`${gw.url}/small`)
    expect(other.status).toBe(503)
    expect((await other.json()).error.code).toBe('ERR_UPSTREAM_POOL_SATURATED')
  })

  it('server.pipeBodies: an upstream that cuts a piped body short cuts the client too, never a clean end', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(4 * 1024 * 1024) })
      res.write(Buffer.alloc(256 * 1024, 'c'), () => setTimeout(() => res.socket?.destroy(), 50))
    })
    const gw = await gateway(native([up.url], { server: { pipeBodies: true }, upstream: { retries: 0 } }))
    const cut = rawGet(gw.port, '/cut')
    await cut.closed
    const text = cut.bytes().toString('latin1')
    expect(statusOf(text)).toBe(200)
    // Bun frames it chunked (oven-sh/bun#10507): a truncated body must not end in the last chunk.
    expect(text.endsWith('0\r\n\r\n')).toBe(false)
    expect(cut.bytes().length).toBeLessThan(4 * 1024 * 1024)
  })

  it('server.pipeBodies: shutdown waits for a piped body still being sent', async () => {
    const chunk = Buffer.alloc(256 * 1024, 'd')
    const up = await upstream((_req, res) => paced(res, chunk, 12, 40))
    const gw = await gateway(native([up.url], { server: { pipeBodies: true, shutdownTimeout: '10s' } }))
    const res = await fetch(`${gw.url}/download`)
    expect(res.status).toBe(200)
    // The exchange ended at the head; the drain still waits for Bun to send the last byte.
    const closed = gw.gateway.close()
    const body = Buffer.from(await res.arrayBuffer())
    expect(body.length).toBe(12 * chunk.length)
    await closed
  })

  it('server.pipeBodies: a client that leaves mid-body cancels the piped upstream body (upstream sees close)', async () => {
    const upstreamClosed = signal()
    const up = await upstream((_req, res) => {
      res.on('close', upstreamClosed.fire)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024) })
      const tick = setInterval(() => res.write(Buffer.alloc(64 * 1024, 'p')), 5)
      res.on('close', () => clearInterval(tick))
    })
    const gw = await gateway(native([up.url], { server: { pipeBodies: true } }))
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/download`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
      req.end()
      setTimeout(() => reject(new Error('no first chunk')), 10_000).unref()
    })
    await upstreamClosed.promise
    expect(up.requests).toHaveLength(1)
  })

  // A small declared body (≤ 64 KiB) is read whole before the client sees a byte: an upstream that
  // stalls or cuts it is a clean JSON error, never a truncated 200 that looks complete.
  it('a small body the upstream stalls in is 504, one it cuts is 502, and the gateway keeps serving', async () => {
    const up = await upstream((req, res) => {
      if (req.url === '/fine') return void res.end('ok')
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
      res.write('0123456789')
      if (req.url === '/cut') setTimeout(() => res.socket?.destroy(), 20)
      // '/stall': nothing more, ever.
    })
    const gw = await gateway(native([up.url], { upstream: { timeouts: { idle: '200ms' }, retries: 0 } }))
    const stalled = await fetch(`${gw.url}/stall`)
    expect(stalled.status).toBe(504)
    expect((await stalled.json()).error.code).toBe('ERR_UPSTREAM_TIMEOUT')
    const cut = await fetch(`${gw.url}/cut`)
    expect(cut.status).toBe(502)
    expect((await cut.json()).error.code).toBe('ERR_BAD_GATEWAY')
    const fine = await fetch(`${gw.url}/fine`)
    expect(fine.status).toBe(200)
    expect(await fine.text()).toBe('ok')
  })
})
