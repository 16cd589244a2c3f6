// The floor: a featureless node:http server forwarding through one undici Pool with
// `pool.stream`, the cheapest data path Node has (see RUNTIME-NOTES.md). No routing,
// no policies, no retries. Env: PORT, UPSTREAM.
import http from 'node:http'
import { Pool } from 'undici'

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080'
const port = Number(process.env.PORT ?? 0)

// RFC 9110 §7.6.1: hop-by-hop fields are not forwarded; undici also rejects most of them.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect'])

const pool = new Pool(upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 })

const server = http.createServer((req, res) => {
  const headers = {}
  for (const [name, value] of Object.entries(req.headers)) if (!HOP.has(name)) headers[name] = value
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  pool.stream(
    { path: req.url, method: req.method, headers, body: hasBody ? req : null, opaque: res },
    ({ statusCode, headers: upstreamHeaders, opaque }) => {
      const out = {}
      for (const [name, value] of Object.entries(upstreamHeaders)) if (!HOP.has(name)) out[name] = value
      opaque.writeHead(statusCode, out)
      return opaque
    },
    (err) => {
      if (!err) return
      if (res.headersSent) res.destroy(err)
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway')
    },
  )
})
server.keepAliveTimeout = 60_000
server.listen(port, '127.0.0.1', () => console.log(`bare listening on ${server.address().port}`))

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); pool.destroy(); process.exit(0) })
