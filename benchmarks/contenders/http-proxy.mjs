// http-proxy 1.18.1 with a keep-alive agent. Stock 1.18.1 leaks the upstream socket of
// every client that disconnects mid-response and stalls once the agent pool is full
// (RUNTIME-NOTES.md), so the upstream response is destroyed when the client goes away.
// Env: PORT, UPSTREAM.
import http from 'node:http'
import httpProxy from 'http-proxy'

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080'
const port = Number(process.env.PORT ?? 0)

const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 })
const proxy = httpProxy.createProxyServer({ target: upstream, agent, xfwd: false })

proxy.on('proxyRes', (proxyRes, _req, res) => {
  res.on('close', () => { if (!res.writableFinished) proxyRes.destroy() })
})
proxy.on('error', (_err, _req, res) => {
  if (!(res instanceof http.ServerResponse)) return res.destroy?.()
  if (res.headersSent) return res.destroy()
  res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway')
})

const server = http.createServer((req, res) => proxy.web(req, res))
server.keepAliveTimeout = 60_000
server.listen(port, '127.0.0.1', () => console.log(`http-proxy listening on ${server.address().port}`))

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); agent.destroy(); process.exit(0) })
