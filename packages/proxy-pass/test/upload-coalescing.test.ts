import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { cleanup, httpServer, proxyServer } from './helpers.ts'

afterEach(cleanup)

/** An upstream that hashes the body and counts the `data` events (one per chunk it received). */
function hashingUpstream() {
  return httpServer((req, res) => {
    const hash = createHash('sha256')
    let events = 0
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      events++
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => res.end(JSON.stringify({ events, bytes, sha256: hash.digest('hex') })))
  })
}

/** Sends `payload` as one chunked-encoding chunk per byte on a raw socket; resolves with the reply. */
function tinyChunkUpload(port: number, payload: Buffer): Promise<string> {
  const frames = Buffer.alloc(payload.length * 6)
  for (let i = 0; i < payload.length; i++) {
    const at = i * 6
    frames.write('1\r\n', at, 'latin1')
    frames[at + 3] = payload[i]
    frames.write('\r\n', at + 4, 'latin1')
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
    // Several writes, so the proxy sees the chunks over many socket reads.
    for (let at = 0; at < frames.length; at += 60_000) socket.write(frames.subarray(at, at + 60_000))
    socket.write('0\r\n\r\n')
  })
}

describe('tiny request chunks', () => {
  it('200k one-byte chunks arrive intact, in far fewer upstream writes', async () => {
    const upstream = await hashingUpstream()
    const proxy = await proxyServer(upstream.url)
    const payload = randomBytes(200_000)
    const reply = await tinyChunkUpload(proxy.port, payload)
    expect(reply).toMatch(/^HTTP\/1\.1 200 /)
    const seen = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''))
    expect(seen.bytes).toBe(payload.length)
    expect(seen.sha256).toBe(createHash('sha256').update(payload).digest('hex'))
    expect(seen.events).toBeLessThan(payload.length / 10)
    expect(await proxy.next()).toMatchObject({ status: 200, aborted: false })
  })

  it('a small maxChunksPerTurn still delivers every byte in order', async () => {
    const upstream = await hashingUpstream()
    const proxy = await proxyServer(upstream.url, { maxChunksPerTurn: 8 })
    const payload = randomBytes(20_000)
    const reply = await tinyChunkUpload(proxy.port, payload)
    const seen = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''))
    expect(seen.sha256).toBe(createHash('sha256').update(payload).digest('hex'))
  })
})
