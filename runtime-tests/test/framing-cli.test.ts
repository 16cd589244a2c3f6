// Hardening items 10, 15 and 16 through the built CLI on the runtime running this file: request
// framing and Host checks must not depend on one runtime's parser being strict, and an upstream
// status outside 100–599 is a 502 on every path.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type GatewayProcess, RUNTIME, startGatewayProcess } from './harness.ts'

let gw: GatewayProcess
let received: string[] = []
const servers: Array<{ close(cb?: () => void): unknown }> = []

beforeAll(async () => {
  const up = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push(`${req.method} ${req.url} ${body}`)
      res.end('ok')
    })
  })
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r))
  // An upstream that answers with a status no HTTP client should relay.
  const weird = createNetServer((s) => {
    s.on('error', () => {})
    s.once('data', () => s.end('HTTP/1.1 600 Weird\r\ncontent-length: 2\r\n\r\nno'))
  })
  await new Promise<void>((r) => weird.listen(0, '127.0.0.1', r))
  servers.push(up, weird)
  gw = await startGatewayProcess(`
upstreams:
  app: { targets: [http://127.0.0.1:${(up.address() as AddressInfo).port}] }
  weird: { targets: [http://127.0.0.1:${(weird.address() as AddressInfo).port}], retries: 0 }
routes:
  - { name: weird, match: { path: /weird }, upstream: weird }
  - { name: weird-cached, match: { path: /weird-cached }, upstream: weird, cache: { ttl: 1m } }
  - { name: all, match: { path: /* }, upstream: app }
`)
})

afterAll(async () => {
  await gw?.stop('SIGKILL')
  for (const s of servers) s.close()
})

function raw(data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(gw.port, '127.0.0.1', () => s.write(data))
    let out = ''
    s.on('data', (d) => (out += d))
    s.on('error', () => {})
    s.on('close', () => resolve(out))
    setTimeout(() => {
      s.destroy()
      resolve(out)
    }, 1_500)
  })
}

describe(`request framing on ${RUNTIME}`, () => {
  it.each([
    ['chunk data longer than its size line', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n'],
    ['a chunk size that is not hex', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding on HTTP/1.0', 'POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a control byte in Host', 'GET /x HTTP/1.1\r\nHost: a\u0001b\r\n\r\n'],
    ['a Host carrying a path', 'GET /x HTTP/1.1\r\nHost: localhost:8080/cache\r\n\r\n'],
    ['a Host with a space', 'GET /x HTTP/1.1\r\nHost: a b\r\n\r\n'],
    ['two Host headers', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['no Host on HTTP/1.1', 'GET /x HTTP/1.1\r\n\r\n'],
  ])('%s → 400, nothing reaches the upstream', async (_name, data) => {
    received = []
    const text = await raw(data)
    expect(text.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 400 /)
    expect(received).toEqual([])
  })

  it('a well-formed chunked request still goes through', async () => {
    received = []
    const text = await raw('POST /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
    expect(text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
    expect(received).toEqual(['POST /ok abc'])
  })
})

describe(`upstream status outside 100–599 on ${RUNTIME}`, () => {
  it('is a 502 when proxied', async () => {
    const res = await fetch(`${gw.url}/weird`)
    expect(res.status).toBe(502)
    expect((await res.json()).error.code).toBe('ERR_BAD_GATEWAY')
  })
  it('is a 502 on a cached route (the same upstream call)', async () => {
    const res = await fetch(`${gw.url}/weird-cached`)
    expect(res.status).toBe(502)
    await res.text()
  })
})
