import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { attachWebSocketTunnel } from '../src/index.ts'
import { Resources, closeServer, listen, startEcho } from './helpers.ts'
import { hasChromium, launchChromium } from '../../../scripts/chromium.mjs'

const res = new Resources()
afterEach(() => res.close())


const PAGE = `<!doctype html><meta charset="utf-8"><title>tunnel</title><script>
window.roundTrip = () => new Promise((resolve, reject) => {
  const ws = new WebSocket('ws://' + location.host + '/ws?room=1', ['echo'])
  ws.binaryType = 'arraybuffer'
  const got = []
  ws.onerror = () => reject(new Error('websocket error'))
  ws.onopen = () => { ws.send('hello from the browser'); ws.send(new Uint8Array([7, 8, 9])) }
  ws.onmessage = (e) => {
    got.push(typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data)))
    if (got.length === 2) ws.close(4000, 'done')
  }
  ws.onclose = (e) => resolve({ got, code: e.code, reason: e.reason, protocol: ws.protocol })
})
</script>`

describe('real browser', () => {
  // Runs on Node, Bun and Deno (playwright-core launches Chromium on all three here).
  it.skipIf(!hasChromium)('round-trips text and binary through the tunnel in Chromium (skipped only when /usr/bin/chromium is missing outside CI)', async () => {
    const upstream = await startEcho(res, { handleProtocols: (p) => (p.has('echo') ? 'echo' : false) })
    const server = createServer((_req, r) => r.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE))
    attachWebSocketTunnel(server, (req) => (req.url?.startsWith('/ws') ? { target: upstream.url } : undefined))
    const port = await listen(server)
    res.add(() => closeServer(server))

    const browser = await launchChromium()
    res.add(() => browser.close())
    const page = await browser.newPage()
    await page.goto(`http://127.0.0.1:${port}/`)
    const result = await page.evaluate(() => (window as unknown as { roundTrip(): Promise<unknown> }).roundTrip())
    expect(result).toEqual({ got: ['hello from the browser', [7, 8, 9]], code: 4000, reason: 'done', protocol: 'echo' })
    expect(upstream.requests[0].url).toBe('/ws?room=1')
    expect(upstream.requests[0].headers.origin).toBe(`http://127.0.0.1:${port}`)
  })
})
