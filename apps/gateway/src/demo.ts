import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseConfig } from '@switchboard/gateway'
import { serve } from './run.ts'

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
  const port = (s: Server): number => (s.address() as AddressInfo).port
  const config = parseConfig({
    server: { host: '127.0.0.1', port: Number(process.env.PORT ?? 8080) },
    upstreams: {
      demo: {
        balancer: 'p2c',
        targets: [{ url: `http://127.0.0.1:${port(fast)}` }, { url: `http://127.0.0.1:${port(slow)}` }],
        healthCheck: { path: '/health', interval: '2s' },
      },
    },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'demo' },
      { name: 'everything-else', match: { path: '/*' }, upstream: 'demo' },
    ],
  })
  const gateway = await serve(config)
  const address = gateway.server.address() as AddressInfo
  const base = `http://${address.address}:${address.port}`
  console.log(`
Switchboard demo is running: two upstreams (demo-fast, demo-slow) behind a p2c balancer.

  curl ${base}/api/hello            # JSON from whichever upstream p2c picked (mostly demo-fast)
  curl -N ${base}/api/events        # server-sent events, streamed through as they happen
  curl ${base}/health               # the gateway's own health

Press Ctrl+C to stop.
`)
  gateway.server.once('close', () => {
    fast.close()
    slow.close()
  })
}
