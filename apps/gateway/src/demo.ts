import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseConfig } from '@switchboard/gateway'
import { WebSocketServer } from 'ws'
import { serve } from './run.ts'

/** A WebSocket echo upstream for the demo's /ws route. */
function startEchoUpstream(): Promise<Server> {
  const server = createServer((_req, res) => res.end('websocket echo: connect with Upgrade: websocket\n'))
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => {
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** Starts one small demo upstream that describes the request it got, with an SSE stream at /api/events. */
function startDemoUpstream(name: string, delayMs: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/api/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      let n = 0
      const timer = setInterval(() => {
        n++
        res.write(`event: tick\ndata: ${JSON.stringify({ upstream: name, n })}\n\n`)
        if (n === 5) {
          clearInterval(timer)
          res.end()
        }
      }, 300)
      res.on('close', () => clearInterval(timer))
      return
    }
    setTimeout(() => {
      const body = JSON.stringify(
        {
          upstream: name,
          method: req.method,
          url: req.url,
          forwarded: {
            'x-forwarded-for': req.headers['x-forwarded-for'],
            'x-forwarded-proto': req.headers['x-forwarded-proto'],
            'x-forwarded-host': req.headers['x-forwarded-host'],
            via: req.headers.via,
          },
        },
        null,
        2,
      )
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) + 1 })
      res.end(`${body}\n`)
    }, delayMs)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** `switchboard demo`: two upstreams (one slower) behind a p2c gateway with health checks. */
export async function runDemo(): Promise<void> {
  const fast = await startDemoUpstream('demo-fast', 2)
  const slow = await startDemoUpstream('demo-slow', 40)
  const echo = await startEchoUpstream()
  const port = (s: Server): number => (s.address() as AddressInfo).port
  const gatewayPort = Number(process.env.PORT ?? 8080)
  const config = parseConfig({
    server: { host: '127.0.0.1', port: gatewayPort },
    upstreams: {
      demo: {
        balancer: 'p2c',
        targets: [{ url: `http://127.0.0.1:${port(fast)}` }, { url: `http://127.0.0.1:${port(slow)}` }],
        healthCheck: { path: '/health', interval: '2s' },
      },
      echo: { targets: [`http://127.0.0.1:${port(echo)}`] },
    },
    routes: [
      { name: 'ws', match: { path: '/ws' }, upstream: 'echo' },
      { name: 'api', match: { path: '/api/*' }, upstream: 'demo' },
      { name: 'everything-else', match: { path: '/*' }, upstream: 'demo' },
    ],
    // Loopback only (no token): the dashboard, JSON and Prometheus on a port of their own (any free
    // one unless ADMIN_PORT says; the printed instructions name it).
    admin: { listen: `127.0.0.1:${Number(process.env.ADMIN_PORT ?? 0)}` },
    metrics: { path: '/metrics' },
  })
  const gateway = await serve(config)
  const address = gateway.server.address() as AddressInfo
  const base = `http://${address.address}:${address.port}`
  const admin = gateway.adminAddress ? `http://${gateway.adminAddress.address}:${gateway.adminAddress.port}` : undefined
  console.log(`
Switchboard demo is running: two upstreams (demo-fast, demo-slow) behind a p2c balancer, and a
WebSocket echo.

  curl ${base}/api/hello            # JSON from whichever upstream p2c picked (mostly demo-fast)
  curl -N ${base}/api/events        # server-sent events, streamed through as they happen
  curl ${base}/health               # the gateway's own health
  curl ${base}/metrics              # Prometheus metrics (switchboard_requests_total, …)
  WebSocket echo: ws://${address.address}:${address.port}/ws  (e.g. npx wscat -c ws://${address.address}:${address.port}/ws)
${admin ? `
  Dashboard: ${admin}/               # live charts per route and upstream (loopback only)
  curl ${admin}/admin/stats          # the figures behind it; /admin/explain?path=/api/x says how a request is routed
` : ''}
Press Ctrl+C to stop.
`)
  gateway.server.once('close', () => {
    fast.close()
    slow.close()
    echo.close()
  })
}
