// A real Chromium loads a page through the gateway and talks over a WebSocket relayed by it.
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { startGateway, startUpstream } from './helpers.ts'
import { hasChromium, launchChromium } from '../../../scripts/chromium.mjs'


const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

const PAGE = `<!doctype html><meta charset="utf-8"><title>chat</title><script>
window.chat = () => new Promise((resolve, reject) => {
  const ws = new WebSocket('ws://' + location.host + '/chat/socket', ['chat.v1'])
  const got = []
  ws.onerror = () => reject(new Error('websocket error'))
  ws.onopen = () => { for (const m of ['one', 'two', 'three']) ws.send(m) }
  ws.onmessage = (e) => { got.push(e.data); if (got.length === 4) ws.close(1000, 'bye') }
  ws.onclose = (e) => resolve({ got, code: e.code, protocol: ws.protocol })
})
</script>`

describe('gateway: WebSocket in a real browser', () => {
  it.skipIf(!hasChromium)('relays a chat session from Chromium through the gateway (skipped only when /usr/bin/chromium is missing outside CI)', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(PAGE)
    })
    cleanup.push(() => up.close())
    const wss = new WebSocketServer({ server: up.server, handleProtocols: (p) => (p.has('chat.v1') ? 'chat.v1' : false) })
    cleanup.push(async () => wss.close())
    wss.on('connection', (ws, req) => {
      ws.send(`welcome ${req.headers['x-forwarded-for']} via ${req.headers.via}`)
      ws.on('message', (data) => ws.send(`echo ${data.toString()}`))
    })
    const gw = await startGateway({
      upstreams: { chat: { targets: [up.url] } },
      routes: [{ name: 'chat', match: { path: '/*' }, upstream: 'chat' }],
    })
    cleanup.push(() => gw.close())

    const browser = await launchChromium()
    cleanup.push(() => browser.close())
    const page = await browser.newPage()
    await page.goto(`${gw.url}/chat/`)
    const result = await page.evaluate(() => (window as unknown as { chat(): Promise<unknown> }).chat())
    expect(result).toEqual({
      got: ['welcome 127.0.0.1 via 1.1 switchboard', 'echo one', 'echo two', 'echo three'],
      code: 1000,
      protocol: 'chat.v1',
    })
  })
})
